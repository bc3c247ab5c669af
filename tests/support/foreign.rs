//! Finding and running the foreign clients in `tests/clients/`. Their
//! dependencies are installed by `.ci/run`; when they are missing the test
//! fails and says how to install them, since CI must never skip them.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A client script gets this long to send its trace and exit.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

const INSTALL_HINT: &str = "install the foreign-client dependencies as `.ci/run` does: \
    `python3 -m pip install -r tests/clients/python/requirements.txt` and \
    `(cd tests/clients/node && npm ci)` and \
    `(cd tests/clients/go && go build -o client .)`";

pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// What a client script prints: its trace id and span ids by span name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    pub trace_id: String,
    pub spans: BTreeMap<String, String>,
}

/// The Python interpreter: `$OTELITE_PYTHON`, else `python3`.
pub fn python() -> String {
    let python = std::env::var("OTELITE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let check = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.sdk.trace, \
             opentelemetry.exporter.otlp.proto.http.trace_exporter, \
             opentelemetry.exporter.otlp.json.http.trace_exporter",
        ])
        .output();
    match check {
        Ok(out) if out.status.success() => python,
        Ok(out) => panic!(
            "{python} lacks the OpenTelemetry packages ({}); {INSTALL_HINT}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run {python} ({e}); {INSTALL_HINT}"),
    }
}

/// The Node binary: `$OTELITE_NODE`, else `node`; checks `npm ci` was run.
pub fn node() -> String {
    let node = std::env::var("OTELITE_NODE").unwrap_or_else(|_| "node".to_owned());
    let modules = clients_dir().join("node/node_modules/@opentelemetry");
    for package in [
        "sdk-trace-node",
        "exporter-trace-otlp-http",
        "exporter-trace-otlp-proto",
        "exporter-trace-otlp-grpc",
    ] {
        assert!(
            modules.join(package).is_dir(),
            "tests/clients/node/node_modules lacks @opentelemetry/{package}; {INSTALL_HINT}"
        );
    }
    match Command::new(&node).arg("--version").output() {
        Ok(out) if out.status.success() => node,
        Ok(out) => panic!("{node} --version failed: {out:?}; {INSTALL_HINT}"),
        Err(e) => panic!("cannot run {node} ({e}); {INSTALL_HINT}"),
    }
}

/// The Go client, built by `scripts/test.sh` (`tests/clients/go/client`).
pub fn go_client() -> PathBuf {
    let client = clients_dir().join("go/client");
    assert!(
        client.is_file(),
        "{} is not built; {INSTALL_HINT}",
        client.display()
    );
    client
}

/// Runs a client program to completion (killing it past the timeout) and
/// parses the line it prints.
pub fn run(command: Command) -> Sent {
    run_for(command)
}

/// [`run`] for a client that prints something else as its last line.
pub fn run_for<T: DeserializeOwned>(mut command: Command) -> T {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {shown}: {e}"));
    // Read both pipes on threads so a chatty client cannot block on them.
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {CLIENT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    );
    assert!(
        status.success(),
        "{shown} failed with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("{shown} printed no result line ({e})\nstdout:\n{stdout}\nstderr:\n{stderr}")
    })
}

const BUILD_HINT: &str = "build the SDK counter clients as `scripts/test.sh --install-only` does \
    (`go build` in tests/clients/go-counters, `mvn compile dependency:copy-dependencies` in \
    tests/clients/java)";

/// The Go SDK counters client, built by `scripts/test.sh` into
/// `tests/clients/go-counters/target/`.
pub fn go_counters() -> Command {
    let binary = clients_dir().join("go-counters/target/go-counters");
    assert!(
        binary.is_file(),
        "{} is missing; {BUILD_HINT}",
        binary.display()
    );
    Command::new(binary)
}

/// The Java SDK counters client (`otelite.Counters`), compiled by
/// `scripts/test.sh` with its dependencies copied beside it:
/// `$OTELITE_JAVA`, else `java`, on that classpath.
pub fn java_counters() -> Command {
    let project = clients_dir().join("java/target");
    let classes = project.join("classes/otelite/Counters.class");
    assert!(
        classes.is_file(),
        "{} is missing; {BUILD_HINT}",
        classes.display()
    );
    let java = std::env::var("OTELITE_JAVA").unwrap_or_else(|_| "java".to_owned());
    let mut command = Command::new(java);
    command.arg("-cp").arg(format!(
        "{}:{}/*",
        project.join("classes").display(),
        project.join("dependency").display()
    ));
    command.arg("otelite.Counters");
    command
}

/// The Node SDK counters client (`tests/clients/node/counters.js`).
pub fn node_counters() -> Command {
    let node = node();
    let modules = clients_dir().join("node/node_modules/@opentelemetry");
    for package in ["sdk-metrics", "exporter-metrics-otlp-http"] {
        assert!(
            modules.join(package).is_dir(),
            "tests/clients/node/node_modules lacks @opentelemetry/{package}; {INSTALL_HINT}"
        );
    }
    let mut command = Command::new(node);
    command.arg(clients_dir().join("node/counters.js"));
    command
}

/// One metric family as the Prometheus project's own text-format parser
/// (`prometheus_client`, `python/parse_metrics.py`) read it.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricFamily {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub samples: Vec<MetricSample>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Runs that parser over `text` (the exposition of `whose`); panics with
/// its message if it refuses it.
pub fn parse_prometheus(text: &str, whose: &str) -> Vec<MetricFamily> {
    let mut child = Command::new(python())
        .arg(clients_dir().join("python/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Prometheus parser");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed the parser");
    let out = child.wait_with_output().expect("parser finishes");
    assert!(
        out.status.success(),
        "prometheus_client refused {whose}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser prints JSON")
}
