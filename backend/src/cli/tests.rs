//! The commands run on a database seeded through the real store, their
//! output compared as text; then the same commands with `--server` against
//! a real server on that file, their output compared with `--db`'s.

use super::*;
use crate::analyze;
use crate::stage::Stage;
use crate::store::{CounterPoint, QueueLimits, SpanBatch, SpanRow, Store};
use clap::Parser;
use otelite_exporter::model::{
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
    let (store, writer) = Store::open(&db, limits)?;
    let spans = seed_spans();
    let mut counted = Vec::new();
    for (service, n) in [("frontend", 1), ("shop", 3)] {
        counted.push((service.to_owned(), Stage::Process, n));
        counted.push((service.to_owned(), Stage::Analyze, n));
    }
    let batch = SpanBatch {
        spans: analyze::analyze(spans)
            .into_iter()
            .map(SpanRow::new)
            .collect(),
        counted,
        received_ns: T0,
    };
    store.try_write_spans(batch)?.blocking_recv()??;
    let counters = [
        (Stage::Total, 10),
        (Stage::Collect, 10),
        (Stage::Transmit, 8),
    ]
    .into_iter()
    .map(|(stage, value)| CounterPoint {
        service: "frontend".into(),
        stage,
        series: "s@1".into(),
        value,
        cumulative: true,
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
SERVICE   TOTAL        COLLECT      TRANSMIT     PROCESS      ANALYZE      STORE
frontend  10 (100.0%)  10 (100.0%)  8 (80.0%) !  1 (10.0%) !  1 (10.0%) !  1 (10.0%) !
shop      -            -            -            3 (100.0%)   3 (100.0%)   3 (100.0%)
(all)     -            -            -            4 (100.0%)   4 (100.0%)   4 (100.0%)

note: no exporter counters from shop; rates for all services are relative to the process stage
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
