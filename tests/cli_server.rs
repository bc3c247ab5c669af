//! `otelite <command> --server URL`: the real `otelite` binary asks a
//! real backend that got its spans through the real OTLP path (the otelite
//! exporter), and its output must equal `--db`'s on the same file, for every
//! command, as tables and as JSON. Then what a server can do wrong: not be
//! there, want a token, not know a trace, speak TLS with its own certificate.

use crate::support::process::{blocking, otelite_bin};
use crate::support::{self, Backend, Store, pki};
use opentelemetry::trace::{
    Span, SpanContext, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use otelite_backend::net::{BearerToken, TlsFiles};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// The variables the reading commands read: cleared for every run, so the
/// machine's own settings cannot change what is tested.
const ENV: [&str; 4] = [
    "OTELITE_SERVER",
    "OTELITE_QUERY_TOKEN",
    "OTELITE_SERVER_CA",
    "OTELITE_QUERY_LISTEN",
];

/// `otelite <args>` with `env` set; its status, stdout and stderr.
fn otelite(args: &[String], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(otelite_bin());
    command.args(args).stdin(Stdio::null());
    for name in ENV {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(name, value)| (name, value)));
    command
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", otelite_bin().display()))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&a| a.to_owned()).collect()
}

/// Runs `args` with `source` appended, expecting success; returns stdout.
fn ok(args: &[&str], source: &[&str], env: &[(&str, String)]) -> String {
    let all = strings(&[args, source].concat());
    let out = otelite(&all, env);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "otelite {all:?} failed ({}): {stderr}",
        out.status
    );
    stdout
}

/// Runs `args`, expecting failure; returns stderr.
fn fails(args: &[&str], env: &[(&str, String)]) -> String {
    let out = otelite(&strings(args), env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "otelite {args:?} should fail; printed {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "a failure prints nothing on stdout");
    stderr
}

fn child(
    tracer: &SdkTracer,
    parent: Option<&SpanContext>,
    name: &'static str,
    kind: SpanKind,
    start: SystemTime,
) -> opentelemetry_sdk::trace::Span {
    let cx = parent.map_or_else(Context::new, |p| {
        Context::new().with_remote_span_context(p.clone())
    });
    tracer
        .span_builder(name)
        .with_kind(kind)
        .with_start_time(start)
        .start_with_context(tracer, &cx)
}

/// A checkout trace across frontend and payments (one failed span, one
/// attribute) and a one-span health trace, sent by the otelite exporter;
/// returns the checkout trace id once every span and stage count is stored.
async fn seed(backend: &Backend) -> String {
    let frontend = support::otelite_provider(&backend.otlp_url(), "frontend", None);
    let payments = support::otelite_provider(&backend.otlp_url(), "payments", None);
    let (fe, pay) = (frontend.tracer("cli-server"), payments.tracer("cli-server"));
    let base = SystemTime::now() - Duration::from_secs(20);
    let at = |ms: u64| base + Duration::from_millis(ms);
    let root = child(&fe, None, "GET /checkout", SpanKind::Server, at(0));
    let root_cx = root.span_context().clone();
    let mut charge = child(&fe, Some(&root_cx), "charge", SpanKind::Client, at(10));
    charge.set_attribute(KeyValue::new("user.id", 7));
    let charge_cx = charge.span_context().clone();
    let mut server = child(
        &pay,
        Some(&charge_cx),
        "POST /charge",
        SpanKind::Server,
        at(15),
    );
    server.set_status(Status::error("card refused"));
    let server_cx = server.span_context().clone();
    let query = child(&pay, Some(&server_cx), "db.query", SpanKind::Client, at(20));
    let health = child(&fe, None, "GET /health", SpanKind::Server, at(1000));
    for (mut span, end) in [
        (query, 40),
        (server, 65),
        (charge, 70),
        (root, 100),
        (health, 1002),
    ] {
        span.end_with_timestamp(at(end));
    }
    support::shutdown(frontend).await;
    support::shutdown(payments).await;
    let id = root_cx.trace_id().to_string();
    backend.wait_for_trace(&id, 4).await;
    for service in ["frontend", "payments"] {
        backend
            .wait_for_rates(service, |r| {
                r.n("total").is_some() && r.n("store") == r.n("transmit")
            })
            .await;
    }
    id
}

/// Every command, as a table and as JSON, from the server and from the file.
fn commands(trace_id: &str) -> Vec<Vec<&str>> {
    let mut all = vec![
        vec!["services"],
        vec!["operations", "frontend"],
        vec!["operations", "payments", "--kind", "client"],
        vec!["traces"],
        vec!["traces", "--service", "payments", "--error"],
        vec!["traces", "--attr", "user.id=7", "--since", "1h"],
        vec!["traces", "--min-duration", "50ms", "--limit", "1"],
        vec!["trace", trace_id],
        vec!["rates"],
        vec!["rates", "--service", "payments"],
        vec!["deps"],
        vec!["deps", "--since", "1h"],
    ];
    let json: Vec<Vec<&str>> = all
        .iter()
        .map(|args| [&args[..], &["--json"]].concat())
        .collect();
    all.extend(json);
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_answers_from_the_server_as_from_the_file() {
    let backend = Backend::start().await;
    let trace_id = seed(&backend).await;
    let (db, url) = (backend.db_path(), backend.query_url(""));
    blocking(move || {
        let db = db.to_str().expect("utf-8 temp path");
        for args in commands(&trace_id) {
            let from_file = ok(&args, &["--db", db], &[]);
            let from_server = ok(&args, &["--server", &url], &[]);
            assert_eq!(from_server, from_file, "otelite {}", args.join(" "));
        }
        // Not two empty answers: the data is there, and the waterfall shows it.
        assert_eq!(
            ok(&["services"], &["--server", &url], &[]),
            "frontend\npayments\n"
        );
        let waterfall = ok(&["trace", &trace_id], &["--server", &url], &[]);
        for name in ["GET /checkout", "charge", "POST /charge", "db.query"] {
            assert!(waterfall.contains(name), "{name} in\n{waterfall}");
        }
        let deps = ok(&["deps"], &["--server", &url], &[]);
        assert!(deps.contains("frontend  →  payments"), "{deps}");
        // OTELITE_SERVER stands for --server; an explicit --db still wins.
        let env = [("OTELITE_SERVER", url.clone())];
        assert_eq!(
            ok(&["traces", "--json"], &[], &env),
            ok(&["traces", "--json"], &["--db", db], &[])
        );
        let missing = format!("{db}.missing");
        let stderr = fails(&["services", "--db", &missing], &env);
        assert!(stderr.contains("no such file"), "{stderr}");
    })
    .await;
}

/// The reading commands ask a server on `--store clickhouse` as they ask
/// one on SQLite: there is no file to compare with, so the answers are
/// checked against the seeded traces.
#[tokio::test(flavor = "multi_thread")]
async fn every_command_answers_from_a_clickhouse_backed_server() {
    let backend = Backend::start_on(Store::ClickHouse, "cli_server", |_| {}).await;
    let trace_id = seed(&backend).await;
    let url = backend.query_url("");
    let database = backend.clickhouse_url().expect("a ClickHouse backend");
    blocking(move || {
        // Every reader answers alike: the server over HTTP and the
        // ClickHouse database read directly, command for command.
        for args in commands(&trace_id) {
            let served = ok(&args, &["--server", &url], &[]);
            let read = ok(&args, &["--clickhouse-url", &database], &[]);
            assert_eq!(served, read, "otelite {}", args.join(" "));
        }
        let server = ["--server", url.as_str()];
        assert_eq!(ok(&["services"], &server, &[]), "frontend\npayments\n");
        let operations = ok(
            &["operations", "payments", "--kind", "client"],
            &server,
            &[],
        );
        assert!(operations.contains("db.query"), "{operations}");
        assert!(!operations.contains("POST /charge"), "{operations}");
        let waterfall = ok(&["trace", &trace_id], &server, &[]);
        for name in ["GET /checkout", "charge", "POST /charge", "db.query"] {
            assert!(waterfall.contains(name), "{name} in\n{waterfall}");
        }
        let failed = ok(
            &["traces", "--service", "payments", "--error", "--json"],
            &server,
            &[],
        );
        assert!(failed.contains(&trace_id), "{failed}");
        let by_attribute = ok(&["traces", "--attr", "user.id=7", "--json"], &server, &[]);
        assert!(by_attribute.contains(&trace_id), "{by_attribute}");
        let all = ok(&["traces", "--json"], &server, &[]);
        assert_eq!(all.matches("\"traceId\"").count(), 2, "{all}");
        let deps = ok(&["deps"], &server, &[]);
        assert!(deps.contains("frontend  →  payments"), "{deps}");
        let rates = ok(&["rates", "--service", "payments", "--json"], &server, &[]);
        assert!(rates.contains("\"store\""), "{rates}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_exit_non_zero_and_say_why() {
    // Seeded without a token (the fixtures' polls send none), then served
    // again from the same file with one.
    let plain = Backend::start().await;
    seed(&plain).await;
    let backend = Backend::restart_with(plain.stop().await, |config| {
        config.query_token = Some(BearerToken::new("cli-token"));
    })
    .await;
    let (db, url) = (backend.db_path(), backend.query_url(""));
    // Bound then dropped: the port is very likely closed right after.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    blocking(move || {
        let db = db.to_str().expect("utf-8 temp path");
        let nowhere = format!("http://{closed}");
        let stderr = fails(&["services", "--server", &nowhere], &[]);
        assert!(
            stderr.contains(&format!("cannot reach the otelite server at {nowhere}")),
            "{stderr}"
        );

        let stderr = fails(&["services", "--server", &url], &[]);
        assert!(
            stderr.contains("401") && stderr.contains("needs a query token"),
            "{stderr}"
        );
        let stderr = fails(
            &["services", "--server", &url, "--query-token", "guess"],
            &[],
        );
        assert!(stderr.contains("refused the query token"), "{stderr}");
        // The token from the variable `otelite serve` reads too.
        let env = [
            ("OTELITE_SERVER", url.clone()),
            ("OTELITE_QUERY_TOKEN", "cli-token".to_owned()),
        ];
        assert_eq!(ok(&["services"], &[], &env), "frontend\npayments\n");

        // An unknown trace: the file's message, naming the server instead.
        let unknown = "ffffffffffffffffffffffffffffffff";
        let from_server = fails(&["trace", unknown], &env);
        let from_file = fails(&["trace", unknown, "--db", db], &[]);
        assert!(
            from_file.contains(&format!("no trace {unknown} in {db}")),
            "{from_file}"
        );
        assert_eq!(from_server.replace(&url, db), from_file);
        let stderr = fails(&["operations", "nobody"], &env);
        assert!(
            stderr.contains(&format!("no service \"nobody\" in {url}")),
            "{stderr}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_server_with_its_own_certificate() {
    let pki = pki::pki();
    let cert = pki.cert.clone();
    let files = TlsFiles {
        cert: cert.clone(),
        key: pki.key.clone(),
    };
    let backend = Backend::start_with(|config| config.tls = Some(files)).await;
    let url = format!("https://localhost:{}", backend.query.port());
    blocking(move || {
        let ca = cert.to_str().expect("utf-8 temp path");
        assert_eq!(
            ok(&["services"], &["--server", &url, "--server-ca", ca], &[]),
            ""
        );
        let env = [("OTELITE_SERVER_CA", ca.to_owned())];
        assert_eq!(
            ok(&["services", "--json"], &["--server", &url], &env),
            "{\n  \"services\": []\n}\n"
        );
        // Without the certificate the server is not trusted, and it says so.
        let stderr = fails(&["services", "--server", &url], &[]);
        assert!(
            stderr.contains("cannot reach the otelite server") && stderr.contains("certificate"),
            "{stderr}"
        );
        let missing = Path::new(ca).with_file_name("missing.pem");
        let stderr = fails(
            &[
                "services",
                "--server",
                &url,
                "--server-ca",
                missing.to_str().unwrap_or(""),
            ],
            &[],
        );
        assert!(stderr.contains("missing.pem"), "{stderr}");
    })
    .await;
}

/// The usual self-signed certificate, `openssl req -x509 …`, says `CA:TRUE`:
/// trusted with `--server-ca` as curl's `--cacert` trusts it.
#[tokio::test(flavor = "multi_thread")]
async fn an_https_server_with_an_openssl_style_self_signed_certificate() {
    let pki = pki::openssl_style();
    let cert = pki.cert.clone();
    let files = TlsFiles {
        cert: cert.clone(),
        key: pki.key.clone(),
    };
    let backend = Backend::start_with(|config| config.tls = Some(files)).await;
    let url = format!("https://localhost:{}", backend.query.port());
    blocking(move || {
        let ca = cert.to_str().expect("utf-8 temp path");
        assert_eq!(
            ok(
                &["services", "--json"],
                &["--server", &url, "--server-ca", ca],
                &[]
            ),
            "{\n  \"services\": []\n}\n"
        );
    })
    .await;
}
