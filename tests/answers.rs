//! A trace bigger than `max_spans_per_answer` is answered in pages: the own
//! API gives the first spans with a cursor and paging visits every span
//! once, in start-then-id order; the Jaeger answers are capped with a
//! warning; `otelite trace` (`--server` and `--db`) reads it whole. And a
//! big trace fetched from the real binary costs it far less memory than
//! the whole answer would.

use crate::support::process::{ServeProcess, blocking, otelite_bin};
use crate::support::stores::for_each_store;
use crate::support::{Backend, Store};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The configured cap of the paging test, and its trace's size: six pages,
/// the last one short.
const CAP: usize = 7;
const SPANS: usize = 40;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Span `i` of a test trace: two spans share each start time, and span ids
/// fall as `i` grows, so the order by start then id is neither the sending
/// order nor the id order.
fn span(trace_id: [u8; 16], base_ns: u64, i: usize, total: usize) -> Span {
    let id = |n: usize| {
        (0x1000_0000_u64 + (total - n) as u64)
            .to_be_bytes()
            .to_vec()
    };
    Span {
        trace_id: trace_id.to_vec(),
        span_id: id(i),
        parent_span_id: if i == 0 { vec![] } else { id(0) },
        name: format!("step-{i}"),
        kind: 1,
        start_time_unix_nano: base_ns + (i / 2) as u64 * 1000,
        end_time_unix_nano: base_ns + (i / 2) as u64 * 1000 + 500,
        attributes: vec![KeyValue {
            key: "payload".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(200))),
            }),
            ..KeyValue::default()
        }],
        ..Span::default()
    }
}

/// Spans `range` of the trace as one OTLP protobuf request.
fn request(
    trace_id: [u8; 16],
    base_ns: u64,
    range: std::ops::Range<usize>,
    total: usize,
) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("answers".into())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: range.map(|i| span(trace_id, base_ns, i, total)).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

fn trace_id(tag: u8) -> [u8; 16] {
    let mut id = [tag; 16];
    id[..8].copy_from_slice(&now_ns().to_be_bytes());
    id
}

/// Span ids (hex) of a JSON array of spans under `key`.
fn ids(spans: &Value, key: &str) -> Vec<String> {
    spans
        .as_array()
        .unwrap_or_else(|| panic!("an array of spans: {spans}"))
        .iter()
        .map(|s| s[key].as_str().expect("a span id").to_owned())
        .collect()
}

/// The trace's span ids in the documented order, worked out here from
/// what was sent: by start time, then span id.
fn expected_order(trace_id: [u8; 16], base_ns: u64) -> Vec<String> {
    let mut spans: Vec<Span> = (0..SPANS)
        .map(|i| span(trace_id, base_ns, i, SPANS))
        .collect();
    spans.sort_by(|a, b| {
        (a.start_time_unix_nano, &a.span_id).cmp(&(b.start_time_unix_nano, &b.span_id))
    });
    spans.iter().map(|s| hex::encode(&s.span_id)).collect()
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread")]
    a_trace_past_the_cap_is_answered_in_pages
);

async fn a_trace_past_the_cap_is_answered_in_pages(store: Store) {
    let backend = Backend::start_on(store, "answers", |config| {
        config.query_limits.max_spans_per_answer = CAP;
    })
    .await;
    let (id, base) = (trace_id(0xa5), now_ns());
    let hex_id = hex::encode(id);
    // In two requests, so the trace spans two writes.
    for range in [0..SPANS / 2, SPANS / 2..SPANS] {
        let reply = backend
            .post(
                "/v1/traces",
                "application/x-protobuf",
                None,
                request(id, base, range, SPANS),
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }

    // The own API: pages of at most CAP, each naming the next, every span once.
    let mut seen = Vec::new();
    let mut path = format!("/api/otelite/traces/{hex_id}");
    let mut pages = 0;
    loop {
        let (status, body) = backend.get_json(&path).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["spanCount"], SPANS, "{body}");
        assert_eq!(body["startTimeUnixNano"], base, "{body}");
        assert_eq!(body["durationNanos"], (SPANS as u64 / 2 - 1) * 1000 + 500);
        let page = ids(&body["spans"], "spanId");
        assert!(page.len() <= CAP, "{} spans on one page", page.len());
        seen.extend(page);
        pages += 1;
        match body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/otelite/traces/{hex_id}?cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, SPANS.div_ceil(CAP));
    assert_eq!(seen, expected_order(id, base));

    // A smaller page on request; a larger one is held to the cap.
    let (_, body) = backend
        .get_json(&format!("/api/otelite/traces/{hex_id}?limit=3"))
        .await;
    assert_eq!(ids(&body["spans"], "spanId"), seen[..3]);
    let (_, body) = backend
        .get_json(&format!("/api/otelite/traces/{hex_id}?limit=1000"))
        .await;
    assert_eq!(ids(&body["spans"], "spanId").len(), CAP);
    let (status, body) = backend
        .get_json(&format!("/api/otelite/traces/{hex_id}?cursor=junk"))
        .await;
    assert_eq!(status, 400, "{body}");

    // Jaeger v1: the first spans, with a warning saying how to get the rest.
    let (status, body) = backend.get_json(&format!("/api/traces/{hex_id}")).await;
    assert_eq!(status, 200, "{body}");
    let trace = &body["data"][0];
    assert_eq!(ids(&trace["spans"], "spanID"), seen[..CAP]);
    let warning = trace["warnings"][0]
        .as_str()
        .expect("a warning on the trace");
    assert!(
        warning.contains("max_spans_per_answer")
            && warning.contains(&format!("/api/otelite/traces/{hex_id}?cursor="))
            && warning.contains(&format!("{CAP} of the trace's {SPANS} spans")),
        "{warning}"
    );
    assert_eq!(trace["spans"][0]["warnings"][0], warning);

    // Jaeger v3: the same spans as OTLP, and the warning beside them.
    let (status, body) = backend.get_json(&format!("/api/v3/traces/{hex_id}")).await;
    assert_eq!(status, 200, "{body}");
    let v3_spans: Vec<String> = body["result"]["resourceSpans"]
        .as_array()
        .expect("resourceSpans")
        .iter()
        .flat_map(|r| r["scopeSpans"].as_array().expect("scopeSpans").clone())
        .flat_map(|s| ids(&s["spans"], "spanId"))
        .collect();
    assert_eq!(v3_spans.len(), CAP);
    assert!(
        body["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("max_spans_per_answer")),
        "{body}"
    );

    // A trace within the cap is whole, with no cursor and no warning.
    let small = trace_id(0x5a);
    let reply = backend
        .post(
            "/v1/traces",
            "application/x-protobuf",
            None,
            request(small, base, 0..3, 3),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let (_, body) = backend
        .get_json(&format!("/api/otelite/traces/{}", hex::encode(small)))
        .await;
    assert_eq!(
        (body["spans"].as_array().map(Vec::len), &body["nextCursor"]),
        (Some(3), &Value::Null)
    );
    let (_, body) = backend
        .get_json(&format!("/api/traces/{}", hex::encode(small)))
        .await;
    assert_eq!(body["data"][0]["warnings"], Value::Null);

    // Several traces in one answer share the cap in the order asked (read
    // a few at once): two small ones whole (6 of 7 spans), the big one cut
    // to the one span left, and the last one not read.
    let (second, last) = (trace_id(0x5b), trace_id(0x5c));
    for id in [second, last] {
        let body = request(id, base, 0..3, 3);
        let reply = backend
            .post("/v1/traces", "application/x-protobuf", None, body)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let asked = [small, second, id, last].map(hex::encode);
    let (status, body) = backend
        .get_json(&format!("/api/traces?traceID={}", asked.join("&traceID=")))
        .await;
    assert_eq!(status, 200, "{body}");
    let sizes: Vec<(String, usize)> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| {
            let spans = t["spans"].as_array().map_or(0, Vec::len);
            (t["traceID"].as_str().unwrap_or_default().to_owned(), spans)
        })
        .collect();
    let want: Vec<(String, usize)> = asked[..3].iter().cloned().zip([3, 3, 1]).collect();
    assert_eq!(sizes, want, "{body}");
    assert_eq!(ids(&body["data"][2]["spans"], "spanID"), seen[..1]);
    assert_eq!(body["errors"][0]["traceID"], asked[3].as_str(), "{body}");
    assert!(
        body["errors"][0]["msg"]
            .as_str()
            .is_some_and(|m| m.contains("not read")),
        "{body}"
    );

    // `otelite trace` pages through the server's pages, and reads the file.
    let server = backend.query_url("");
    let mut sources = vec![vec!["--server".to_owned(), server]];
    if store == Store::Sqlite {
        let db = backend.db_path().display().to_string();
        sources.push(vec!["--db".to_owned(), db]);
    }
    for source in sources {
        let out = blocking({
            let (hex_id, source) = (hex_id.clone(), source.clone());
            move || {
                Command::new(otelite_bin())
                    .args(["trace", &hex_id, "--json"])
                    .args(&source)
                    .env_remove("OTELITE_SERVER")
                    .stdin(Stdio::null())
                    .output()
                    .expect("run otelite trace")
            }
        })
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "otelite trace {source:?}: {stderr}");
        let json: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        assert_eq!(
            ids(&json["spans"], "spanId"),
            seen,
            "otelite trace {source:?}"
        );
    }
}

/// Spans in the big trace, and per request.
const BIG_SPANS: usize = 200_000;
const BIG_BATCH: usize = 10_000;
/// The server's peak RSS while storing and answering the big trace; the
/// whole trace as otelite's JSON alone is larger (checked below).
const PEAK_RSS_BOUND: u64 = 160 << 20;

/// Fetched from the real binary at its default cap, a 200 000-span trace
/// costs the server a bounded amount of memory, far less than the whole
/// answer's JSON, whichever API asks.
#[tokio::test(flavor = "multi_thread")]
async fn a_big_trace_is_answered_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("otelite.db");
    let mut server = blocking(move || ServeProcess::start(&db, &[])).await;
    let (id, base) = (trace_id(0xb1), now_ns());
    let client = reqwest::Client::new();
    for first in (0..BIG_SPANS).step_by(BIG_BATCH) {
        let body = request(id, base, first..first + BIG_BATCH, BIG_SPANS);
        let reply = client
            .post(format!("{}/v1/traces", server.otlp_url()))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .expect("post a batch");
        assert_eq!(reply.status(), 200);
    }
    let hex_id = hex::encode(id);
    let get = |path: String| {
        let client = client.clone();
        let url = server.query_url(&path);
        async move {
            let reply = client.get(url).send().await.expect("GET the trace");
            assert_eq!(reply.status(), 200);
            reply.bytes().await.expect("the answer")
        }
    };
    let page = get(format!("/api/otelite/traces/{hex_id}")).await;
    let body: Value = serde_json::from_slice(&page).expect("JSON");
    let on_page = body["spans"].as_array().map_or(0, Vec::len);
    assert_eq!(body["spanCount"], BIG_SPANS);
    assert!(
        on_page > 0 && on_page < BIG_SPANS,
        "{on_page} spans on the first page"
    );
    assert!(body["nextCursor"].is_string());
    for path in [
        format!("/api/traces/{hex_id}"),
        format!("/api/v3/traces/{hex_id}"),
    ] {
        get(path).await;
    }

    // The whole trace as JSON is at least its pages' bytes together.
    let whole_json = page.len() as u64 * (BIG_SPANS / on_page) as u64;
    let peak = server.peak_rss_bytes();
    println!(
        "peak RSS {} MiB; first page {} spans, {} KiB; whole answer ≥ {} MiB",
        peak >> 20,
        on_page,
        page.len() >> 10,
        whole_json >> 20
    );
    assert!(
        whole_json > PEAK_RSS_BOUND,
        "the trace is too small to show the cap"
    );
    assert!(
        peak < PEAK_RSS_BOUND,
        "peak RSS {} MiB past the bound of {} MiB",
        peak >> 20,
        PEAK_RSS_BOUND >> 20
    );
    server.kill();
}
