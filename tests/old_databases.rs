//! Databases written by earlier otelite versions, each made once by the
//! version that wrote it (`tests/fixtures/databases`, see its README): today's
//! otelite opens a copy, upgrades it to the current schema, returns every span
//! as it was sent, finds the traces by service and attribute, and stores and
//! finds new spans beside them. The reading commands refuse a file that is
//! not upgraded yet, with the command that upgrades it, and read it after.
//!
//! Expected values are written out here from `spans.json`, never computed by
//! otelite code, so a change that leaves real old files unreadable fails.

use crate::support::process::{blocking, otelite_bin};
use crate::support::{Backend, fixtures};
use otelite_exporter::model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

/// The schema version today's otelite writes.
const CURRENT_VERSION: i64 = 10;

/// The fixtures' two traces: a checkout through `shop` and `payments`, and a
/// settlement in `payments` one minute later.
const CHECKOUT: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SETTLE: &str = "5b8efff798038103d269b633813fc60c";
/// The trace this test adds to the upgraded file, a day after the others.
const CART: &str = "7e57ab1e7e57ab1e7e57ab1e7e57ab1e";

/// 2026-11-20T10:00:00Z, the fixtures' first span.
const T0: u64 = 1_795_168_800_000_000_000;
const MS: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn v1() {
    opens_upgrades_and_reads(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v2() {
    opens_upgrades_and_reads(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v3() {
    opens_upgrades_and_reads(3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v4() {
    opens_upgrades_and_reads(4).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v5() {
    opens_upgrades_and_reads(5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn v6() {
    opens_upgrades_and_reads(6).await;
}

/// The last version whose search tokens were hex (see version 10).
#[tokio::test(flavor = "multi_thread")]
async fn v9() {
    opens_upgrades_and_reads(9).await;
}

async fn opens_upgrades_and_reads(version: i64) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let db = dir.path().join(format!("v{version}.db"));
    let fixture = fixtures().join(format!("v{version}.db"));
    std::fs::copy(&fixture, &db)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", fixture.display(), db.display()));
    assert_eq!(user_version(&db), version, "the fixture's own version");
    if version < CURRENT_VERSION {
        cli_refuses_until_upgraded(&db, version).await;
    }

    let path = db.clone();
    let backend = Backend::start_with(move |config| config.db_path = path).await;
    reads_what_was_sent(&backend).await;
    takes_new_spans(&backend).await;
    backend.stop().await;

    assert_eq!(user_version(&db), CURRENT_VERSION, "upgraded in place");
    cli_reads(&db).await;
}

/// Every span of both traces, field for field, and the searches that find them.
async fn reads_what_was_sent(backend: &Backend) {
    assert_eq!(sorted(backend.trace(CHECKOUT).await), checkout_spans());
    assert_eq!(sorted(backend.trace(SETTLE).await), settle_spans());

    assert_eq!(found(backend, "service=shop").await, [CHECKOUT]);
    assert_eq!(found(backend, "service=payments").await, [SETTLE, CHECKOUT]);
    assert_eq!(
        found(backend, "service=payments&operation=settle+batch").await,
        [SETTLE]
    );
    assert_eq!(found(backend, "error=true").await, [CHECKOUT]);
    assert_eq!(
        found(backend, "attribute=peer.service=payments").await,
        [CHECKOUT]
    );
    assert_eq!(found(backend, "attribute=db.system=sqlite").await, [SETTLE]);
    // A resource attribute: both traces have a span from `payments`.
    assert_eq!(
        found(backend, "attribute=deployment.environment=fixture").await,
        [SETTLE, CHECKOUT]
    );
    assert_eq!(
        found(backend, "attribute=host.name=fixture-host").await,
        [CHECKOUT]
    );

    let summary = backend.search("service=shop").await.remove(0);
    assert_eq!(summary["rootService"], "shop", "{summary}");
    assert_eq!(summary["rootName"], "GET /checkout", "{summary}");
    assert_eq!(summary["startTimeUnixNano"], T0, "{summary}");
    assert_eq!(summary["durationNanos"], 250 * MS, "{summary}");
    assert_eq!(summary["spanCount"], 3, "{summary}");
    assert_eq!(summary["errorCount"], 2, "{summary}");
}

/// A new trace in `shop` is stored in the upgraded file and found with the
/// old ones.
async fn takes_new_spans(backend: &Backend) {
    let reply = backend
        .post("/v1/traces", "application/json", None, CART_REQUEST.into())
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let spans = backend.wait_for_trace(CART, 1).await;
    assert_eq!(
        spans
            .iter()
            .map(|s| (s.service_name(), s.name.as_str()))
            .collect::<Vec<_>>(),
        [("shop", "GET /cart")]
    );
    assert_eq!(found(backend, "service=shop").await, [CART, CHECKOUT]);
    assert_eq!(found(backend, "attribute=cart.id=c-42").await, [CART]);
    assert_eq!(sorted(backend.trace(CHECKOUT).await), checkout_spans());
}

const CART_REQUEST: &str = r#"{"resourceSpans":[{
  "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
  "scopeSpans":[{"spans":[{
    "traceId":"7e57ab1e7e57ab1e7e57ab1e7e57ab1e","spanId":"7e57ab1e00000001",
    "name":"GET /cart","kind":2,
    "startTimeUnixNano":"1795255200000000000","endTimeUnixNano":"1795255200040000000",
    "attributes":[{"key":"cart.id","value":{"stringValue":"c-42"}}]}]}]}]}"#;

/// Before the upgrade the reading commands, which open the file read-only
/// and so cannot upgrade it, refuse it by design and name the command that
/// does.
async fn cli_refuses_until_upgraded(db: &Path, version: i64) {
    let path = db.display().to_string();
    let out = cli(&["traces", "--db", &path]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "traces on a v{version} file succeeded"
    );
    let expected = format!(
        "{path} has schema version {version}, older than this otelite's {CURRENT_VERSION}: \
         run `otelite serve --db {path}` once to upgrade it"
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(
        user_version(db),
        version,
        "the reading commands do not upgrade"
    );
}

/// After the upgrade the reading commands see the old traces and the new one.
async fn cli_reads(db: &Path) {
    let path = db.display().to_string();
    let traces = cli_json(&["traces", "--db", &path, "--service", "shop", "--json"]).await;
    let ids: Vec<&str> = traces["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("no traces array in {traces}"))
        .iter()
        .filter_map(|t| t["traceId"].as_str())
        .collect();
    assert_eq!(ids, [CART, CHECKOUT]);
    let trace = cli_json(&["trace", "--db", &path, CHECKOUT, "--json"]).await;
    let spans: Vec<Span> = serde_json::from_value(trace["spans"].clone())
        .unwrap_or_else(|e| panic!("`otelite trace --json` spans are model spans: {e}\n{trace}"));
    assert_eq!(sorted(Some(spans)), checkout_spans());
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/databases")
}

async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    blocking(move || {
        Command::new(otelite_bin())
            .args(&args)
            .env_remove("OTELITE_SERVER")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", otelite_bin().display()))
    })
    .await
}

async fn cli_json(args: &[&str]) -> Value {
    let out = cli(args).await;
    assert!(
        out.status.success(),
        "otelite {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("otelite {args:?} printed JSON: {e}"))
}

fn user_version(db: &Path) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("PRAGMA user_version")
}

async fn found(backend: &Backend, query: &str) -> Vec<String> {
    backend
        .search(query)
        .await
        .iter()
        .map(|t| t["traceId"].as_str().expect("traceId").to_owned())
        .collect()
}

/// A trace's spans in start order, which is the order `spans.json` sends.
fn sorted(spans: Option<Vec<Span>>) -> Vec<Span> {
    let mut spans = spans.expect("the trace is stored");
    spans.sort_by_key(|s| s.start_time_unix_nano);
    spans
}

// What `spans.json` sent, written out.

fn checkout_spans() -> Vec<Span> {
    let trace = CHECKOUT;
    vec![
        Span {
            attributes: vec![
                kv("http.request.method", string("GET")),
                kv("http.response.status_code", AnyValue::Int(502)),
                kv("retry", AnyValue::Bool(true)),
                kv("load", AnyValue::Double(0.75)),
            ],
            events: vec![Event {
                name: "exception".into(),
                time_unix_nano: T0 + 200 * MS,
                attributes: vec![kv("exception.type", string("CardDeclined"))],
                dropped_attributes_count: 0,
            }],
            status: status(StatusCode::Error, "payment failed"),
            ..span(
                trace,
                "00f067aa0ba902b7",
                None,
                shop(),
                "GET /checkout",
                SpanKind::Server,
                (0, 250),
            )
        },
        Span {
            attributes: vec![
                kv("peer.service", string("payments")),
                kv("attempt", AnyValue::Int(1)),
            ],
            links: vec![Link {
                trace_id: trace_id(SETTLE),
                span_id: span_id("b7ad6b7169203331"),
                trace_state: String::new(),
                flags: 0,
                attributes: vec![kv("link.reason", string("settled by"))],
                dropped_attributes_count: 0,
            }],
            ..span(
                trace,
                "53995c3f42cd8ad8",
                Some("00f067aa0ba902b7"),
                shop(),
                "charge card",
                SpanKind::Client,
                (10, 210),
            )
        },
        Span {
            attributes: vec![
                kv("amount", AnyValue::Double(12.5)),
                kv("currency", string("EUR")),
            ],
            status: status(StatusCode::Error, "card declined"),
            ..span(
                trace,
                "9d3e5a2c7f1b4e60",
                Some("53995c3f42cd8ad8"),
                payments(),
                "POST /charge",
                SpanKind::Server,
                (20, 200),
            )
        },
    ]
}

fn settle_spans() -> Vec<Span> {
    let trace = SETTLE;
    vec![
        Span {
            attributes: vec![
                kv("batch.size", AnyValue::Int(12)),
                kv("dry_run", AnyValue::Bool(false)),
            ],
            status: status(StatusCode::Ok, ""),
            ..span(
                trace,
                "b7ad6b7169203331",
                None,
                payments(),
                "settle batch",
                SpanKind::Internal,
                (60_000, 60_500),
            )
        },
        Span {
            attributes: vec![kv("db.system", string("sqlite"))],
            ..span(
                trace,
                "c1a2b3c4d5e6f708",
                Some("b7ad6b7169203331"),
                payments(),
                "UPDATE ledger",
                SpanKind::Client,
                (60_100, 60_400),
            )
        },
    ]
}

/// A span of the fixtures without attributes, events, links or status;
/// its start and end are milliseconds after `T0`.
fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    resource: Resource,
    name: &str,
    kind: SpanKind,
    (start_ms, end_ms): (u64, u64),
) -> Span {
    fixtures::span(trace_id(trace), span_id(id))
        .parent_span_id(parent.map(span_id))
        .resource(&Arc::new(resource))
        .scope(&Arc::new(Scope {
            name: "otelite-fixture".into(),
            version: "1.0".into(),
            ..Scope::default()
        }))
        .name(name)
        .kind(kind)
        .times(T0 + start_ms * MS, T0 + end_ms * MS)
        .build()
}

fn shop() -> Resource {
    resource(
        "shop",
        vec![
            kv("service.name", string("shop")),
            kv("service.version", string("1.4.2")),
            kv("host.name", string("fixture-host")),
        ],
    )
}

fn payments() -> Resource {
    resource(
        "payments",
        vec![
            kv("service.name", string("payments")),
            kv("deployment.environment", string("fixture")),
        ],
    )
}

fn resource(service: &str, attributes: Vec<KeyValue>) -> Resource {
    Resource {
        service_name: service.into(),
        attributes,
        dropped_attributes_count: 0,
        schema_url: String::new(),
    }
}

fn status(code: StatusCode, message: &str) -> Status {
    Status {
        code,
        message: message.into(),
    }
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue::new(key, value)
}

fn string(text: &str) -> AnyValue {
    AnyValue::String(text.into())
}

fn trace_id(hex: &str) -> TraceId {
    TraceId::from_hex(hex).expect("a trace id of 32 hex digits")
}

fn span_id(hex: &str) -> SpanId {
    SpanId::from_hex(hex).expect("a span id of 16 hex digits")
}
