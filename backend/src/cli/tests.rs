//! The commands run on a database seeded through the real store, their
//! output compared as text; then the same commands with `--server` against
//! a real server on that file, their output compared with `--db`'s.

use super::*;
use crate::analyze;
use crate::stage::Stage;
use crate::storage::remote::RemoteError;
use crate::storage::sqlite::{SpanBatch, SpanRow, SqliteStore};
use crate::storage::{CounterPoint, QueueLimits};
use clap::Parser;
use otelite_model::{
    AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};
use std::path::Path;
use std::sync::Arc;

/// 2024-05-01T12:00:00Z.
const T0: u64 = 1_714_564_800_000_000_000;
const MS: u64 = 1_000_000;
const TRACE_A: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn span(
    trace: u8,
    id: u8,
    parent: Option<u8>,
    service: &str,
    name: &str,
    start: u64,
    end: u64,
) -> Span {
    Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|p| SpanId([p; 8])),
        trace_state: String::new(),
        flags: 1,
        resource: Arc::new(Resource::new(
            vec![KeyValue::new(
                "service.name",
                AnyValue::String(service.into()),
            )],
            0,
            String::new(),
        )),
        scope: Arc::new(Scope::default()),
        name: name.into(),
        kind: SpanKind::Internal,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status: Status::default(),
        attributes: vec![],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
    }
}

/// Trace A: frontend `GET /checkout` (4 ms) calls shop `charge` (failed),
/// which queries the database. Trace B: one shop span a second later.
fn seed_spans() -> Vec<Span> {
    let mut root = span(0x0a, 1, None, "frontend", "GET /checkout", T0, T0 + 4 * MS);
    root.kind = SpanKind::Server;
    let mut charge = span(0x0a, 2, Some(1), "shop", "charge", T0 + MS, T0 + 3 * MS);
    charge.kind = SpanKind::Server;
    charge.status.code = StatusCode::Error;
    let mut query = span(
        0x0a,
        3,
        Some(2),
        "shop",
        "db.query",
        T0 + 1_500_000,
        T0 + 2_500_000,
    );
    query.kind = SpanKind::Client;
    query.attributes = vec![KeyValue::new("user.id", AnyValue::Int(7))];
    let health = span(
        0x0b,
        1,
        None,
        "shop",
        "GET /health",
        T0 + 1_000 * MS,
        T0 + 1_000 * MS + 500_000,
    );
    vec![root, charge, query, health]
}

/// A database file holding `seed_spans`, the process and analyze counts
/// for them, and exporter counters for frontend only (10 ended, 8 sent).
fn seeded() -> Result<(tempfile::TempDir, PathBuf), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("otelite.db");
    let limits = QueueLimits {
        requests: 4,
        spans: 1000,
    };
    let (store, writer) = SqliteStore::open(&db, limits)?;
    let spans = seed_spans();
    let mut counted = Vec::new();
    for (service, n) in [("frontend", 1), ("shop", 3)] {
        counted.push((service.to_owned(), Stage::Process, n));
        counted.push((service.to_owned(), Stage::Analyze, n));
    }
    let batch = SpanBatch::new(
        analyze::analyze(spans)
            .into_iter()
            .map(SpanRow::new)
            .collect(),
        counted,
        Vec::new(),
        T0,
    );
    store.try_write_batch(batch)?.blocking_recv()??;
    let counters = [
        (Stage::Total, 10),
        (Stage::Collect, 10),
        (Stage::Transmit, 8),
    ]
    .into_iter()
    .map(|(stage, value)| CounterPoint {
        service: "frontend".into(),
        stage,
        reason: None,
        series: "s@1".into(),
        value,
        cumulative: true,
        monotonic: true,
        subtracts: false,
        time_ns: T0,
    })
    .collect();
    store.try_write_counters(counters)?.blocking_recv()??;
    drop(store);
    writer.join();
    Ok((dir, db))
}

fn context() -> Context {
    Context {
        colour: false,
        now_ns: T0 + 1_800_000 * MS, // half an hour later
        var: |_| None,               // the machine's OTELITE_SERVER must not count
    }
}

/// Runs `otelite <args> --db <db>` as the binary would, returning stdout.
fn run_on(db: &Path, args: &[&str]) -> Result<String, CliError> {
    run_with(db, args, context())
}

fn run_with(db: &Path, args: &[&str], context: Context) -> Result<String, CliError> {
    let db = db.to_str().expect("utf-8 temp path");
    let mut argv = vec!["otelite"];
    argv.extend(args);
    argv.extend(["--db", db]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_argv(argv, context))
}

/// Parses `argv` as the binary would and runs the command.
async fn run_argv(argv: Vec<&str>, context: Context) -> Result<String, CliError> {
    let cli = Cli::try_parse_from(argv).map_err(|e| CliError::BadArgument(e.to_string()))?;
    let mut out = Vec::new();
    run(&cli.command, &mut out, context).await?;
    Ok(String::from_utf8(out).expect("utf-8 output"))
}

#[test]
fn the_argument_definitions_are_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

#[test]
fn services_and_operations_are_listed() -> TestResult {
    let (_dir, db) = seeded()?;
    assert_eq!(run_on(&db, &["services"])?, "frontend\nshop\n");
    assert_eq!(
        run_on(&db, &["operations", "shop"])?,
        "OPERATION    KIND\nGET /health  internal\ncharge       server\ndb.query     client\n"
    );
    assert_eq!(
        run_on(&db, &["operations", "shop", "--kind", "client"])?,
        "OPERATION  KIND\ndb.query   client\n"
    );
    let json: serde_json::Value = serde_json::from_str(&run_on(&db, &["services", "--json"])?)?;
    assert_eq!(
        json,
        serde_json::json!({ "services": ["frontend", "shop"] })
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_on(&db, &["operations", "frontend", "--json"])?)?;
    assert_eq!(
        json,
        serde_json::json!({ "service": "frontend", "operations": [
            { "name": "GET /checkout", "kind": "server" }
        ]})
    );
    let error = run_on(&db, &["operations", "nobody"]).expect_err("unknown service");
    assert!(
        error.to_string().contains("no service \"nobody\""),
        "{error}"
    );
    Ok(())
}

#[test]
fn traces_are_a_table_newest_first() -> TestResult {
    let (_dir, db) = seeded()?;
    let expected = "\
TRACE ID                          START                     DURATION  ROOT                     SPANS  ERRORS  SERVICES
0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b  2024-05-01T12:00:01.000Z  500µs     shop: GET /health        1      0       shop(1)
0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a  2024-05-01T12:00:00.000Z  4.00ms    frontend: GET /checkout  3      1       frontend(1) shop(2)
";
    assert_eq!(run_on(&db, &["traces"])?, expected);
    Ok(())
}

#[test]
fn trace_filters_reach_the_search() -> TestResult {
    let (_dir, db) = seeded()?;
    let ids = |args: &[&str]| -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let mut all = vec!["traces", "--json"];
        all.extend(args);
        let json: serde_json::Value = serde_json::from_str(&run_on(&db, &all)?)?;
        Ok(json["traces"]
            .as_array()
            .ok_or("no traces array")?
            .iter()
            .map(|t| t["traceId"].as_str().unwrap_or_default()[..2].to_owned())
            .collect())
    };
    assert_eq!(ids(&[])?, ["0b", "0a"]);
    let json = run_on(&db, &["traces", "--json", "--limit", "1"])?;
    assert!(
        json.starts_with("{\n  \"traces\": [\n    {\n      \"traceId\": \"0b0b"),
        "fields keep their order, the id first: {json}"
    );
    assert_eq!(ids(&["--limit", "1"])?, ["0b"]);
    assert_eq!(ids(&["--error"])?, ["0a"]);
    assert_eq!(ids(&["--service", "frontend"])?, ["0a"]);
    assert_eq!(ids(&["--operation", "GET /health"])?, ["0b"]);
    assert_eq!(ids(&["--kind", "client"])?, ["0a"]);
    assert_eq!(ids(&["--attr", "user.id=7"])?, ["0a"]);
    assert!(ids(&["--attr", "user.id=8"])?.is_empty());
    assert_eq!(ids(&["--attr-prefix", "service.name=front"])?, ["0a"]);
    assert!(ids(&["--attr-prefix", "service.name=back"])?.is_empty());
    // Durations are those of spans: trace A's query span is 1ms.
    assert_eq!(ids(&["--min-duration", "1ms"])?, ["0a"]);
    assert_eq!(ids(&["--max-duration", "1ms"])?, ["0b", "0a"]);
    assert_eq!(ids(&["--max-duration", "900us"])?, ["0b"]);
    assert_eq!(
        ids(&["--min-duration", "3ms", "--service", "shop"])?,
        Vec::<String>::new()
    );
    assert_eq!(ids(&["--since", "1h"])?, ["0b", "0a"]);
    assert!(ids(&["--since", "10m"])?.is_empty());
    assert_eq!(
        ids(&[
            "--start",
            "2024-05-01T12:00:00.500Z",
            "--end",
            "2024-05-01T13:00:00Z"
        ])?,
        ["0b"]
    );
    assert!(
        run_on(
            &db,
            &["traces", "--since", "1h", "--start", "2024-05-01T12:00:00Z"]
        )
        .is_err()
    );
    assert!(run_on(&db, &["traces", "--min-duration", "10"]).is_err());
    assert!(run_on(&db, &["traces", "--attr", "novalue"]).is_err());
    assert_eq!(
        run_on(&db, &["traces", "--service", "nobody"])?,
        "no traces found\n"
    );
    Ok(())
}

#[test]
fn a_trace_is_a_waterfall() -> TestResult {
    let (_dir, db) = seeded()?;
    let bar = |blank: usize, full: usize| format!("{}{}", " ".repeat(blank), "█".repeat(full));
    let expected = format!(
        "trace {TRACE_A}  start 2024-05-01T12:00:00.000Z  duration 4.00ms  spans 3  errors 1

   SPAN           SERVICE   DURATION  TIMELINE
   GET /checkout  frontend  4.00ms    {}
!    charge       shop      2.00ms    {}
       db.query   shop      1.00ms    {}
",
        bar(0, 40),
        bar(10, 20),
        bar(15, 10)
    );
    assert_eq!(run_on(&db, &["trace", TRACE_A])?, expected);
    let coloured = run_with(
        &db,
        &["trace", TRACE_A],
        Context {
            colour: true,
            ..context()
        },
    )?;
    assert!(coloured.contains("\x1b[31m!\x1b[0m"), "{coloured}");
    Ok(())
}

#[test]
fn trace_json_is_the_model_spans() -> TestResult {
    let (_dir, db) = seeded()?;
    let json: serde_json::Value =
        serde_json::from_str(&run_on(&db, &["trace", TRACE_A, "--json"])?)?;
    assert_eq!(json["traceId"], TRACE_A);
    let spans: Vec<Span> = serde_json::from_value(json["spans"].clone())?;
    assert_eq!(spans, seed_spans()[..3]);
    Ok(())
}

#[test]
fn rates_show_unknown_stages_and_losses() -> TestResult {
    let (_dir, db) = seeded()?;
    let expected = "\
SERVICE   TOTAL        COLLECT      TRANSMIT      PROCESS      ANALYZE      STORE        LOST (WHY)
frontend  10 (100.0%)  10 (100.0%)  8 (80.0%) !   1 (10.0%) !  1 (10.0%) !  1 (10.0%) !  transmit 2 (unaccounted 2); process 7 (unaccounted 7)
shop      -            -            -             3 (100.0%)   3 (100.0%)   3 (100.0%)   -
(all)     13 (100.0%)  13 (100.0%)  11 (84.6%) !  4 (30.8%) !  4 (30.8%) !  4 (30.8%) !  transmit 2 (unaccounted 2); process 7 (unaccounted 7)

note: no exporter counters from shop: their spans count as reaching process unharmed, so losses before process are a lower bound
";
    assert_eq!(run_on(&db, &["rates"])?, expected);
    let shop_only = run_on(&db, &["rates", "--service", "shop"])?;
    assert!(
        shop_only
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("shop ")),
        "{shop_only}"
    );
    assert!(
        !shop_only.contains("frontend") && !shop_only.contains("(all)"),
        "{shop_only}"
    );
    assert_eq!(
        run_on(&db, &["rates", "--since", "10m"])?,
        "no stage counts recorded\n"
    );
    let json: serde_json::Value = serde_json::from_str(&run_on(&db, &["rates", "--json"])?)?;
    assert_eq!(json["services"].as_array().map(Vec::len), Some(2));
    Ok(())
}

#[test]
fn deps_are_the_calls_between_services() -> TestResult {
    let (_dir, db) = seeded()?;
    assert_eq!(
        run_on(&db, &["deps"])?,
        "PARENT       CHILD  CALLS  ERRORS\nfrontend  →  shop   1      1\n"
    );
    let json: serde_json::Value = serde_json::from_str(&run_on(&db, &["deps", "--json"])?)?;
    assert_eq!(
        json,
        serde_json::json!({ "dependencies": [
            { "parent": "frontend", "child": "shop", "callCount": 1, "errorCount": 1 }
        ]})
    );
    assert_eq!(
        run_on(&db, &["deps", "--since", "10m"])?,
        "no calls between services recorded\n"
    );
    Ok(())
}

#[test]
fn errors_name_their_cause() -> TestResult {
    let (dir, db) = seeded()?;
    let unknown = "ffffffffffffffffffffffffffffffff";
    let error = run_on(&db, &["trace", unknown]).expect_err("unknown trace");
    assert!(matches!(error, CliError::UnknownTrace { .. }), "{error}");
    assert!(
        error.to_string().contains(&format!("no trace {unknown}")),
        "{error}"
    );

    let error = run_on(&db, &["trace", "xyz"]).expect_err("bad id");
    assert!(error.to_string().contains("not 32 hex digits"), "{error}");

    let missing = dir.path().join("missing.db");
    let error = run_on(&missing, &["services"]).expect_err("missing file");
    assert!(error.to_string().contains("no such file"), "{error}");
    assert!(!missing.exists(), "reading must not create the file");

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database at all, just some text that is long enough",
    )?;
    let error = run_on(&text, &["services"]).expect_err("text file");
    assert!(
        error.to_string().contains("not an otelite database"),
        "{error}"
    );

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)?.execute_batch("CREATE TABLE notes (x)")?;
    let error = run_on(&other, &["traces"]).expect_err("foreign database");
    assert!(
        error.to_string().contains("not an otelite database"),
        "{error}"
    );
    Ok(())
}

/// `seeded` from an async test (the store's writer is waited on blocking).
async fn seeded_off_runtime() -> Result<(tempfile::TempDir, PathBuf), Box<dyn std::error::Error>> {
    Ok(tokio::task::spawn_blocking(|| seeded().map_err(|e| e.to_string())).await??)
}

/// A real server on `db` (port 0), stopped when dropped.
struct Served {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(db: &Path, token: Option<&str>) -> Result<Served, Box<dyn std::error::Error>> {
    let server = crate::Server::bind(crate::Config {
        db_path: db.to_owned(),
        otlp_listen: "127.0.0.1:0".parse()?,
        otlp_grpc_listen: "127.0.0.1:0".parse()?,
        query_listen: "127.0.0.1:0".parse()?,
        query_token: token.map(crate::net::BearerToken::new),
        ..Default::default()
    })
    .await?;
    let url = format!("http://{}", server.query_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Ok(Served {
        url,
        stop: Some(stop),
    })
}

/// `otelite <args> <source…>` as the binary would run it.
async fn run_from(args: &[&str], source: &[&str]) -> Result<String, CliError> {
    let mut argv = vec!["otelite"];
    argv.extend(args);
    argv.extend(source);
    run_argv(argv, context()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_answers_as_the_file_does() -> TestResult {
    let (_dir, db) = seeded_off_runtime().await?;
    let served = serve(&db, None).await?;
    let db = db.to_str().ok_or("utf-8 temp path")?;
    let unknown = "ffffffffffffffffffffffffffffffff";
    let commands: &[&[&str]] = &[
        &["services"],
        &["services", "--json"],
        &["operations", "shop"],
        &["operations", "shop", "--kind", "client"],
        &["operations", "frontend", "--json"],
        &["traces"],
        &["traces", "--json"],
        &["traces", "--error", "--service", "shop", "--json"],
        &["traces", "--attr", "user.id=7", "--kind", "client"],
        &["traces", "--attr-prefix", "service.name=fr", "--json"],
        &["traces", "--min-duration", "1ms", "--since", "1h", "--json"],
        &["traces", "--operation", "GET /health", "--limit", "1"],
        &[
            "traces",
            "--start",
            "2024-05-01T12:00:00.500Z",
            "--end",
            "2024-05-01T13:00:00Z",
        ],
        &["traces", "--service", "nobody"],
        // Empty filters filter nothing, as the API's `service=`.
        &["traces", "--service", "", "--json"],
        &["traces", "--service", "", "--operation", ""],
        &["trace", TRACE_A],
        &["trace", TRACE_A, "--json"],
        &["rates"],
        &["rates", "--json"],
        &["rates", "--service", "shop"],
        &["rates", "--service", ""],
        &["rates", "--since", "10m", "--json"],
        &["deps"],
        &["deps", "--json"],
        &["deps", "--since", "10m"],
    ];
    for args in commands {
        let from_file = run_from(args, &["--db", db]).await?;
        let from_server = run_from(args, &["--server", &served.url]).await?;
        assert_eq!(from_server, from_file, "otelite {}", args.join(" "));
        assert!(!from_file.is_empty(), "otelite {}", args.join(" "));
    }
    assert_eq!(
        run_from(&["traces", "--service", ""], &["--db", db]).await?,
        run_from(&["traces"], &["--db", db]).await?,
        "--service \"\" is no filter"
    );
    // The same errors, naming the server instead of the file.
    let error = run_from(&["trace", unknown], &["--server", &served.url])
        .await
        .expect_err("unknown trace");
    assert!(matches!(error, CliError::UnknownTrace { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!("no trace {unknown} in {}", served.url)
    );
    let error = run_from(&["operations", "nobody"], &["--server", &served.url])
        .await
        .expect_err("unknown service");
    assert_eq!(
        error.to_string(),
        format!("no service \"nobody\" in {}", served.url)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn long_searches_page_through_the_server() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("otelite.db");
    let (store, writer) = SqliteStore::open(
        &db,
        QueueLimits {
            requests: 4,
            spans: 10_000,
        },
    )?;
    // 1100 one-span traces: more than the server's 1000 a page.
    let spans: Vec<Span> = (0..1100u64)
        .map(|i| {
            let mut one = span(0, 1, None, "shop", "tick", T0 + i * MS, T0 + i * MS + 1);
            one.trace_id.0[..8].copy_from_slice(&(i + 1).to_be_bytes());
            one
        })
        .collect();
    let batch = SpanBatch::new(
        analyze::analyze(spans)
            .into_iter()
            .map(SpanRow::new)
            .collect(),
        vec![],
        vec![],
        T0,
    );
    store.try_write_batch(batch)?.await??;
    drop(store);
    tokio::task::spawn_blocking(move || writer.join()).await?;
    let served = serve(&db, None).await?;
    let db = db.to_str().ok_or("utf-8 temp path")?;
    let args = ["traces", "--json", "--limit", "1050"];
    let from_file = run_from(&args, &["--db", db]).await?;
    let from_server = run_from(&args, &["--server", &served.url]).await?;
    let json: serde_json::Value = serde_json::from_str(&from_server)?;
    assert_eq!(json["traces"].as_array().map(Vec::len), Some(1050));
    assert_eq!(from_server, from_file);
    let all = run_from(&["traces", "--limit", "5000"], &["--server", &served.url]).await?;
    assert_eq!(all.lines().count(), 1 + 1100, "a header and every trace");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_query_token_is_sent_and_a_refusal_says_so() -> TestResult {
    let (_dir, db) = seeded_off_runtime().await?;
    let served = serve(&db, Some("s3cret")).await?;
    let server = ["--server", served.url.as_str()];
    let error = run_from(&["services"], &server)
        .await
        .expect_err("no token");
    assert!(
        matches!(error, CliError::Remote(RemoteError::Unauthorized { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("needs a query token"), "{error}");
    let wrong = [&server[..], &["--query-token", "guess"]].concat();
    let error = run_from(&["services"], &wrong)
        .await
        .expect_err("wrong token");
    assert!(
        error.to_string().contains("refused the query token"),
        "{error}"
    );
    let right = [&server[..], &["--query-token", "s3cret"]].concat();
    assert_eq!(run_from(&["services"], &right).await?, "frontend\nshop\n");
    Ok(())
}

/// Answers one connection with `response`, as written, from a thread.
fn one_answer(response: &'static str) -> std::io::Result<std::net::SocketAddr> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        if let Ok((mut socket, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request);
            let _ = socket.write_all(response.as_bytes());
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn server_failures_name_their_cause() -> TestResult {
    // Bound then dropped: the port is very likely closed right after.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let url = format!("http://{closed}");
    let error = run_from(&["services"], &["--server", &url])
        .await
        .expect_err("refused");
    assert!(
        matches!(error, CliError::Remote(RemoteError::Unreachable { .. })),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot reach the otelite server at {url}: ")),
        "{error}"
    );

    let addr = one_answer(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 33\r\nconnection: close\r\n\r\n{\"error\":\"limit is out of range\"}",
    )?;
    let error = run_from(&["traces"], &["--server", &format!("http://{addr}")])
        .await
        .expect_err("400");
    assert!(
        matches!(&error, CliError::Remote(RemoteError::ServerAnswer { status, message, .. })
            if status.as_u16() == 400 && message == "limit is out of range"),
        "{error}"
    );

    // A 404 that is not otelite's (no JSON error): not an unknown trace.
    let addr =
        one_answer("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
    let error = run_from(
        &["trace", TRACE_A],
        &["--server", &format!("http://{addr}")],
    )
    .await
    .expect_err("404");
    assert!(
        matches!(&error, CliError::Remote(RemoteError::ServerAnswer { status, .. }) if status.as_u16() == 404),
        "{error}"
    );

    let addr = one_answer(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\nconnection: close\r\n\r\n<html></html>",
    )?;
    let error = run_from(&["services"], &["--server", &format!("http://{addr}")])
        .await
        .expect_err("not JSON");
    assert!(
        matches!(error, CliError::Remote(RemoteError::BadAnswer { .. })),
        "{error}"
    );

    // Accepted by the kernel's backlog, never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", silent.local_addr()?);
    let error = run_from(&["services"], &["--server", &url, "--timeout", "200ms"])
        .await
        .expect_err("silent");
    assert!(
        matches!(error, CliError::Remote(RemoteError::Timeout { .. })),
        "{error}"
    );

    let error = run_from(&["services"], &["--server", "localhost:16686"])
        .await
        .expect_err("no scheme");
    assert!(error.to_string().contains("not an http"), "{error}");
    let both = run_from(&["services"], &["--server", &url, "--db", "x.db"]).await;
    assert!(both.is_err(), "--db and --server exclude each other");
    drop(silent);
    Ok(())
}

#[test]
fn flags_win_over_the_environment() -> TestResult {
    let common = |args: &[&str]| -> Result<Common, clap::Error> {
        let mut argv = vec!["otelite", "services"];
        argv.extend(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Services(args) => Ok(args.common),
            _ => unreachable!("parsed services"),
        }
    };
    let env = |name: &str| (name == source::SERVER_ENV).then(|| "http://127.0.0.1:1".to_owned());
    let place = |args: &[&str], var: &dyn Fn(&str) -> Option<String>| {
        source::Source::named_by(&common(args).expect("valid flags"), var).map(|p| p.name())
    };
    assert_eq!(place(&[], &|_| None)?, source::DEFAULT_DB);
    assert_eq!(place(&[], &env)?, "http://127.0.0.1:1");
    assert_eq!(place(&["--db", "a.db"], &env)?, "a.db");
    assert_eq!(place(&["--server", "http://h:2/"], &env)?, "http://h:2");
    let blank = |name: &str| (name == source::SERVER_ENV).then(|| " ".to_owned());
    assert_eq!(place(&[], &blank)?, source::DEFAULT_DB);
    assert!(matches!(
        place(&[], &|name| (name == source::SERVER_ENV)
            .then(|| "nonsense".into())),
        Err(CliError::BadArgument(_))
    ));
    Ok(())
}

/// A span at the very end of u64 nanoseconds (year 2554): the store keeps
/// instants as SQLite integers (i64, up to 2262-04-11), so every display
/// shows the last of those, the search's summary and the waterfall alike.
#[test]
fn the_last_instant_shows_alike_in_the_search_and_the_waterfall() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("otelite.db");
    let limits = QueueLimits {
        requests: 4,
        spans: 1000,
    };
    let (store, writer) = SqliteStore::open(&db, limits)?;
    let late = span(0x0c, 1, None, "late", "edge", u64::MAX, u64::MAX);
    let rows = analyze::analyze(vec![late])
        .into_iter()
        .map(SpanRow::new)
        .collect();
    store
        .try_write_batch(SpanBatch::new(rows, Vec::new(), Vec::new(), T0))?
        .blocking_recv()??;
    drop(store);
    writer.join();
    let last = "2262-04-11T23:47:16.854Z";
    let search = run_on(&db, &["traces"])?;
    assert!(search.contains(last), "{search}");
    let waterfall = run_on(&db, &["trace", "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"])?;
    assert!(waterfall.contains(last), "{waterfall}");
    assert!(!waterfall.contains("2554"), "{waterfall}");
    Ok(())
}
