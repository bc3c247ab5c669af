use crate::query;
use crate::storage::QueueLimits;
use crate::storage::sqlite::{SqliteStore, WriterThread};
use crate::test_fixtures::{self as fixtures, SpanBuilder};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use otelite_model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind,
    StatusCode as SpanStatus, TraceId,
};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// 1000 s after the epoch, in nanoseconds: trace A starts here, B at 2000 s,
/// C at 3000 s.
const T0: u64 = 1_000_000_000_000;
const A: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
const B: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
const C: &str = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c";

fn resource(service: &str, host: &str) -> Arc<Resource> {
    Arc::new(Resource::new(
        vec![
            KeyValue::new("service.name", AnyValue::String(service.into())),
            KeyValue::new("host.name", AnyValue::String(host.into())),
        ],
        0,
        String::new(),
    ))
}

fn span(
    trace: u8,
    id: u8,
    resource: &Arc<Resource>,
    name: &str,
    start: u64,
    nanos: u64,
) -> SpanBuilder {
    let scope = Arc::new(Scope {
        name: "http-lib".into(),
        version: "1.2".into(),
        ..Scope::default()
    });
    fixtures::span(trace, id)
        .resource(resource)
        .scope(&scope)
        .name(name)
        .kind(SpanKind::Server)
        .times(start, start + nanos)
}

/// Trace A: frontend `GET /checkout` (2 ms, OK) calls payments `charge`
/// (1 ms, error, an event, a link to B). Trace B: payments `refund`, 10 ms,
/// internal. Trace C: frontend `GET /health`, 50 µs, kind unspecified.
fn fixture() -> Vec<Span> {
    let frontend = resource("frontend", "web-1");
    let payments = resource("payments", "pay-1");
    let root = span(0x0a, 1, &frontend, "GET /checkout", T0, 2_000_000)
        .status(SpanStatus::Ok, "")
        .attribute("http.method", AnyValue::String("GET".into()))
        .attribute("http.status_code", AnyValue::Int(200))
        .attribute("ratio", AnyValue::Double(0.5))
        .attribute("cached", AnyValue::Bool(false))
        .attribute("raw", AnyValue::Bytes(vec![1, 2, 3]))
        .attribute(
            "list",
            AnyValue::Array(vec![AnyValue::String("a".into()), AnyValue::Int(1)]),
        );
    let charge = span(0x0a, 2, &payments, "charge", T0 + 100_000, 1_000_000)
        .parent(1)
        .kind(SpanKind::Client)
        .status(SpanStatus::Error, "card declined")
        .event(Event {
            name: "retry".into(),
            time_unix_nano: T0 + 600_000,
            attributes: vec![KeyValue::new("attempt", AnyValue::Int(2))],
            dropped_attributes_count: 0,
        })
        .link(Link {
            trace_id: TraceId([0x0b; 16]),
            span_id: SpanId([3; 8]),
            trace_state: String::new(),
            flags: 0,
            attributes: vec![],
            dropped_attributes_count: 0,
        });
    let refund = span(0x0b, 3, &payments, "refund", 2 * T0, 10_000_000)
        .kind(SpanKind::Internal)
        .attribute("http.method", AnyValue::String("POST".into()));
    let health =
        span(0x0c, 4, &frontend, "GET /health", 3 * T0, 50_000).kind(SpanKind::Unspecified);
    [root, charge, refund, health]
        .map(SpanBuilder::build)
        .into()
}

struct Fixture {
    router: axum::Router,
    _writer: WriterThread,
    _dir: tempfile::TempDir,
}

async fn seeded() -> Result<Fixture, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let limits = QueueLimits {
        requests: 4,
        spans: 1000,
    };
    let (store, writer) = SqliteStore::open(&dir.path().join("j.db"), limits)?;
    fixtures::write(&store, fixture(), T0).await?;
    Ok(Fixture {
        router: query::router(store, Arc::default()),
        _writer: writer,
        _dir: dir,
    })
}

impl Fixture {
    async fn get(&self, uri: &str) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
        let request = Request::get(uri).body(Body::empty())?;
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&body)
            .map_err(|e| format!("{uri}: {e}: {}", String::from_utf8_lossy(&body)))?;
        Ok((status, value))
    }

    /// Trace ids of a v1 `/api/traces` answer, in order.
    async fn v1_ids(&self, uri: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let (status, body) = self.get(uri).await?;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        Ok(ids(&body["data"], "traceID"))
    }

    /// Trace ids of a v3 `/api/v3/trace-summaries` answer, in order.
    async fn v3_ids(&self, uri: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let (status, body) = self.get(uri).await?;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        Ok(ids(&body["summaries"], "traceId"))
    }
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t[field].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn envelope(data: Value) -> Value {
    let total = data.as_array().map_or(0, Vec::len);
    json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": null })
}

fn v1_error(code: u16, msg: &str) -> Value {
    json!({ "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{ "code": code, "msg": msg }] })
}

/// Trace A as Jaeger's v1 API shows it.
fn golden_trace_a() -> Value {
    json!({
        "traceID": A,
        "spans": [
            {
                "traceID": A, "spanID": "0101010101010101", "flags": 1,
                "operationName": "GET /checkout", "references": [],
                "startTime": 1_000_000_000u64, "duration": 2000,
                "tags": [
                    { "key": "http.method", "type": "string", "value": "GET" },
                    { "key": "http.status_code", "type": "int64", "value": 200 },
                    { "key": "ratio", "type": "float64", "value": 0.5 },
                    { "key": "cached", "type": "bool", "value": false },
                    { "key": "raw", "type": "binary", "value": "AQID" },
                    { "key": "list", "type": "string", "value": "[\"a\",1]" },
                    { "key": "otel.scope.name", "type": "string", "value": "http-lib" },
                    { "key": "otel.scope.version", "type": "string", "value": "1.2" },
                    { "key": "span.kind", "type": "string", "value": "server" },
                    { "key": "otel.status_code", "type": "string", "value": "OK" }
                ],
                "logs": [], "processID": "p1", "warnings": null
            },
            {
                "traceID": A, "spanID": "0202020202020202", "flags": 1,
                "operationName": "charge",
                "references": [
                    { "refType": "CHILD_OF", "traceID": A, "spanID": "0101010101010101" },
                    { "refType": "FOLLOWS_FROM", "traceID": B, "spanID": "0303030303030303" }
                ],
                "startTime": 1_000_000_100u64, "duration": 1000,
                "tags": [
                    { "key": "otel.scope.name", "type": "string", "value": "http-lib" },
                    { "key": "otel.scope.version", "type": "string", "value": "1.2" },
                    { "key": "span.kind", "type": "string", "value": "client" },
                    { "key": "otel.status_code", "type": "string", "value": "ERROR" },
                    { "key": "error", "type": "bool", "value": true },
                    { "key": "otel.status_description", "type": "string", "value": "card declined" }
                ],
                "logs": [{
                    "timestamp": 1_000_000_600u64,
                    "fields": [
                        { "key": "event", "type": "string", "value": "retry" },
                        { "key": "attempt", "type": "int64", "value": 2 }
                    ]
                }],
                "processID": "p2", "warnings": null
            }
        ],
        "processes": {
            "p1": { "serviceName": "frontend",
                    "tags": [{ "key": "host.name", "type": "string", "value": "web-1" }] },
            "p2": { "serviceName": "payments",
                    "tags": [{ "key": "host.name", "type": "string", "value": "pay-1" }] }
        },
        "warnings": null
    })
}

#[tokio::test]
async fn v1_trace_by_id_has_jaegers_shape() -> TestResult {
    let f = seeded().await?;
    let (status, body) = f.get(&format!("/api/traces/{A}")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, envelope(json!([golden_trace_a()])));
    Ok(())
}

#[tokio::test]
async fn v1_unknown_and_malformed_trace_ids() -> TestResult {
    let f = seeded().await?;
    let (status, body) = f.get(&format!("/api/traces/{}", "f".repeat(32))).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, v1_error(404, "trace not found"));
    let (status, body) = f.get("/api/traces/xyz").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 400);
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("traceID")
    );
    // Jaeger drops leading zeros of trace ids; a short id still finds A.
    let (status, _) = f.get("/api/traces/a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a").await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn v1_services_and_operations() -> TestResult {
    let f = seeded().await?;
    assert_eq!(
        f.get("/api/services").await?,
        (StatusCode::OK, envelope(json!(["frontend", "payments"])))
    );
    assert_eq!(
        f.get("/api/services/frontend/operations").await?,
        (
            StatusCode::OK,
            envelope(json!(["GET /checkout", "GET /health"]))
        )
    );
    assert_eq!(
        f.get("/api/operations?service=frontend").await?,
        (
            StatusCode::OK,
            envelope(json!([
                { "name": "GET /checkout", "spanKind": "server" },
                { "name": "GET /health", "spanKind": "" }
            ]))
        )
    );
    assert_eq!(
        f.get("/api/operations?service=payments&spanKind=client")
            .await?,
        (
            StatusCode::OK,
            envelope(json!([{ "name": "charge", "spanKind": "client" }]))
        )
    );
    let (status, body) = f.get("/api/operations").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, v1_error(400, "parameter 'service' is required"));
    let (status, body) = f
        .get("/api/operations?service=frontend&spanKind=sideways")
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("spanKind")
    );
    Ok(())
}

#[tokio::test]
async fn v1_search_filters() -> TestResult {
    let f = seeded().await?;
    assert_eq!(f.v1_ids("/api/traces").await?, [C, B, A]);
    assert_eq!(f.v1_ids("/api/traces?service=payments").await?, [B, A]);
    assert_eq!(
        f.v1_ids("/api/traces?service=frontend&operation=GET%20%2Fhealth")
            .await?,
        [C]
    );
    assert_eq!(f.v1_ids("/api/traces?tag=http.method:POST").await?, [B]);
    assert_eq!(
        f.v1_ids("/api/traces?tag=http.method:GET&tag=http.status_code:200")
            .await?,
        [A]
    );
    assert!(
        f.v1_ids("/api/traces?tag=http.method:GET&tag=http.status_code:404")
            .await?
            .is_empty()
    );
    let tags = "%7B%22http.method%22%3A%22GET%22%2C%22http.status_code%22%3A200%7D";
    assert_eq!(f.v1_ids(&format!("/api/traces?tags={tags}")).await?, [A]);
    assert_eq!(f.v1_ids("/api/traces?tag=error:true").await?, [A]);
    // The status tags the UI shows with each span can be searched too.
    assert_eq!(
        f.v1_ids("/api/traces?tag=otel.status_code:ERROR").await?,
        [A]
    );
    assert_eq!(f.v1_ids("/api/traces?tag=otel.status_code:OK").await?, [A]);
    assert_eq!(
        f.v1_ids("/api/traces?service=payments&tag=otel.status_code:UNSET")
            .await?,
        [B]
    );
    assert_eq!(f.v1_ids("/api/traces?tag=span.kind:internal").await?, [B]);
    assert_eq!(f.v1_ids("/api/traces?minDuration=5ms").await?, [B]);
    assert_eq!(f.v1_ids("/api/traces?maxDuration=100us").await?, [C]);
    assert_eq!(
        f.v1_ids("/api/traces?minDuration=1.5ms&maxDuration=3ms")
            .await?,
        [A]
    );
    // start and end are unix microseconds: T0 is 1e9 µs.
    assert_eq!(
        f.v1_ids("/api/traces?start=1500000000&end=2500000000")
            .await?,
        [B]
    );
    assert_eq!(f.v1_ids("/api/traces?start=1500000000").await?, [C, B]);
    assert_eq!(f.v1_ids("/api/traces?limit=2").await?, [C, B]);
    assert_eq!(
        f.v1_ids(&format!("/api/traces?traceID={B}&traceID={C}"))
            .await?,
        [B, C]
    );
    // An id that names no trace is listed in `errors`, as Jaeger lists it.
    let unknown = "f".repeat(32);
    let (status, body) = f
        .get(&format!("/api/traces?traceID={B}&traceID={unknown}"))
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 1);
    assert_eq!(
        body["errors"],
        json!([{ "msg": "trace not found", "traceID": unknown }])
    );
    Ok(())
}

#[tokio::test]
async fn v1_search_returns_full_traces() -> TestResult {
    let f = seeded().await?;
    let (status, body) = f
        .get("/api/traces?service=frontend&operation=GET%20%2Fcheckout")
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, envelope(json!([golden_trace_a()])));
    Ok(())
}

#[tokio::test]
async fn v1_search_rejects_bad_parameters() -> TestResult {
    let f = seeded().await?;
    for (query, name) in [
        ("minDuration=5", "minDuration"),
        ("maxDuration=fast", "maxDuration"),
        ("start=yesterday", "start"),
        ("end=-1", "end"),
        ("limit=many", "limit"),
        ("tag=nocolon", "tag"),
        ("tags=%5B1%5D", "tags"),
        ("minDuration=2s&maxDuration=1s", "maxDuration"),
        ("start=20&end=10", "start"),
        ("service=web&service=db", "service is given 2 times"),
        ("tag=otel.scope.name:http-lib", "otel.scope.name"),
        ("limit=1&limit=2&limit=3", "limit is given 3 times"),
    ] {
        let (status, body) = f.get(&format!("/api/traces?{query}")).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["data"], Value::Null, "{query}");
        assert_eq!(body["errors"][0]["code"], 400, "{query}");
        let msg = body["errors"][0]["msg"].as_str().unwrap_or("");
        assert!(msg.contains(name), "{query}: {msg}");
    }
    Ok(())
}

#[tokio::test]
async fn v1_dependencies() -> TestResult {
    let f = seeded().await?;
    // endTs and lookback are milliseconds; trace A's call is at 1000 s.
    assert_eq!(
        f.get("/api/dependencies?endTs=1500000&lookback=1000000")
            .await?,
        (
            StatusCode::OK,
            envelope(json!([{ "parent": "frontend", "child": "payments", "callCount": 1 }]))
        )
    );
    assert_eq!(
        f.get("/api/dependencies?endTs=5000000&lookback=1000000")
            .await?,
        (StatusCode::OK, envelope(json!([])))
    );
    let (status, body) = f.get("/api/dependencies?endTs=soon").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("endTs")
    );
    Ok(())
}

#[tokio::test]
async fn v3_services_and_operations() -> TestResult {
    let f = seeded().await?;
    assert_eq!(
        f.get("/api/v3/services").await?,
        (
            StatusCode::OK,
            json!({ "services": ["frontend", "payments"] })
        )
    );
    assert_eq!(
        f.get("/api/v3/operations?service=frontend").await?,
        (
            StatusCode::OK,
            json!({ "operations": [
                { "name": "GET /checkout", "spanKind": "server" },
                { "name": "GET /health", "spanKind": "internal" }
            ] })
        )
    );
    assert_eq!(
        f.get("/api/v3/operations?service=payments&spanKind=internal")
            .await?,
        (
            StatusCode::OK,
            json!({ "operations": [{ "name": "refund", "spanKind": "internal" }] })
        )
    );
    let (status, body) = f
        .get("/api/v3/operations?service=payments&span_kind=odd")
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["httpCode"], 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("span_kind")
    );
    Ok(())
}

#[tokio::test]
async fn v3_trace_summaries_shape() -> TestResult {
    let f = seeded().await?;
    let (status, body) = f
        .get("/api/v3/trace-summaries?query.serviceName=payments&query.operationName=charge")
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "summaries": [{
            "traceId": A,
            "rootServiceName": "frontend",
            "rootOperationName": "GET /checkout",
            "minStartTimeUnixNano": "1000000000000",
            "maxEndTimeUnixNano": "1000002000000",
            "spanCount": 2,
            "errorSpanCount": 1,
            "orphanSpanCount": 0,
            "services": [
                { "name": "frontend", "spanCount": 1, "errorSpanCount": 0 },
                { "name": "payments", "spanCount": 1, "errorSpanCount": 1 }
            ]
        }] })
    );
    Ok(())
}

#[tokio::test]
async fn v3_search_filters() -> TestResult {
    let f = seeded().await?;
    let base = "/api/v3/trace-summaries";
    assert_eq!(f.v3_ids(base).await?, [C, B, A]);
    assert_eq!(
        f.v3_ids(&format!("{base}?query.service_name=payments"))
            .await?,
        [B, A]
    );
    assert_eq!(
        f.v3_ids(&format!("{base}?query.durationMin=5ms")).await?,
        [B]
    );
    assert_eq!(
        f.v3_ids(&format!("{base}?query.duration_max=100us"))
            .await?,
        [C]
    );
    let window = "query.startTimeMin=1970-01-01T00:25:00Z&query.startTimeMax=1970-01-01T00:45:00Z";
    assert_eq!(f.v3_ids(&format!("{base}?{window}")).await?, [B]);
    let attributes = "%7B%22http.method%22%3A%22POST%22%7D";
    assert_eq!(
        f.v3_ids(&format!("{base}?query.attributes={attributes}"))
            .await?,
        [B]
    );
    assert_eq!(f.v3_ids(&format!("{base}?query.searchDepth=1")).await?, [C]);
    assert_eq!(
        f.v3_ids(&format!("{base}?query.num_traces=2")).await?,
        [C, B]
    );
    Ok(())
}

#[tokio::test]
async fn v3_bad_parameters_name_the_parameter() -> TestResult {
    let f = seeded().await?;
    for (query, name) in [
        ("query.startTimeMin=yesterday", "query.startTimeMin"),
        ("query.start_time_max=2024-01-01", "query.start_time_max"),
        ("query.durationMin=5", "query.durationMin"),
        ("query.durationMax=-1s", "query.durationMax"),
        ("query.searchDepth=lots", "query.searchDepth"),
        ("query.attributes=nope", "query.attributes"),
        (
            "query.service_name=a&query.service_name=b",
            "query.service_name is given 2 times",
        ),
    ] {
        for route in ["/api/v3/trace-summaries", "/api/v3/traces"] {
            let (status, body) = f.get(&format!("{route}?{query}")).await?;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{route}?{query}");
            assert_eq!(body["error"]["httpCode"], 400);
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(
                message.starts_with(&format!("malformed parameter {name}"))
                    || message.starts_with(name),
                "{message}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn v3_trace_is_otlp_json_in_a_result() -> TestResult {
    let f = seeded().await?;
    let (status, body) = f.get(&format!("/api/v3/traces/{A}")).await?;
    assert_eq!(status, StatusCode::OK);
    let resource_spans = body["result"]["resourceSpans"]
        .as_array()
        .ok_or("no resourceSpans")?;
    assert_eq!(resource_spans.len(), 2, "{body}");
    let root = &resource_spans[0]["scopeSpans"][0]["spans"][0];
    assert_eq!(root["traceId"], A);
    assert_eq!(root["spanId"], "0101010101010101");
    assert_eq!(root["name"], "GET /checkout");
    assert_eq!(root["startTimeUnixNano"], "1000000000000");
    assert_eq!(root["endTimeUnixNano"], "1000002000000");
    // The OTLP JSON mapping: 64-bit integers as strings, enums as numbers.
    assert_eq!(root["kind"], 2);
    assert_eq!(root["status"]["code"], 1);
    assert_eq!(root["attributes"][1]["key"], "http.status_code");
    assert_eq!(root["attributes"][1]["value"], json!({ "intValue": "200" }));
    assert_eq!(
        resource_spans[0]["scopeSpans"][0]["scope"]["name"],
        "http-lib"
    );
    let service = &resource_spans[0]["resource"]["attributes"][0];
    assert_eq!(service["key"], "service.name");
    assert_eq!(service["value"]["stringValue"], "frontend");
    let charge = &resource_spans[1]["scopeSpans"][0]["spans"][0];
    assert_eq!(charge["parentSpanId"], "0101010101010101");
    assert_eq!(charge["status"]["message"], "card declined");
    Ok(())
}

#[tokio::test]
async fn v3_find_traces_and_not_found() -> TestResult {
    let f = seeded().await?;
    let (status, body) = f.get("/api/v3/traces?query.serviceName=payments").await?;
    assert_eq!(status, StatusCode::OK);
    let trace_ids: Vec<&str> = body["result"]["resourceSpans"]
        .as_array()
        .ok_or("no resourceSpans")?
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().into_iter().flatten())
        .flat_map(|ss| ss["spans"].as_array().into_iter().flatten())
        .filter_map(|s| s["traceId"].as_str())
        .collect();
    assert_eq!(trace_ids, [B, A, A]);
    // One ResourceSpans per trace: payments' spans of B and of A are not
    // merged under one resource, as Jaeger keeps traces apart.
    let per_resource: Vec<Vec<&str>> = body["result"]["resourceSpans"]
        .as_array()
        .ok_or("no resourceSpans")?
        .iter()
        .map(|rs| {
            rs["scopeSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|ss| ss["spans"].as_array().into_iter().flatten())
                .filter_map(|s| s["traceId"].as_str())
                .collect()
        })
        .collect();
    assert_eq!(per_resource, [vec![B], vec![A], vec![A]]);
    let not_found = json!({ "error": { "httpCode": 404, "message": "No traces found" } });
    assert_eq!(
        f.get(&format!("/api/v3/traces/{}", "f".repeat(32))).await?,
        (StatusCode::NOT_FOUND, not_found.clone())
    );
    assert_eq!(
        f.get("/api/v3/traces?query.serviceName=nobody").await?,
        (StatusCode::NOT_FOUND, not_found)
    );
    let (status, body) = f.get("/api/v3/traces/not-hex").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("trace_id")
    );
    Ok(())
}

#[tokio::test]
async fn otelite_routes_still_answer() -> TestResult {
    let f = seeded().await?;
    let (status, body) = f.get("/api/otelite/services").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "services": ["frontend", "payments"] }));
    Ok(())
}

impl Fixture {
    async fn post(
        &self,
        uri: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
        let request = Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body))?;
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, serde_json::from_slice(&body)?))
    }
}

/// The Jaeger UI's upload: an OTLP JSON file comes back as its traces, in
/// the shape `/api/traces/{id}` gives, and nothing is stored.
#[tokio::test]
async fn transform_turns_an_otlp_json_file_into_jaeger_traces() -> TestResult {
    let f = seeded().await?;
    let mut spans = fixture();
    // A trace only in the file, to show that nothing is stored.
    spans.push(
        span(
            0x0d,
            9,
            &resource("uploaded", "h"),
            "from a file",
            T0,
            1_000,
        )
        .build(),
    );
    let file = serde_json::to_vec(&otelite_model::otlp::to_otlp(&spans))?;
    let (status, body) = f.post("/api/transform", file).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0], golden_trace_a());
    // In the order the file first names them: the file lists frontend's
    // spans (A, C) before payments' (A, B).
    assert_eq!(ids(&body["data"], "traceID"), [A, C, B, &"0d".repeat(16)]);
    assert_eq!(
        f.v1_ids(&format!("/api/traces?traceID={}", "0d".repeat(16)))
            .await?,
        Vec::<String>::new()
    );

    let (status, body) = f.post("/api/transform", b"{not json".to_vec()).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], 400);
    let msg = body["errors"][0]["msg"].as_str().unwrap_or("");
    assert!(msg.contains("not OTLP JSON"), "{msg}");
    Ok(())
}

/// Jaeger's own fixtures for base64 trace ids (its HTTP gateway's
/// `TestHTTPGatewayGetTraceBase64`), with the id each one names.
#[test]
fn base64_trace_ids_parse_as_jaeger_parses_them() {
    for (text, hex) in [
        (
            "AAAAAAAAAAAAAAAAAAAAAQ==",
            "00000000000000000000000000000001",
        ),
        (
            "AAAAAAAAAP///////////w==",
            "00000000000000ffffffffffffffffff",
        ),
        (
            "EjRWeJq83vD+3LqYdlQyEA==",
            "123456789abcdef0fedcba9876543210",
        ),
        // The same id URL-safe and unpadded, and 8 bytes (a 64-bit id).
        ("EjRWeJq83vD-3LqYdlQyEA", "123456789abcdef0fedcba9876543210"),
        ("EjRWeJq83vA=", "0000000000000000123456789abcdef0"),
        // Hex wins where both read: Jaeger tries hex first.
        ("1", "00000000000000000000000000000001"),
    ] {
        let id = super::path_trace_id(text, "trace_id").map_err(|e| e.message());
        assert_eq!(id.map(|id| id.to_hex()), Ok(hex.to_owned()), "{text}");
    }
    for bad in [
        "AA==",
        "not base64!",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(super::path_trace_id(bad, "trace_id").is_err(), "{bad}");
    }
}

#[tokio::test]
async fn trace_by_id_takes_a_base64_id_on_v1_and_v3() -> TestResult {
    let f = seeded().await?;
    // Trace A (16 bytes of 0x0a) in base64, percent-encoded as a path
    // segment would carry `/`, `+` and `=`.
    for uri in [
        "/api/traces/CgoKCgoKCgoKCgoKCgoKCg%3D%3D",
        "/api/v3/traces/CgoKCgoKCgoKCgoKCgoKCg==",
        "/api/v3/traces/CgoKCgoKCgoKCgoKCgoKCg",
    ] {
        let (status, body) = f.get(uri).await?;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        let text = body.to_string();
        assert!(text.contains(A), "{uri} answers trace A: {body}");
    }
    let (status, body) = f
        .get("/api/v3/traces/AAAAAAAAAP%2F%2F%2F%2F%2F%2F%2F%2F%2F%2F%2Fw==")
        .await?;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a valid id of no stored trace: {body}"
    );
    let (status, body) = f.get("/api/v3/traces/%21%21").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    Ok(())
}
