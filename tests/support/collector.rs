//! A real OpenTelemetry Collector between the apps and otelite: the one
//! built from `tests/clients/collector` (by `scripts/test.sh`), run as a
//! child process on the README's sample configuration `docs/otelcol.yaml`
//! with its addresses set through the variables that file reads, and a
//! test's own knobs as the Collector's `--set` flags.
//!
//! Its receivers and its Prometheus endpoint get free ports picked here (the
//! Collector cannot report a port 0 it bound); [`Collector::own_counts`]
//! reads its own counters there, independently of otelite.

use super::WAIT;
use super::foreign::clients_dir;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How often the Collector pushes its counters to otelite in the tests.
const REPORT_INTERVAL_MS: &str = "500";

const BUILD_HINT: &str = "build it as `.ci/run` does: `scripts/test.sh --install-only` \
    (needs Go 1.26, then `go build` in tests/clients/collector)";

/// The sample configuration the README shows, run as is by the tests.
pub fn sample_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/otelcol.yaml")
}

/// The Collector binary `scripts/test.sh` builds, checked to be there and
/// newer than its sources.
pub fn collector_bin() -> PathBuf {
    let dir = clients_dir().join("collector");
    let bin = dir.join("bin/otelcol-otelite-test");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{} is missing ({e}): {BUILD_HINT}", bin.display()));
    for source in ["main.go", "components.go", "go.mod", "go.sum"] {
        let path = dir.join(source);
        let changed = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            changed <= built,
            "{} is older than {}: {BUILD_HINT}",
            bin.display(),
            path.display()
        );
    }
    bin
}

/// How the Collector hands spans to otelite. Each way is the sample
/// configuration plus the `--set` flags that switch its exporter.
#[derive(Debug, Clone, Copy)]
pub enum Forward {
    /// The sample's own `otlp_http/otelite` exporter.
    OtlpHttp,
    /// An `otlp_grpc` exporter to otelite's OTLP/gRPC listener at this
    /// address, in its place.
    OtlpGrpc(SocketAddr),
}

impl Forward {
    fn sets(self, _otelite: SocketAddr) -> Vec<String> {
        match self {
            Forward::OtlpHttp => Vec::new(),
            Forward::OtlpGrpc(grpc) => vec![
                format!("exporters::otlp_grpc/otelite::endpoint={grpc}"),
                "exporters::otlp_grpc/otelite::tls::insecure=true".to_owned(),
                "service::pipelines::traces::exporters=[otlp_grpc/otelite]".to_owned(),
            ],
        }
    }
}

/// A running Collector; killed when dropped.
pub struct Collector {
    child: Child,
    dir: TempDir,
    /// Its OTLP receiver: gRPC and HTTP.
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// Its own counters in Prometheus' text format, at `/metrics`.
    pub prometheus: SocketAddr,
}

impl Collector {
    /// Starts a Collector that forwards to the otelite whose OTLP listener
    /// is `otelite`, with extra `--set` flags (`key::path=value`); waits
    /// until its receivers and its Prometheus endpoint answer.
    pub fn start(otelite: SocketAddr, forward: Forward, sets: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the Collector's log");
        let (grpc, http, prometheus) = (free_port(), free_port(), free_port());
        let log = std::fs::File::create(dir.path().join("collector.log")).expect("log file");
        let mut command = Command::new(collector_bin());
        command
            .arg(format!("--config=file:{}", sample_config().display()))
            .env("OTELITE_ENDPOINT", format!("http://{otelite}"))
            .env("COLLECTOR_GRPC_LISTEN", grpc.to_string())
            .env("COLLECTOR_HTTP_LISTEN", http.to_string())
            .env("COLLECTOR_PROMETHEUS_HOST", prometheus.ip().to_string())
            .env("COLLECTOR_PROMETHEUS_PORT", prometheus.port().to_string())
            .env("COLLECTOR_REPORT_INTERVAL_MS", REPORT_INTERVAL_MS)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        for set in forward
            .sets(otelite)
            .iter()
            .map(String::as_str)
            .chain(sets.iter().copied())
        {
            command.arg(format!("--set={set}"));
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let mut collector = Self {
            child,
            dir,
            grpc,
            http,
            prometheus,
        };
        collector.wait_ready();
        collector
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        let up =
            |addr: &SocketAddr| TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_ok();
        while !(up(&self.grpc) && up(&self.http) && up(&self.prometheus)) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the Collector exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the Collector did not listen within {WAIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the Collector wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }

    /// Base URL of its OTLP/HTTP receiver, as SDKs take it.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// URL of its OTLP/gRPC receiver, as SDKs take it.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The Collector's own counters from its Prometheus endpoint, read with
    /// the Prometheus project's parser (`parse_metrics.py`).
    pub fn own_counts(&self) -> OwnCounts {
        let url = format!("http://{}/metrics", self.prometheus);
        let text = reqwest::blocking::get(&url)
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.log()));
        OwnCounts(parse_prometheus(&text))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

pub use super::foreign::MetricSample as Sample;

fn parse_prometheus(text: &str) -> Vec<Sample> {
    let families = super::foreign::parse_prometheus(text, "the Collector's metrics");
    families.into_iter().flat_map(|f| f.samples).collect()
}

/// The Collector's own counter samples.
#[derive(Debug, Clone)]
pub struct OwnCounts(pub Vec<Sample>);

impl OwnCounts {
    /// The sum of a counter's samples whose labels include `labels`; 0 when
    /// it has none (the Collector reports a counter once it counted).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value as u64)
            .sum()
    }

    /// The distinct values of one label over a counter's samples.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .0
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}
