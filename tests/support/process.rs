//! The real `otelite serve` binary as a child process, for the tests that
//! need what an in-process server cannot show: SIGKILL, SIGTERM and SIGINT,
//! exit codes, and the process's memory.
//!
//! The binary is the `otelite` of the `otelite-backend` package, which
//! cargo builds into `target/<profile>/` for that package's own integration
//! test (backend/tests/cli.rs): `cargo test --workspace` builds it before
//! running any test, and `otelite_bin` finds it beside this test binary
//! (`target/<profile>/deps/`). `OTELITE_BIN` overrides it, e.g. to test a
//! release build of `otelite`.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the binary gets to print its addresses.
const START_WAIT: Duration = Duration::from_secs(60);

/// The `otelite` binary the tests run: `OTELITE_BIN`, else the one cargo
/// built beside this test binary, checked to be there and current.
pub fn otelite_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var_os("OTELITE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(built_bin)
    })
    .clone()
}

/// `target/<profile>/otelite`, as cargo leaves it: panics with what to do
/// if it is missing or older than one of its sources, rather than letting
/// the tests run an old build.
fn built_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps/")
        .join(format!("otelite{}", std::env::consts::EXE_SUFFIX));
    const HOW: &str = "build it with `cargo build -p otelite-backend` (`cargo test --workspace` \
                       does), or set OTELITE_BIN";
    if !bin.is_file() {
        panic!("{} is missing: {HOW}", bin.display());
    }
    if let Some(source) = newer_source(&bin) {
        panic!(
            "{} is older than {}: {HOW}",
            bin.display(),
            source.display()
        );
    }
    bin
}

/// A source of the binary changed after `bin` was linked: a file under
/// `backend/src/` or `model/src/`, the crates it is built from (any change
/// there relinks it; a change elsewhere, the exporter's say, need not).
/// Cargo writes the exact list only for `cargo build`, not when `cargo
/// test` builds it.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = modified(bin)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    for crate_dir in ["backend", "model"] {
        files_under(&root.join(crate_dir).join("src"), &mut sources);
    }
    sources
        .into_iter()
        .find(|source| modified(source).is_some_and(|time| time > built))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn files_under(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// `OTELITE_LONG_TESTS=1` turns on the long versions of the reliability
/// tests (see the README's "Reliability tests").
pub fn long_tests() -> bool {
    std::env::var("OTELITE_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// A running `otelite serve` with a database file that outlives it.
pub struct ServeProcess {
    child: Child,
    pub otlp: SocketAddr,
    pub grpc: SocketAddr,
    pub query: SocketAddr,
    pub db: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    exited: Option<ExitStatus>,
}

impl ServeProcess {
    /// Starts `otelite serve --db <db>` on port 0 for both listeners, plus
    /// `extra` flags, and waits until it has printed the bound addresses.
    /// Blocking: call it from `spawn_blocking` in async tests.
    pub fn start(db: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(otelite_bin())
            .arg("serve")
            .arg("--db")
            .arg(db)
            .args([
                "--otlp-listen",
                "127.0.0.1:0",
                "--otlp-grpc-listen",
                "127.0.0.1:0",
                "--query-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("RUST_LOG", "otelite_backend=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", otelite_bin().display()));
        let (stdout, lines) = capture_lines(child.stdout.take().expect("stdout pipe"));
        let stderr = capture(child.stderr.take().expect("stderr pipe"));
        let (mut otlp, mut grpc, mut query) = (None, None, None);
        let deadline = Instant::now() + START_WAIT;
        while otlp.is_none() || grpc.is_none() || query.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "otelite serve printed no addresses ({status:?})\nstderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            };
            otlp = otlp.or_else(|| address_after(&line, "OTLP/HTTP listening on "));
            grpc = grpc.or_else(|| address_after(&line, "OTLP/gRPC listening on "));
            query = query.or_else(|| address_after(&line, "query API listening on "));
        }
        Self {
            child,
            otlp: otlp.expect("checked above"),
            grpc: grpc.expect("checked above"),
            query: query.expect("checked above"),
            db: db.to_owned(),
            stdout,
            stderr,
            exited: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn otlp_url(&self) -> String {
        format!("http://{}", self.otlp)
    }

    pub fn query_url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.query, path_and_query)
    }

    /// SIGKILL, then reap: the process gets no chance to finish anything.
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// Sends a signal by name (`TERM`, `INT`) through the shell's `kill`
    /// builtin, which every POSIX shell has.
    pub fn signal(&self, name: &str) {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s {name} {}", self.pid())])
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -s {name} {} failed", self.pid());
    }

    /// Waits for the process to exit; `None` if it is still running after
    /// `limit` (it is then killed, so a hang does not outlive the test).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while self.exited.is_none() {
            self.exited = self.child.try_wait().expect("wait for otelite");
            if self.exited.is_none() {
                if Instant::now() > deadline {
                    self.kill();
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.exited
    }

    /// Peak resident set size so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status of the running backend");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .expect("VmHWM in /proc/PID/status")
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The address after `prefix` and an `http://` or `https://` scheme.
fn address_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    let (_, url) = line.split_once(prefix)?;
    let (_, address) = url.split_once("://")?;
    address.trim().parse().ok()
}

/// Collects a pipe's lines, also handing each over as it arrives; the
/// thread keeps reading so the child never blocks on a full pipe.
fn capture_lines(pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let text = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Ok(mut text) = sink.lock() {
                text.push_str(&line);
                text.push('\n');
            }
            let _ = tx.send(line);
        }
    });
    (text, rx)
}

fn capture(pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    capture_lines(pipe).0
}

/// Runs blocking fixture code (process start, exit wait, SQLite checks) off
/// the async test's worker threads.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking fixture work panicked")
}
