//! The ClickHouse store: the same spans and exporter counters sent through
//! the real OTLP/HTTP path to an `otelite serve --store clickhouse` (the
//! binary, in a database of its own on the shared clickhouse-server) and to
//! an in-process otelite on SQLite; every answer of otelite's API and of
//! Jaeger's v1 and v3 APIs must be the same from both, and correct. Also:
//! two shards, retention, `/readyz` with the server down (a server of its
//! own), and the upgrade of a schema version 1 database.

use crate::support::Backend;
use crate::support::clickhouse::ClickHouseServer;
use crate::support::process::{ServeProcess, blocking};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

const TRACE_A: [u8; 16] = [0xa; 16];
const TRACE_B: [u8; 16] = [0xb; 16];
const TRACE_C: [u8; 16] = [0xc; 16];

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            text("service.name", service),
            text("deployment.environment", "e2e"),
        ],
        ..Default::default()
    }
}

struct SpanSpec {
    trace: [u8; 16],
    id: u8,
    parent: Option<u8>,
    name: &'static str,
    kind: span::SpanKind,
    start_ms: u64,
    duration_ms: u64,
    error: bool,
    attributes: Vec<KeyValue>,
}

fn span(base_ns: u64, s: SpanSpec) -> Span {
    let start = base_ns + s.start_ms * 1_000_000;
    Span {
        trace_id: s.trace.to_vec(),
        span_id: vec![s.id; 8],
        parent_span_id: s.parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: s.name.into(),
        kind: s.kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + s.duration_ms * 1_000_000,
        attributes: s.attributes,
        status: Some(Status {
            code: if s.error { 2 } else { 0 },
            message: if s.error {
                "declined".into()
            } else {
                String::new()
            },
        }),
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Two requests, the callee's first (as it ends first): trace A crosses
/// services (frontend → backend, which fails, → its database client span),
/// B is one frontend span, C a backend span whose parent never comes.
fn bodies(base_ns: u64) -> [Vec<u8>; 2] {
    use span::SpanKind::{Client, Internal, Server};
    let spec = |trace, id, parent, name, kind, start_ms, duration_ms, error| SpanSpec {
        trace,
        id,
        parent,
        name,
        kind,
        start_ms,
        duration_ms,
        error,
        attributes: Vec::new(),
    };
    let backend = vec![
        span(
            base_ns,
            spec(TRACE_A, 2, Some(1), "charge", Server, 10, 50, true),
        ),
        span(
            base_ns,
            SpanSpec {
                attributes: vec![text("db.system", "sqlite"), int("db.rows", 3)],
                ..spec(TRACE_A, 3, Some(2), "db query", Client, 20, 5, false)
            },
        ),
        span(
            base_ns,
            spec(TRACE_C, 7, Some(6), "charge", Server, 3000, 2, true),
        ),
    ];
    let frontend = vec![
        span(
            base_ns,
            SpanSpec {
                attributes: vec![
                    text("http.request.method", "POST"),
                    int("http.response.status_code", 500),
                ],
                ..spec(TRACE_A, 1, None, "POST /checkout", Server, 0, 100, false)
            },
        ),
        span(
            base_ns,
            spec(TRACE_B, 4, None, "GET /home", Server, 2000, 1, false),
        ),
        span(
            base_ns,
            spec(TRACE_B, 5, Some(4), "render", Internal, 2000, 1, false),
        ),
    ];
    [request("backend", backend), request("frontend", frontend)]
}

/// The frontend exporter's own counters: 4 spans ended, 4 queued, 3 sent.
fn counters(now_ns: u64) -> Vec<u8> {
    let sum = |name: &str, value: i64| {
        crate::support::fixtures::cumulative_sum(
            name,
            value,
            Vec::new(),
            now_ns - 60_000_000_000,
            now_ns,
        )
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource("frontend")),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    sum("otel.sdk.span.ended", 4),
                    sum("otel.sdk.processor.span.processed", 4),
                    sum("otel.sdk.exporter.span.exported", 3),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// `otelite serve --store clickhouse --clickhouse-url URL`, with `db` as
/// its (unused) SQLite path.
fn serve(db: std::path::PathBuf, url: &str) -> impl Future<Output = ServeProcess> + use<> {
    let url = url.to_owned();
    blocking(move || ServeProcess::start(&db, &["--store", "clickhouse", "--clickhouse-url", &url]))
}

async fn post(otlp: &str, path: &str, body: Vec<u8>) {
    let reply = reqwest::Client::new()
        .post(format!("{otlp}{path}"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("POST reaches otelite");
    let status = reply.status();
    assert_eq!(status, 200, "{path}: {:?}", reply.text().await);
}

async fn get(url: String) -> (u16, Value) {
    let reply = reqwest::get(&url).await.expect("GET reaches otelite");
    let status = reply.status().as_u16();
    let text = reply.text().await.expect("reply body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {text:?}: {e}"));
    (status, json)
}

/// Sends the same data to both and returns the ClickHouse-backed otelite
/// with the window the data lies in.
async fn send_to_both(sqlite: &Backend, clickhouse: &ServeProcess) -> (u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let base = now - 120_000_000_000;
    for otlp in [sqlite.otlp_url(), clickhouse.otlp_url()] {
        for body in bodies(base) {
            post(&otlp, "/v1/traces", body).await;
        }
        post(&otlp, "/v1/metrics", counters(now)).await;
    }
    (base, now)
}

/// Query paths whose answers must be equal on both stores.
fn paths(base: u64, now: u64) -> Vec<String> {
    let [a, b, c] = [TRACE_A, TRACE_B, TRACE_C].map(hex::encode);
    let (end_ms, lookback_ms) = (now / 1_000_000 + 60_000, 3_600_000);
    let window = format!("start={}&end={}", base - 1, base + 10_000_000_000);
    let mut paths: Vec<String> = [
        "/api/otelite/services",
        "/api/otelite/search",
        "/api/otelite/search?service=frontend",
        "/api/otelite/search?service=backend&error=true",
        "/api/otelite/search?error=true",
        "/api/otelite/search?operation=charge",
        "/api/otelite/search?kind=client",
        "/api/otelite/search?attribute=http.request.method=POST",
        "/api/otelite/search?attribute=db.rows=3&attribute=db.system=sqlite",
        "/api/otelite/search?attribute=deployment.environment=e2e&service=backend",
        "/api/otelite/search?attribute=http.request.method=GET",
        "/api/otelite/search?attributePrefix=http.request.method=PO",
        "/api/otelite/search?attributePrefix=deployment.environment=e&service=backend",
        "/api/otelite/search?attributePrefix=http.request.method=X",
        // Numbers are not text to search in: no match on either store.
        "/api/otelite/search?attributePrefix=db.rows=3",
        "/api/otelite/search?attributePrefix=http.response.status_code=5",
        "/api/otelite/search?minDurationNanos=40000000",
        "/api/otelite/search?maxDurationNanos=1000000&service=frontend",
        "/api/otelite/dependencies",
        "/api/rates?service=frontend",
        "/api/rates?service=backend",
        "/api/rates",
        "/api/services",
        "/api/services/backend/operations",
        "/api/operations?service=frontend",
        "/api/operations?service=backend&spanKind=client",
        "/api/traces?service=frontend",
        "/api/traces?service=backend&tags=%7B%22error%22%3A%22true%22%7D",
        "/api/traces?tag=otel.status_code:UNSET&service=frontend",
        "/api/traces?tag=otel.status_code:OK",
        "/api/v3/services",
        "/api/v3/operations?service=backend",
        "/api/v3/trace-summaries?query.service_name=backend",
    ]
    .map(String::from)
    .to_vec();
    paths.push(format!("/api/otelite/search?{window}"));
    paths.push(format!("/api/otelite/search?service=backend&{window}"));
    paths.push(format!(
        "/api/dependencies?endTs={end_ms}&lookback={lookback_ms}"
    ));
    for id in [&a, &b, &c] {
        paths.push(format!("/api/otelite/traces/{id}"));
        paths.push(format!("/api/traces/{id}"));
        paths.push(format!("/api/v3/traces/{id}"));
    }
    paths.push(format!("/api/traces?traceID={a}&traceID={c}"));
    paths.push(format!("/api/otelite/traces/{}", hex::encode([0xd; 16])));
    paths
}

/// Search answers differ only in `nextCursor`, whose key is the store's own.
fn comparable(path: &str, mut body: Value) -> Value {
    if path.starts_with("/api/otelite/search") {
        body["nextCursor"] = Value::Null;
    }
    body
}

/// Follows `nextCursor` one trace at a time; the trace ids in order.
async fn pages(query_url: impl Fn(&str) -> String, filter: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (status, body) = get(query_url(&format!(
            "/api/otelite/search?limit=1{filter}{cursor}"
        )))
        .await;
        assert_eq!(status, 200, "{body}");
        for trace in body["traces"].as_array().into_iter().flatten() {
            ids.push(trace["traceId"].as_str().unwrap_or_default().to_owned());
        }
        match body["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return ids,
        }
    }
    panic!("paging did not end: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_answers_every_query_as_sqlite_does() {
    let server = crate::support::clickhouse::shared().await;
    let database = crate::support::clickhouse::database("compare");
    let url = server.otelite_url(&database);
    let dir = tempfile::tempdir().expect("temp dir");
    let clickhouse = serve(dir.path().join("unused.db"), &url).await;
    let sqlite = Backend::start().await;
    let (base, now) = send_to_both(&sqlite, &clickhouse).await;

    for path in paths(base, now) {
        let (want_status, want) = get(sqlite.query_url(&path)).await;
        let (status, got) = get(clickhouse.query_url(&path)).await;
        assert_eq!(
            (status, comparable(&path, got)),
            (want_status, comparable(&path, want)),
            "{path}: ClickHouse (left) and SQLite (right) differ"
        );
    }
    // Span filters without a service page in SQLite's arrival order and in
    // ClickHouse's start order (both newest first): not compared.
    for filter in ["", "&service=backend", "&service=frontend", "&error=true"] {
        let want = pages(|p| sqlite.query_url(p), filter).await;
        let got = pages(|p| clickhouse.query_url(p), filter).await;
        assert_eq!(got, want, "pages of {filter:?}");
    }

    // Equal is not enough: the answers are also right.
    let (_, found) = get(clickhouse.query_url("/api/otelite/search")).await;
    let ids: Vec<&str> = found["traces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["traceId"].as_str())
        .collect();
    let [a, b, c] = [TRACE_A, TRACE_B, TRACE_C].map(hex::encode);
    assert_eq!(ids, [&c, &b, &a], "newest first: {found}");
    let checkout = &found["traces"][2];
    assert_eq!(
        (
            &checkout["spanCount"],
            &checkout["errorCount"],
            &checkout["rootName"]
        ),
        (
            &Value::from(3),
            &Value::from(1),
            &Value::from("POST /checkout")
        ),
        "{checkout}"
    );
    assert_eq!(found["traces"][0]["orphanSpanCount"], 1, "{found}");
    let (_, by_prefix) =
        get(clickhouse.query_url("/api/otelite/search?attributePrefix=http.request.method=PO"))
            .await;
    assert_eq!(by_prefix["traces"][0]["traceId"], a.as_str(), "{by_prefix}");
    assert_eq!(by_prefix["traces"].as_array().map(Vec::len), Some(1));
    let (_, numeric) =
        get(clickhouse.query_url("/api/otelite/search?attributePrefix=db.rows=3")).await;
    assert_eq!(numeric["traces"], serde_json::json!([]), "{numeric}");
    let (_, exact) = get(clickhouse.query_url("/api/otelite/search?attribute=db.rows=3")).await;
    assert_eq!(exact["traces"][0]["traceId"], a.as_str(), "{exact}");
    let (_, deps) = get(clickhouse.query_url("/api/otelite/dependencies")).await;
    assert_eq!(
        deps["dependencies"],
        serde_json::json!([{"parent": "frontend", "child": "backend", "callCount": 1, "errorCount": 1}])
    );
    let (_, rates) = get(clickhouse.query_url("/api/rates?service=frontend")).await;
    let n = |stage: &str| {
        rates["services"][0]["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["stage"] == stage))
            .map(|x| x["n"].clone())
    };
    assert_eq!(
        [
            "total", "collect", "transmit", "process", "analyze", "store"
        ]
        .map(n),
        [4, 4, 3, 3, 3, 3].map(|v| Some(Value::from(v))),
        "{rates}"
    );

    // A retried batch is stored and counted once, also when the copies
    // arrive at the same moment.
    let otlp = clickhouse.otlp_url();
    let [callee, caller] = bodies(base);
    tokio::join!(
        post(&otlp, "/v1/traces", callee.clone()),
        post(&otlp, "/v1/traces", callee),
        post(&otlp, "/v1/traces", caller.clone()),
        post(&otlp, "/v1/traces", caller),
    );
    let (_, again) = get(clickhouse.query_url("/api/rates?service=frontend")).await;
    assert_eq!(again["services"], rates["services"], "after a retry");
    let (_, trace) = get(clickhouse.query_url(&format!("/api/otelite/traces/{a}"))).await;
    assert_eq!(trace["spans"].as_array().map(Vec::len), Some(3), "{trace}");
    let spans = server
        .sql(&format!("SELECT count() FROM {database}.spans_by_trace"))
        .await;
    assert_eq!(spans.trim(), "6");
    drop(clickhouse);
}

/// `count` traces of two spans ("GET /item" → "load") of service `shop`,
/// trace ids `first..first+count`, one second apart.
fn shop_traces(base_ns: u64, first: u8, count: u8) -> Vec<u8> {
    use span::SpanKind::{Internal, Server};
    let spans = (first..first + count)
        .flat_map(|n| {
            let at = u64::from(n) * 1000;
            let spec = |id, parent, name, kind| SpanSpec {
                trace: [n; 16],
                id,
                parent,
                name,
                kind,
                start_ms: at,
                duration_ms: 3,
                error: false,
                attributes: vec![int("item", i64::from(n))],
            };
            [
                span(base_ns, spec(1, None, "GET /item", Server)),
                span(base_ns, spec(2, Some(1), "load", Internal)),
            ]
        })
        .collect();
    request("shop", spans)
}

/// Trace ids (hex) stored on one shard.
async fn shard_traces(server: &ClickHouseServer) -> Vec<String> {
    let ids = server
        .sql("SELECT lower(hex(trace_id)) FROM e2e_shard.spans_by_trace GROUP BY trace_id ORDER BY trace_id")
        .await;
    ids.lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_in_front_of_two_shards_store_and_answer_alike() {
    let (one, two) = ClickHouseServer::start_two_shards().await;
    // Shard one was set up by an older otelite (schema version 1, and its
    // Distributed tables of then): its receiver upgrades both.
    schema_v1(&one, "e2e_shard").await;
    one.sql("CREATE DATABASE e2e").await;
    for (table, key) in [
        ("spans_in", "cityHash64(trace_id)"),
        ("spans", "cityHash64(trace_id)"),
        ("spans_by_trace", "cityHash64(trace_id)"),
        ("operations", "rand()"),
        ("stage_counts", "rand()"),
        ("service_edges", "rand()"),
        ("exporter_series", "cityHash64(service, stage, series)"),
    ] {
        one.sql_in(
            "e2e",
            &format!(
                "CREATE TABLE {table} AS e2e_shard.{table} \
                 ENGINE = Distributed(otelite, e2e_shard, {table}, {key})"
            ),
        )
        .await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let start = |server: &ClickHouseServer| {
        let url = format!("{}?cluster=otelite", server.otelite_url("e2e"));
        serve(dir.path().join("unused.db"), &url)
    };
    let receivers = [start(&one).await, start(&two).await];
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        - 600_000_000_000;
    for (i, first) in [1u8, 11, 21, 31].into_iter().enumerate() {
        let receiver = &receivers[i % 2];
        post(
            &receiver.otlp_url(),
            "/v1/traces",
            shop_traces(base, first, 10),
        )
        .await;
    }

    // Acknowledged means on its shard already (insert_distributed_sync),
    // every trace whole on one shard (sharded by trace id), both shards used.
    let (on_one, on_two) = (shard_traces(&one).await, shard_traces(&two).await);
    assert!(
        !on_one.is_empty() && !on_two.is_empty(),
        "{on_one:?} {on_two:?}"
    );
    assert!(
        on_one.iter().all(|id| !on_two.contains(id)),
        "a trace on both shards"
    );
    assert_eq!(on_one.len() + on_two.len(), 40);

    let mut answers = Vec::new();
    for receiver in &receivers {
        let (_, search) = get(receiver.query_url("/api/otelite/search?limit=100")).await;
        let (_, services) = get(receiver.query_url("/api/services")).await;
        let (_, trace) =
            get(receiver.query_url(&format!("/api/otelite/traces/{}", hex::encode([33u8; 16]))))
                .await;
        let (_, rates) = get(receiver.query_url("/api/rates?service=shop")).await;
        // The graph's join runs over the Distributed tables (GLOBAL): one
        // service, so no edge, but the statement must run there.
        let (status, graph) = get(receiver.query_url("/api/otelite/dependencies")).await;
        assert_eq!(
            (status, &graph["dependencies"]),
            (200, &serde_json::json!([])),
            "{graph}"
        );
        answers.push((search, services, trace, rates));
    }
    assert_eq!(answers[0], answers[1], "both receivers answer alike");
    let (search, services, trace, rates) = &answers[0];
    let traces = search["traces"].as_array().cloned().unwrap_or_default();
    assert_eq!(traces.len(), 40, "{search}");
    assert_eq!(
        traces[0]["traceId"],
        hex::encode([40u8; 16]),
        "newest first"
    );
    assert!(traces.iter().all(|t| t["spanCount"] == 2), "{search}");
    assert_eq!(services["data"], serde_json::json!(["shop"]));
    assert_eq!(trace["spans"].as_array().map(Vec::len), Some(2), "{trace}");
    let stages = &rates["services"][0]["stages"];
    for stage in ["process", "analyze", "store"] {
        let n = stages
            .as_array()
            .and_then(|s| s.iter().find(|x| x["stage"] == stage))
            .map(|x| x["n"].clone());
        assert_eq!(n, Some(Value::from(80)), "N_{stage}: {rates}");
    }
}

/// Trace ids found by a search through `receiver`.
async fn found(receiver: &ServeProcess) -> Vec<String> {
    let (_, body) = get(receiver.query_url("/api/otelite/search?limit=100")).await;
    body["traces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["traceId"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_drops_the_days_past_the_age_and_keeps_the_rates() {
    let server = crate::support::clickhouse::shared().await;
    let url = server.otelite_url(&crate::support::clickhouse::database("retention"));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("unused.db");
    let start = |extra: &'static [&'static str]| {
        let (db, url) = (db.clone(), url.clone());
        blocking(move || {
            let mut args = vec!["--store", "clickhouse", "--clickhouse-url", &url];
            args.extend(extra);
            ServeProcess::start(&db, &args)
        })
    };
    let receiver = start(&[]).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let days_ago = |days: u64| now - days * 86_400_000_000_000;
    post(
        &receiver.otlp_url(),
        "/v1/traces",
        shop_traces(days_ago(3), 1, 2),
    )
    .await;
    post(
        &receiver.otlp_url(),
        "/v1/traces",
        shop_traces(now - 60_000_000_000, 3, 2),
    )
    .await;
    assert_eq!(found(&receiver).await.len(), 4);
    drop(receiver);

    let receiver = start(&["--retention", "2d"]).await;
    let kept = crate::support::eventually(|| found(&receiver), |ids| ids.len() == 2).await;
    assert_eq!(kept, [hex::encode([4u8; 16]), hex::encode([3u8; 16])]);
    let (_, trace) =
        get(receiver.query_url(&format!("/api/otelite/traces/{}", hex::encode([1u8; 16])))).await;
    assert_eq!(
        trace["error"],
        "trace 01010101010101010101010101010101 not found"
    );
    let (_, rates) = get(receiver.query_url("/api/rates?service=shop")).await;
    let store = rates["services"][0]["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["stage"] == "store"))
        .map(|x| x["n"].clone());
    assert_eq!(
        store,
        Some(Value::from(8)),
        "stage counts are kept: {rates}"
    );
}

/// `/readyz` asks ClickHouse too: 503 while the server is down, with the
/// process still up and answering; ready again once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_clickhouse_is_down() {
    let mut server = ClickHouseServer::start().await;
    let url = server.otelite_url("ready");
    let backend = Backend::start_with(|config| {
        config.store = otelite_backend::StoreKind::Clickhouse;
        config.clickhouse_url = url;
    })
    .await;
    let readyz = || get(backend.query_url("/readyz"));
    assert_eq!(
        readyz().await,
        (200, serde_json::json!({"status": "ready"}))
    );

    server.stop();
    let (status, body) = readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["reason"], "the store does not answer", "{body}");
    let healthz = reqwest::get(backend.query_url("/healthz"))
        .await
        .expect("GET /healthz");
    assert_eq!(healthz.status(), 200, "the process stays up");

    server.start_again().await;
    let (status, body) = crate::support::eventually(readyz, |(status, _)| *status == 200).await;
    assert_eq!(status, 200, "ready again: {body}");
    let [callee, _] = bodies(1_700_000_000_000_000_000);
    post(&backend.otlp_url(), "/v1/traces", callee).await;
    let (_, trace) =
        get(backend.query_url(&format!("/api/otelite/traces/{}", hex::encode(TRACE_A)))).await;
    assert_eq!(trace["spans"].as_array().map(Vec::len), Some(2), "{trace}");
}

/// Version 1 of the schema, as otelite created it before version 2.
const SCHEMA_V1: &str = include_str!("../backend/src/storage/clickhouse/schema-18.16.sql");

/// Creates `database` with schema version 1, as otelite did before 2.
async fn schema_v1(server: &ClickHouseServer, database: &str) {
    server.sql(&format!("CREATE DATABASE {database}")).await;
    for statement in SCHEMA_V1.split("\n;\n") {
        server.sql_in(database, statement).await;
    }
    server
        .sql_in(
            database,
            "CREATE TABLE schema_versions (version UInt32, applied_at DateTime) ENGINE = TinyLog",
        )
        .await;
    server
        .sql_in(database, "INSERT INTO schema_versions VALUES (1, now())")
        .await;
}

/// A database made by schema version 1, holding a span written as version
/// 1 wrote it, and with the first statement of version 2 already applied
/// (an upgrade cut short): otelite upgrades it in place on start. The old
/// span is still found (its attribute values read as strings, which is
/// what version 1 matched), and new spans are stored once and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_upgraded_in_place() {
    let server = crate::support::clickhouse::shared().await;
    let database = crate::support::clickhouse::database("upgrade");
    schema_v1(&server, &database).await;
    let old = hex::encode([0x01; 16]);
    server
        .sql_in(
            &database,
            &format!(
                "INSERT INTO spans_in (day, trace_id, span_id, service, name, start_ns, end_ns, \
                 is_root, attr_keys, attr_values) VALUES (toDate(now()), unhex('{old}'), \
                 unhex('0101010101010101'), 'legacy', 'old op', {now}, {now}, 1, ['k'], ['old'])",
                now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    - 1_000_000_000
            ),
        )
        .await;
    server
        .sql_in(
            &database,
            "ALTER TABLE spans_in ADD COLUMN received_day Date",
        )
        .await;

    let url = server.otelite_url(&database);
    let backend = Backend::start_with(|config| {
        config.store = otelite_backend::StoreKind::Clickhouse;
        config.clickhouse_url = url;
    })
    .await;
    let version = server
        .sql_in(&database, "SELECT max(version) FROM schema_versions")
        .await;
    assert_eq!(version.trim(), "9");
    let engine = server
        .sql_in(
            &database,
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() \
             AND name LIKE 'spans_by_trace%'",
        )
        .await;
    assert_eq!(
        engine.trim(),
        "MergeTree PARTITION BY day ORDER BY (trace_id, start_ns) SETTINGS index_granularity = 256",
        "one trace table, rebuilt with small granules"
    );
    for query in ["attribute=k=old", "attributePrefix=k=ol", "service=legacy"] {
        let found = backend.search(query).await;
        assert_eq!(found.len(), 1, "{query}: {found:?}");
        assert_eq!(found[0]["traceId"], old.as_str(), "{query}: {found:?}");
    }

    let [callee, caller] = bodies(1_700_000_000_000_000_000);
    post(&backend.otlp_url(), "/v1/traces", callee).await;
    post(&backend.otlp_url(), "/v1/traces", caller).await;
    let a = hex::encode(TRACE_A);
    let in_search = server
        .sql_in(
            &database,
            &format!("SELECT count() FROM spans WHERE trace_id = unhex('{a}')"),
        )
        .await;
    assert_eq!(in_search.trim(), "3", "trace A in the search table once");
    let spans = backend.trace(&a).await.map(|spans| spans.len());
    assert_eq!(spans, Some(3), "trace A through the rebuilt trace table");
    let rates = backend
        .wait_for_rates("frontend", |r| r.n("store") == Some(3))
        .await;
    assert_eq!(rates.n("process"), Some(3), "{rates:?}");
    assert_eq!(rates.n("analyze"), Some(3), "{rates:?}");
}

/// Two `otelite serve --store clickhouse` on one database of the shared
/// server, as two receivers behind a load balancer.
async fn two_receivers(tag: &str) -> ([ServeProcess; 2], tempfile::TempDir, String) {
    let server = crate::support::clickhouse::shared().await;
    let database = crate::support::clickhouse::database(tag);
    let url = server.otelite_url(&database);
    let dir = tempfile::tempdir().expect("temp dir");
    // One after the other: the first creates the schema.
    let first = serve(dir.path().join("one.db"), &url).await;
    let second = serve(dir.path().join("two.db"), &url).await;
    ([first, second], dir, database)
}

/// Trace `[n; 16]`'s call: `frontend` span 1 (the root) → `backend` span 2,
/// failed when `error`.
fn call_half(base_ns: u64, n: u8, parent_side: bool, error: bool) -> Vec<u8> {
    use span::SpanKind::{Client, Server};
    let (service, id, parent, kind) = if parent_side {
        ("frontend", 1, None, Client)
    } else {
        ("backend", 2, Some(1), Server)
    };
    let spec = SpanSpec {
        trace: [n; 16],
        id,
        parent,
        name: if parent_side { "GET /cart" } else { "cart" },
        kind,
        start_ms: u64::from(n) * 100 + u64::from(id),
        duration_ms: 5,
        error: error && !parent_side,
        attributes: vec![],
    };
    request(service, vec![span(base_ns, spec)])
}

fn recent_base() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        - 300_000_000_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_whose_halves_reach_different_receivers_make_their_edges() {
    let (receivers, _dir, _) = two_receivers("halves").await;
    let base = recent_base();
    // Six calls; the parent goes to one receiver and the child to the other,
    // the child first for odd traces (as a callee ends first), last for even
    // ones. Trace 3's call failed.
    for n in 1..=6u8 {
        let parent = call_half(base, n, true, false);
        let child = call_half(base, n, false, n == 3);
        let (to_parent, to_child) = if n % 2 == 1 {
            (&receivers[0], &receivers[1])
        } else {
            (&receivers[1], &receivers[0])
        };
        if n % 2 == 1 {
            post(&to_child.otlp_url(), "/v1/traces", child).await;
            post(&to_parent.otlp_url(), "/v1/traces", parent).await;
        } else {
            post(&to_parent.otlp_url(), "/v1/traces", parent).await;
            post(&to_child.otlp_url(), "/v1/traces", child).await;
        }
    }
    // A child whose parent never comes makes no edge.
    post(
        &receivers[0].otlp_url(),
        "/v1/traces",
        call_half(base, 7, false, false),
    )
    .await;
    let expected = serde_json::json!([
        {"parent": "frontend", "child": "backend", "callCount": 6, "errorCount": 1}
    ]);
    for receiver in &receivers {
        let (status, graph) = get(receiver.query_url("/api/otelite/dependencies")).await;
        assert_eq!(status, 200, "{graph}");
        assert_eq!(graph["dependencies"], expected, "{graph}");
    }
}

/// Traces `[n; 16]` for n in `traces`, as one request of two services:
/// `frontend` span 1 (root) → `backend` span 2, and, in the second request
/// (`later`), `frontend` span 9 (child of 1) → `backend` span 3, whose
/// parent is in the other request.
fn two_service_request(base_ns: u64, traces: std::ops::RangeInclusive<u8>, later: bool) -> Vec<u8> {
    use span::SpanKind::{Client, Internal, Server};
    let side = |service: &str, specs: Vec<(u8, Option<u8>, span::SpanKind)>| {
        let spans = traces
            .clone()
            .flat_map(|n| {
                specs.iter().map(move |&(id, parent, kind)| {
                    span(
                        base_ns,
                        SpanSpec {
                            trace: [n; 16],
                            id,
                            parent,
                            name: "step",
                            kind,
                            start_ms: u64::from(n) * 100 + u64::from(id),
                            duration_ms: 2,
                            error: false,
                            attributes: vec![text("step.id", &id.to_string())],
                        },
                    )
                })
            })
            .collect();
        ResourceSpans {
            resource: Some(resource(service)),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    };
    let resource_spans = if later {
        vec![
            side("frontend", vec![(9, Some(1), Internal)]),
            side("backend", vec![(3, Some(9), Server)]),
        ]
    } else {
        vec![
            side("frontend", vec![(1, None, Client)]),
            side("backend", vec![(2, Some(1), Server)]),
        ]
    };
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

/// What both receivers answer about traces 1..=5 of `two_service_request`.
async fn answers_about_five_traces(receivers: &[ServeProcess; 2]) {
    for receiver in receivers {
        for n in 1..=5u8 {
            let url = receiver.query_url(&format!("/api/otelite/traces/{}", hex::encode([n; 16])));
            let (_, trace) = get(url).await;
            let mut ids: Vec<&str> = trace["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["spanId"].as_str())
                .collect();
            ids.sort();
            assert_eq!(
                ids,
                [
                    "0101010101010101",
                    "0202020202020202",
                    "0303030303030303",
                    "0909090909090909"
                ],
                "{trace}"
            );
            assert_eq!(trace["spanCount"], 4, "{trace}");
        }
        // One span per trace has the attribute: each trace found once.
        let (_, found) = get(receiver.query_url("/api/otelite/search?attribute=step.id=3")).await;
        let traces = found["traces"].as_array().cloned().unwrap_or_default();
        assert_eq!(traces.len(), 5, "{found}");
        assert!(
            traces
                .iter()
                .all(|t| t["spanCount"] == 4 && t["services"][0]["spanCount"] == 2),
            "{found}"
        );
        let (_, graph) = get(receiver.query_url("/api/otelite/dependencies")).await;
        assert_eq!(
            graph["dependencies"],
            serde_json::json!([
                {"parent": "frontend", "child": "backend", "callCount": 10, "errorCount": 0}
            ])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_sent_to_both_receivers_at_once_is_read_once() {
    let (receivers, _dir, database) = two_receivers("twice").await;
    let base = recent_base();
    for later in [false, true] {
        let body = two_service_request(base, 1..=5, later);
        let (one, two) = (receivers[0].otlp_url(), receivers[1].otlp_url());
        tokio::join!(
            post(&one, "/v1/traces", body.clone()),
            post(&two, "/v1/traces", body)
        );
    }
    answers_about_five_traces(&receivers).await;

    // The worst the race can do: both receivers stored every row (the
    // "already stored?" check of each ran before the other's insert).
    let server = crate::support::clickhouse::shared().await;
    for table in [
        "spans",
        "spans_by_trace",
        "span_attributes",
        "request_edges",
        "edge_children",
    ] {
        server
            .sql_in(
                &database,
                &format!("INSERT INTO {table} SELECT * FROM {table}"),
            )
            .await;
    }
    let stored = server
        .sql_in(
            &database,
            "SELECT count(), uniqExact(trace_id, span_id) FROM spans_by_trace",
        )
        .await;
    let counts: Vec<u64> = stored
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(counts.get(1), Some(&20), "{stored}");
    assert!(
        counts[0] >= 40,
        "every span stored at least twice: {stored}"
    );
    answers_about_five_traces(&receivers).await;
}

/// Trace `n` of the windows test: its spans, each with its start (ms after
/// the base) for the test's own ordering.
fn window_trace(n: u8) -> Vec<SpanSpec> {
    use span::SpanKind::{Internal, Server};
    let start_ms = u64::from(n) * 20_000;
    let spec = |id, parent, start_ms, attributes| SpanSpec {
        trace: [n; 16],
        id,
        parent,
        name: "step",
        kind: if parent.is_none() { Server } else { Internal },
        start_ms,
        duration_ms: 2,
        error: id == 2 && n.is_multiple_of(4),
        attributes,
    };
    let tier = if n.is_multiple_of(3) {
        "gold"
    } else {
        "silver"
    };
    let mut spans = vec![
        spec(1, None, start_ms, vec![text("user", &format!("u-{n}"))]),
        spec(2, Some(1), start_ms + 5, vec![text("tier", tier)]),
    ];
    // Every fifth trace has a span in the last minute: it is in the newest
    // windows without starting there, and newer there than the traces that
    // do start there.
    if n.is_multiple_of(5) {
        spans.push(spec(3, Some(1), 1_250_000, Vec::new()));
    }
    spans
}

/// The trace ids (hex) of traces `1..=60` that have a span meeting `matches`,
/// ordered as a search answers: by `key` (ms), newest first.
fn expected_order(matches: impl Fn(u8, &SpanSpec) -> bool, by_start: bool) -> Vec<String> {
    let mut keyed: Vec<(u64, u8)> = (1..=60u8)
        .filter_map(|n| {
            let spans = window_trace(n);
            let matching = spans.iter().filter(|s| matches(n, s)).map(|s| s.start_ms);
            let newest = matching.max()?;
            let start = spans.iter().map(|s| s.start_ms).min()?;
            Some((if by_start { start } else { newest }, n))
        })
        .collect();
    keyed.sort_unstable_by(|a, b| b.cmp(a));
    keyed
        .into_iter()
        .map(|(_, n)| hex::encode([n; 16]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_search_tried_on_the_newest_minutes_pages_as_the_whole_window() {
    let server = crate::support::clickhouse::shared().await;
    let url = server.otelite_url(&crate::support::clickhouse::database("windows"));
    let dir = tempfile::tempdir().expect("temp dir");
    let clickhouse = serve(dir.path().join("unused.db"), &url).await;
    // 60 traces, one every 20 s over 20 minutes, sent a minute's worth at a time.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let base = (now - 30 * 60_000_000_000) / 60_000_000_000 * 60_000_000_000;
    for first in (1..=60u8).step_by(3) {
        let spans = (first..first + 3)
            .flat_map(window_trace)
            .map(|spec| span(base, spec))
            .collect();
        post(&clickhouse.otlp_url(), "/v1/traces", request("shop", spans)).await;
    }

    // Two traces a page: each try reads the newest minutes holding 20
    // spans, then 160; the last pages need the whole window.
    let any = |_: u8, _: &SpanSpec| true;
    let cases: [(&str, Vec<String>); 4] = [
        ("", expected_order(any, true)),
        (
            "&error=true",
            expected_order(|n, s| n % 4 == 0 && s.id == 2, true),
        ),
        (
            "&attribute=tier=gold",
            expected_order(|n, s| n % 3 == 0 && s.id == 2, false),
        ),
        (
            "&attributePrefix=user=u-1",
            expected_order(
                |n, s| s.id == 1 && format!("u-{n}").starts_with("u-1"),
                false,
            ),
        ),
    ];
    for (filter, want) in cases {
        let mut got = Vec::new();
        let mut cursor = String::new();
        for _ in 0..40 {
            let (status, body) =
                get(clickhouse.query_url(&format!("/api/otelite/search?limit=2{filter}{cursor}")))
                    .await;
            assert_eq!(status, 200, "{body}");
            for trace in body["traces"].as_array().into_iter().flatten() {
                got.push(trace["traceId"].as_str().unwrap_or_default().to_owned());
            }
            match body["nextCursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(got, want, "pages of {filter:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_9_keeps_only_spans_whose_parent_is_missing_as_orphan_candidates() {
    use span::SpanKind::{Internal, Server};
    let server = crate::support::clickhouse::shared().await;
    let database = crate::support::clickhouse::database("waiting");
    let url = server.otelite_url(&database);
    let dir = tempfile::tempdir().expect("temp dir");
    let start = || serve(dir.path().join("unused.db"), &url);
    let receiver = start().await;
    // One request: a root, its child, and a child whose parent never comes.
    let spec = |id, parent, kind| SpanSpec {
        trace: [0x77; 16],
        id,
        parent,
        name: "step",
        kind,
        start_ms: u64::from(id),
        duration_ms: 1,
        error: false,
        attributes: vec![],
    };
    let spans = [
        spec(1, None, Server),
        spec(2, Some(1), Internal),
        spec(3, Some(9), Internal),
    ];
    let base = recent_base();
    let body = request("shop", spans.into_iter().map(|s| span(base, s)).collect());
    post(&receiver.otlp_url(), "/v1/traces", body).await;
    let candidates = || async {
        server
            .sql_in(
                &database,
                "SELECT groupUniqArray(lower(hex(span_id))) FROM span_parents",
            )
            .await
            .trim()
            .to_owned()
    };
    let three = hex::encode([3u8; 8]);
    assert_eq!(
        candidates().await,
        format!("['{three}']"),
        "a child of its request's root is no candidate"
    );

    // Before version 9 every span with a parent was a row: the child of the
    // root is put back as the old view wrote it, and the database is
    // marked version 8, so the next start runs version 9 again.
    drop(receiver);
    let two = hex::encode([2u8; 8]);
    server
        .sql_in(
            &database,
            &format!(
                "INSERT INTO span_parents VALUES (toDate(now()), unhex('{}'), unhex('{two}'), \
                 unhex('{}'), 'shop', 0, toUInt32(now()) - 600)",
                hex::encode([0x77u8; 16]),
                hex::encode([1u8; 8])
            ),
        )
        .await;
    server.sql_in(&database, "DROP TABLE schema_versions").await;
    server
        .sql_in(
            &database,
            "CREATE TABLE schema_versions (version UInt32, applied_at DateTime) ENGINE = TinyLog",
        )
        .await;
    server
        .sql_in(
            &database,
            "INSERT INTO schema_versions SELECT toUInt32(number + 1), now() FROM system.numbers LIMIT 8",
        )
        .await;
    assert_eq!(
        candidates().await.len(),
        format!("['{three}','{two}']").len()
    );

    let receiver = start().await;
    assert_eq!(
        candidates().await,
        format!("['{three}']"),
        "a stored parent's child dropped"
    );
    let version = server
        .sql_in(&database, "SELECT max(version) FROM schema_versions")
        .await;
    assert_eq!(version.trim(), "9");
    let left = server
        .sql_in(
            &database,
            "SELECT count() FROM system.tables WHERE database = currentDatabase() \
             AND name LIKE 'span_parents_%' AND engine != 'MaterializedView'",
        )
        .await;
    assert_eq!(left.trim(), "0", "the tables of the move are gone");
    drop(receiver);
}
