//! Bad input over real HTTP: each request gets the documented status, and
//! afterwards the server still accepts data and what it stored before is
//! intact. Every test runs on both stores (`::sqlite`, `::clickhouse`).

use crate::support::fixtures::{self, otlp_request};
use crate::support::{self, Backend, Reply, Store, for_each_store};
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otelite_model::{
    self as model, AnyValue, KeyValue, Link, Scope, SpanId, SpanKind, StatusCode, TraceId,
};
use prost::Message;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// The body limit these tests configure, small enough to exceed cheaply.
const LIMIT: usize = 64 * 1024;

/// `google.rpc.Status`, the body of OTLP/HTTP error replies.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

const INVALID_ARGUMENT: i32 = 3;

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// A span with a bit of everything, so "intact" means something.
fn span(trace: TraceId, id: u8, parent: Option<u8>, name: &str) -> model::Span {
    let start = now_nanos() - 1_000_000_000 + u64::from(id) * 1_000;
    let string = |text: &str| AnyValue::String(text.into());
    fixtures::span(trace, SpanId([0x5a, 0, 0, 0, 0, 0, 0, id]))
        .parent_span_id(parent.map(|p| SpanId([0x5a, 0, 0, 0, 0, 0, 0, p])))
        .flags(0x101)
        .service("bad-input")
        .scope(&Arc::new(Scope {
            name: "otelite-e2e-bad-input".into(),
            version: "1.0.0".into(),
            ..Scope::default()
        }))
        .name(name)
        .kind(SpanKind::Server)
        .times(start, start + 5_000)
        .status(StatusCode::Error, "boom")
        .attribute("i", AnyValue::Int(-7))
        .attribute("d", AnyValue::Double(2.5))
        .attribute("b", AnyValue::Bool(true))
        .attribute("s", string("x"))
        .attribute("bytes", AnyValue::Bytes(vec![0, 1, 254, 255]))
        .attribute(
            "arr",
            AnyValue::Array(vec![AnyValue::Int(1), string("two")]),
        )
        .attribute(
            "kv",
            AnyValue::KvList(vec![KeyValue::new("inner", AnyValue::Bool(false))]),
        )
        .dropped_attributes(1)
        .event(fixtures::event(
            "evt",
            start + 1_000,
            vec![KeyValue::new("k", string("v"))],
        ))
        .dropped_events(2)
        .link(Link {
            trace_id: TraceId([9; 16]),
            span_id: SpanId([8; 8]),
            trace_state: "a=b".into(),
            flags: 1,
            attributes: vec![],
            dropped_attributes_count: 0,
        })
        .dropped_links(3)
        .build()
}

fn trace(tag: u8, size: u8) -> (String, Vec<model::Span>) {
    let id = support::unique_trace_id(tag);
    let spans = (1..=size)
        .map(|i| span(id, i, (i > 1).then_some(1), &format!("op-{i}")))
        .collect();
    (id.to_hex(), spans)
}

fn protobuf(spans: &[model::Span]) -> Vec<u8> {
    otlp_request(spans).encode_to_vec()
}

fn json(spans: &[model::Span]) -> Vec<u8> {
    serde_json::to_vec(&otlp_request(spans)).expect("OTLP request serializes to JSON")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn sorted(mut spans: Vec<model::Span>) -> Vec<model::Span> {
    spans.sort_by_key(|s| s.span_id);
    spans
}

/// A backend with a small body limit and one trace stored before the abuse.
struct Fixture {
    backend: Backend,
    baseline_id: String,
    baseline: Vec<model::Span>,
    checks: u8,
}

impl Fixture {
    async fn start(store: Store) -> Self {
        Self::start_with(store, |_| {}).await
    }

    async fn start_with(store: Store, tweak: impl FnOnce(&mut otelite_backend::Config)) -> Self {
        let backend = Backend::start_on(store, "bad_input", |c| {
            c.max_body_bytes = LIMIT;
            tweak(c);
        })
        .await;
        let (baseline_id, baseline) = trace(100, 3);
        let reply = backend
            .post("/v1/traces", PROTOBUF, None, protobuf(&baseline))
            .await;
        assert_eq!(reply.status, 200, "baseline accepted: {reply:?}");
        assert_eq!(reply.content_type.as_deref(), Some(PROTOBUF), "{reply:?}");
        ExportTraceServiceResponse::decode(reply.body.as_slice())
            .unwrap_or_else(|e| panic!("not an ExportTraceServiceResponse ({e}): {reply:?}"));
        let stored = backend.wait_for_trace(&baseline_id, 3).await;
        assert_eq!(sorted(stored), baseline, "baseline stored as sent");
        Self {
            backend,
            baseline_id,
            baseline,
            checks: 0,
        }
    }

    /// The server still takes new data, and the baseline is unchanged.
    async fn still_serves(&mut self, after: &str) {
        self.checks += 1;
        let (id, spans) = trace(self.checks, 2);
        let reply = self
            .backend
            .post("/v1/traces", JSON, None, json(&spans))
            .await;
        assert_eq!(
            reply.status, 200,
            "after {after}: a valid request is accepted: {reply:?}"
        );
        let stored = self.backend.wait_for_trace(&id, 2).await;
        assert_eq!(sorted(stored), spans, "after {after}: new data stored");
        let baseline = self.backend.trace(&self.baseline_id).await;
        assert_eq!(
            baseline.map(sorted).as_ref(),
            Some(&self.baseline),
            "after {after}: baseline intact"
        );
    }

    async fn post(&self, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Reply {
        self.backend
            .post("/v1/traces", content_type, encoding, body)
            .await
    }
}

/// Checks a 400 carries `google.rpc.Status` in the request's encoding.
fn assert_bad_request(reply: &Reply, content_type: &str, what: &str) {
    assert_eq!(reply.status, 400, "{what}: {reply:?}");
    assert_eq!(
        reply.content_type.as_deref(),
        Some(content_type),
        "{what}: {reply:?}"
    );
    let (code, message) = if content_type == JSON {
        let body = reply.json();
        (
            body["code"].as_i64(),
            body["message"].as_str().map(str::to_owned),
        )
    } else {
        let status = RpcStatus::decode(reply.body.as_slice())
            .unwrap_or_else(|e| panic!("{what}: body is not a google.rpc.Status ({e}): {reply:?}"));
        (Some(i64::from(status.code)), Some(status.message))
    };
    assert_eq!(code, Some(i64::from(INVALID_ARGUMENT)), "{what}: {reply:?}");
    assert!(
        message.is_some_and(|m| !m.is_empty()),
        "{what}: a message says why: {reply:?}"
    );
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    undecodable_bodies_are_400_with_an_rpc_status
);
async fn undecodable_bodies_are_400_with_an_rpc_status(store: Store) {
    let mut fx = Fixture::start(store).await;
    let (_, spans) = trace(1, 2);
    let valid = protobuf(&spans);

    let garbage = fx.post(PROTOBUF, None, vec![0xff; 64]).await;
    assert_bad_request(&garbage, PROTOBUF, "garbage protobuf");
    fx.still_serves("garbage protobuf").await;

    let truncated = fx
        .post(PROTOBUF, None, valid[..valid.len() / 2].to_vec())
        .await;
    assert_bad_request(&truncated, PROTOBUF, "truncated protobuf");
    fx.still_serves("truncated protobuf").await;

    let cut = fx
        .post(JSON, None, br#"{"resourceSpans":[{"scopeSpans":["#.to_vec())
        .await;
    assert_bad_request(&cut, JSON, "truncated JSON");
    fx.still_serves("truncated JSON").await;

    let mistyped = fx
        .post(JSON, None, br#"{"resourceSpans":"nope"}"#.to_vec())
        .await;
    assert_bad_request(&mistyped, JSON, "mistyped JSON");
    fx.still_serves("mistyped JSON").await;

    let not_json = fx.post(JSON, None, b"resourceSpans=1".to_vec()).await;
    assert_bad_request(&not_json, JSON, "not JSON");
    fx.still_serves("not JSON").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    bad_gzip_is_400_and_good_gzip_is_accepted
);
async fn bad_gzip_is_400_and_good_gzip_is_accepted(store: Store) {
    let mut fx = Fixture::start(store).await;
    let (id, spans) = trace(1, 2);
    let compressed = gzip(&protobuf(&spans));

    let plain_as_gzip = fx.post(PROTOBUF, Some("gzip"), protobuf(&spans)).await;
    assert_bad_request(&plain_as_gzip, PROTOBUF, "uncompressed body labelled gzip");
    fx.still_serves("bad gzip").await;

    let cut = compressed[..compressed.len() - 12].to_vec();
    let truncated = fx.post(PROTOBUF, Some("gzip"), cut).await;
    assert_bad_request(&truncated, PROTOBUF, "truncated gzip stream");
    fx.still_serves("truncated gzip").await;
    assert_eq!(
        fx.backend.trace(&id).await,
        None,
        "nothing of the bad bodies stored"
    );

    let good = fx.post(PROTOBUF, Some("gzip"), compressed).await;
    assert_eq!(good.status, 200, "gzip protobuf: {good:?}");
    assert_eq!(sorted(fx.backend.wait_for_trace(&id, 2).await), spans);

    let (id, spans) = trace(2, 2);
    let good = fx.post(JSON, Some("gzip"), gzip(&json(&spans))).await;
    assert_eq!(good.status, 200, "gzip JSON: {good:?}");
    assert_eq!(good.content_type.as_deref(), Some(JSON));
    assert_eq!(sorted(fx.backend.wait_for_trace(&id, 2).await), spans);
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    wrong_content_type_is_415_and_wrong_method_is_405
);
async fn wrong_content_type_is_415_and_wrong_method_is_405(store: Store) {
    let mut fx = Fixture::start(store).await;
    let (id, spans) = trace(1, 1);
    for content_type in ["text/plain", "application/xml", "application/grpc"] {
        let reply = fx.post(content_type, None, protobuf(&spans)).await;
        assert_eq!(reply.status, 415, "{content_type}: {reply:?}");
        fx.still_serves(content_type).await;
    }
    assert_eq!(
        fx.backend.trace(&id).await,
        None,
        "nothing stored from a 415"
    );

    let url = format!("{}/v1/traces", fx.backend.otlp_url());
    let get = reqwest::get(&url).await.expect("GET reaches the backend");
    assert_eq!(get.status().as_u16(), 405, "GET /v1/traces");
    fx.still_serves("GET").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    bodies_past_the_limit_are_413_even_when_compressed
);
async fn bodies_past_the_limit_are_413_even_when_compressed(store: Store) {
    let mut fx = Fixture::start(store).await;
    let big = |tag: u8, size: usize| {
        let (id, mut spans) = trace(tag, 1);
        spans[0]
            .attributes
            .push(KeyValue::new("payload", AnyValue::String("a".repeat(size))));
        (id, spans)
    };

    let (id, spans) = big(1, 3 * LIMIT);
    let reply = fx.post(PROTOBUF, None, protobuf(&spans)).await;
    assert_eq!(
        reply.status, 413,
        "uncompressed body of 3x the limit: {reply:?}"
    );
    fx.still_serves("oversized body").await;
    assert_eq!(fx.backend.trace(&id).await, None);

    // Small on the wire, large once inflated: the limit applies after gunzip.
    let (id, spans) = big(2, 4 * LIMIT);
    let compressed = gzip(&protobuf(&spans));
    assert!(
        compressed.len() < LIMIT / 4,
        "the test body compresses well"
    );
    let reply = fx.post(PROTOBUF, Some("gzip"), compressed).await;
    assert_eq!(
        reply.status, 413,
        "valid request inflating past the limit: {reply:?}"
    );
    fx.still_serves("inflating request").await;
    assert_eq!(fx.backend.trace(&id).await, None);

    let bomb = gzip(&vec![0u8; 16 * 1024 * 1024]);
    assert!(
        bomb.len() < LIMIT,
        "the bomb is small on the wire ({} bytes)",
        bomb.len()
    );
    let reply = fx.post(PROTOBUF, Some("gzip"), bomb).await;
    assert_eq!(reply.status, 413, "gzip bomb of 16 MiB: {reply:?}");
    fx.still_serves("gzip bomb").await;

    // Just under the limit is fine: the limit is not off by a lot.
    let (id, spans) = big(3, LIMIT / 2);
    let reply = fx
        .post(PROTOBUF, Some("gzip"), gzip(&protobuf(&spans)))
        .await;
    assert_eq!(reply.status, 200, "request of half the limit: {reply:?}");
    assert_eq!(fx.backend.wait_for_trace(&id, 1).await, spans);
}

/// Spans with a bad id are rejected one by one; the rest of the request is
/// stored and the reply counts the rejected spans.
async fn partial_success(fx: &mut Fixture, content_type: &str) {
    let (id, spans) = trace(if content_type == JSON { 1 } else { 2 }, 2);
    let mut request: ExportTraceServiceRequest = otlp_request(&spans);
    let valid = request.resource_spans[0].scope_spans[0].spans.clone();
    let mut short_span_id = valid[1].clone();
    short_span_id.span_id.truncate(7);
    let mut short_trace_id = valid[1].clone();
    short_trace_id.trace_id.truncate(15);
    short_trace_id.span_id = vec![0x77; 8];
    let mut zero_trace_id = valid[1].clone();
    zero_trace_id.trace_id = vec![0; 16];
    zero_trace_id.span_id = vec![0x78; 8];
    request.resource_spans[0].scope_spans[0].spans = vec![
        valid[0].clone(),
        short_span_id,
        short_trace_id,
        zero_trace_id,
    ];
    let body = if content_type == JSON {
        serde_json::to_vec(&request).expect("JSON request")
    } else {
        request.encode_to_vec()
    };

    let reply = fx.post(content_type, None, body).await;
    assert_eq!(reply.status, 200, "{content_type}: {reply:?}");
    assert_eq!(
        reply.content_type.as_deref(),
        Some(content_type),
        "{reply:?}"
    );
    let (rejected, message) = if content_type == JSON {
        let body = reply.json();
        let partial = &body["partialSuccess"];
        (
            support::as_u64(&partial["rejectedSpans"]),
            partial["errorMessage"].as_str().map(str::to_owned),
        )
    } else {
        let response = ExportTraceServiceResponse::decode(reply.body.as_slice())
            .unwrap_or_else(|e| panic!("not an ExportTraceServiceResponse ({e}): {reply:?}"));
        let partial = response.partial_success.unwrap_or_default();
        (
            u64::try_from(partial.rejected_spans).ok(),
            Some(partial.error_message),
        )
    };
    assert_eq!(
        rejected,
        Some(3),
        "{content_type}: rejected spans counted: {reply:?}"
    );
    assert!(
        message.is_some_and(|m| !m.is_empty()),
        "{content_type}: reason given: {reply:?}"
    );

    let stored = fx.backend.wait_for_trace(&id, 1).await;
    assert_eq!(
        stored,
        vec![spans[0].clone()],
        "{content_type}: the valid span is stored"
    );
    fx.still_serves("partial success").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    invalid_ids_are_a_partial_success
);
async fn invalid_ids_are_a_partial_success(store: Store) {
    let mut fx = Fixture::start(store).await;
    partial_success(&mut fx, PROTOBUF).await;
    partial_success(&mut fx, JSON).await;
}

/// Sends raw bytes and reads until the server closes; `None` when it closed
/// without answering.
async fn raw(addr: SocketAddr, request: &[u8], half_close: bool) -> Option<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send request");
    if half_close {
        stream.shutdown().await.expect("half close");
    }
    let mut reply = Vec::new();
    tokio::time::timeout(support::WAIT, stream.read_to_end(&mut reply))
        .await
        .expect("server answers or closes in time")
        .ok()?;
    let head = String::from_utf8_lossy(&reply);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, reply))
}

fn chunked(addr: SocketAddr, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {PROTOBUF}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(256) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    chunked_bodies_without_length_are_accepted_and_limited
);
async fn chunked_bodies_without_length_are_accepted_and_limited(store: Store) {
    let mut fx = Fixture::start(store).await;
    let addr = fx.backend.otlp;
    let (id, spans) = trace(1, 3);
    let body = protobuf(&spans);
    assert!(body.len() > 512, "the body spans several chunks");
    let reply = raw(addr, &chunked(addr, &body), false).await;
    assert_eq!(reply.as_ref().map(|r| r.0), Some(200), "chunked protobuf");
    assert_eq!(sorted(fx.backend.wait_for_trace(&id, 3).await), spans);
    fx.still_serves("chunked").await;

    let (id, mut spans) = trace(2, 1);
    spans[0].attributes.push(KeyValue::new(
        "payload",
        AnyValue::String("b".repeat(2 * LIMIT)),
    ));
    let reply = raw(addr, &chunked(addr, &protobuf(&spans)), false).await;
    assert_eq!(
        reply.as_ref().map(|r| r.0),
        Some(413),
        "chunked past the limit"
    );
    fx.still_serves("chunked past the limit").await;
    assert_eq!(fx.backend.trace(&id).await, None);
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_body_cut_short_on_the_wire_is_not_stored
);
async fn a_body_cut_short_on_the_wire_is_not_stored(store: Store) {
    let mut fx = Fixture::start(store).await;
    let addr = fx.backend.otlp;
    let (id, spans) = trace(1, 2);
    let body = protobuf(&spans);
    let mut request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {PROTOBUF}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body[..body.len() / 2]);
    // The client gives up half way: the server may answer 400 or just close.
    let reply = raw(addr, &request, true).await;
    if let Some((status, reply)) = reply {
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&reply));
    }
    fx.still_serves("a cut body").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fx.backend.trace(&id).await,
        None,
        "half a request stores nothing"
    );
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_flood_is_stored_in_full_or_refused_with_retry_after
);
/// A flood against a one-slot write queue: every request is either stored
/// in full (200) or refused with Retry-After (429/503) and not stored at all.
/// Whether the queue overflows depends on timing; the assertions hold for
/// each reply either way.
async fn a_flood_is_stored_in_full_or_refused_with_retry_after(store: Store) {
    let mut fx = Fixture::start_with(store, |c| c.write_queue_capacity = 1).await;
    let requests: Vec<(String, Vec<model::Span>)> =
        (0..32).map(|i| trace(200 + i as u8, 40)).collect();
    let replies = post_all(&fx.backend, &requests).await;
    let mut refused = 0;
    for ((id, spans), reply) in requests.iter().zip(&replies) {
        match reply.status {
            200 => {
                let stored = fx.backend.wait_for_trace(id, spans.len()).await;
                assert_eq!(
                    sorted(stored),
                    *spans,
                    "an accepted request is stored in full"
                );
            }
            429 | 503 => {
                refused += 1;
                let retry_after = reply.retry_after.as_deref().unwrap_or_default();
                assert!(
                    retry_after.trim().parse::<u64>().is_ok(),
                    "{} needs Retry-After in seconds: {reply:?}",
                    reply.status
                );
                assert_eq!(
                    fx.backend.trace(id).await,
                    None,
                    "a refused request stores nothing"
                );
            }
            other => panic!("flood reply {other}: {reply:?}"),
        }
    }
    eprintln!("flood: {refused} of {} requests refused", requests.len());
    fx.still_serves("a flood").await;
}

/// Sends all requests at once, each on its own task.
async fn post_all(backend: &Backend, requests: &[(String, Vec<model::Span>)]) -> Vec<Reply> {
    let url = format!("{}/v1/traces", backend.otlp_url());
    let client = reqwest::Client::new();
    let tasks: Vec<_> = requests
        .iter()
        .map(|(_, spans)| {
            let request = client
                .post(&url)
                .header("content-type", PROTOBUF)
                .body(protobuf(spans));
            tokio::spawn(async move {
                let response = request.send().await.expect("flood request");
                Reply::read(response).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("flood task"));
    }
    replies
}
