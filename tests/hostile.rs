//! Hostile but well-framed OTLP requests against a real backend: each kind
//! gets the outcome the README's "What happens to odd input" table gives it,
//! never a panic, and the backend keeps serving afterwards. Every test runs
//! on both stores (`::sqlite`, `::clickhouse`).
//!
//! Deeply nested values are written byte by byte (protobuf) or as text
//! (JSON): building them as nested structs would recurse in the test itself.

use crate::support::fixtures::{self, otlp_request};
use crate::support::{self, Backend, Reply, Store, for_each_store};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use otelite_model::{self as model, AnyValue, KeyValue, SpanId, TraceId};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const SERVICE: &str = "hostile";

// ---- protobuf by hand: a field is its key, its length, its bytes --------

/// A length-delimited field (wire type 2).
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    encode_key(number, WireType::LengthDelimited, &mut out);
    encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A fixed64 field (wire type 1), as OTLP's timestamps are.
fn fixed64(number: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(number, WireType::SixtyFourBit, &mut out);
    out.extend_from_slice(&value.to_le_bytes());
    out
}

/// `KeyValue { key, value }` with an already encoded `AnyValue`.
fn key_value(key: &str, any_value: &[u8]) -> Vec<u8> {
    [field(1, key.as_bytes()), field(2, any_value)].concat()
}

/// An `AnyValue` holding a kvlist (`kvlist_value` = 6) or an array
/// (`array_value` = 5) around `inner`, `depth` times over a string.
fn nested_protobuf(depth: usize, kvlist: bool) -> Vec<u8> {
    let mut value = field(1, b"leaf");
    for _ in 0..depth {
        value = if kvlist {
            field(6, &field(1, &key_value("k", &value)))
        } else {
            field(5, &field(1, &value))
        };
    }
    value
}

/// A request with one resource (our service) and one span whose fields are
/// `span` (already encoded).
fn request_protobuf(span: &[u8]) -> Vec<u8> {
    request_spans(&field(2, span))
}

/// A request with one resource (our service) and one scope holding
/// `spans`: `Span` messages each already wrapped as field 2.
fn request_spans(spans: &[u8]) -> Vec<u8> {
    let resource = field(1, &key_value("service.name", &field(1, SERVICE.as_bytes())));
    field(1, &[field(1, &resource), field(2, spans)].concat())
}

/// The encoded fields of a span with these ids and name, plus `extra`.
fn span_protobuf(trace_id: &[u8], span_id: &[u8], name: &[u8], extra: &[u8]) -> Vec<u8> {
    [
        field(1, trace_id),
        field(2, span_id),
        field(5, name),
        fixed64(7, 1_700_000_000_000_000_000),
        fixed64(8, 1_700_000_000_000_001_000),
        extra.to_vec(),
    ]
    .concat()
}

// ---- JSON by hand ---------------------------------------------------------

fn nested_json(depth: usize, kvlist: bool) -> String {
    let (open, close) = if kvlist {
        (r#"{"kvlistValue":{"values":[{"key":"k","value":"#, "}]}}")
    } else {
        (r#"{"arrayValue":{"values":["#, "]}}")
    };
    let mut text = String::with_capacity(depth * (open.len() + close.len()) + 32);
    for _ in 0..depth {
        text.push_str(open);
    }
    text.push_str(r#"{"stringValue":"leaf"}"#);
    for _ in 0..depth {
        text.push_str(close);
    }
    text
}

fn request_json(trace_id: &str, span_id: &str, attribute_value: &str) -> Vec<u8> {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{SERVICE}"}}}}]}},
        "scopeSpans":[{{"spans":[{{"traceId":"{trace_id}","spanId":"{span_id}","name":"nested",
        "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000001000",
        "attributes":[{{"key":"deep","value":{attribute_value}}}]}}]}}]}}]}}"#
    )
    .into_bytes()
}

// ---- replies ----------------------------------------------------------------

/// The `google.rpc.Status` message of a 400, in either encoding.
fn bad_request_message(reply: &Reply, content_type: &str) -> String {
    assert_eq!(reply.status, 400, "{reply:?}");
    if content_type == JSON {
        reply.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        #[derive(Clone, PartialEq, prost::Message)]
        struct RpcStatus {
            #[prost(int32, tag = "1")]
            code: i32,
            #[prost(string, tag = "2")]
            message: String,
        }
        RpcStatus::decode(reply.body.as_slice())
            .unwrap_or_else(|e| panic!("not a google.rpc.Status ({e}): {reply:?}"))
            .message
    }
}

/// `(rejected_spans, error_message)` of a 200 reply.
fn partial_success(reply: &Reply, content_type: &str) -> (i64, String) {
    assert_eq!(reply.status, 200, "{reply:?}");
    if content_type == JSON {
        let partial = reply.json()["partialSuccess"].clone();
        (
            support::as_u64(&partial["rejectedSpans"]).map_or(0, |n| n as i64),
            partial["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    } else {
        let partial = ExportTraceServiceResponse::decode(reply.body.as_slice())
            .unwrap_or_else(|e| panic!("not an ExportTraceServiceResponse ({e}): {reply:?}"))
            .partial_success
            .unwrap_or_default();
        (partial.rejected_spans, partial.error_message)
    }
}

/// The backend still stores and returns a plain span.
async fn still_serves(backend: &Backend, tag: u8) {
    let trace_id = support::unique_trace_id(tag);
    let span = span_protobuf(&trace_id.0, &[1; 8], b"after", b"");
    // As a client would, retry a 503: the writer frees the queue budget of
    // a huge batch only after it has answered (and dropped) that batch.
    let reply = support::eventually(
        || backend.post("/v1/traces", PROTOBUF, None, request_protobuf(&span)),
        |reply| reply.status != 503,
    )
    .await;
    assert_eq!(reply.status, 200, "a plain span is accepted: {reply:?}");
    let stored = backend.wait_for_trace(&trace_id.to_hex(), 1).await;
    assert_eq!(stored.len(), 1, "and stored");
}

fn depth_of(value: &AnyValue) -> usize {
    match value {
        AnyValue::Array(values) => 1 + values.first().map_or(0, depth_of),
        AnyValue::KvList(values) => 1 + values.first().map_or(0, |kv| depth_of(&kv.value)),
        _ => 0,
    }
}

// ---- deep nesting -------------------------------------------------------------

/// Sends a span whose one attribute is nested `depth` times.
async fn post_nested(
    backend: &Backend,
    format: &str,
    depth: usize,
    kvlist: bool,
) -> (Reply, TraceId) {
    let trace_id = support::unique_trace_id(depth as u8);
    let body = if format == JSON {
        request_json(
            &trace_id.to_hex(),
            "0102030405060708",
            &nested_json(depth, kvlist),
        )
    } else {
        let attribute = field(9, &key_value("deep", &nested_protobuf(depth, kvlist)));
        request_protobuf(&span_protobuf(
            &trace_id.0,
            &[1, 2, 3, 4, 5, 6, 7, 8],
            b"nested",
            &attribute,
        ))
    };
    (
        backend.post("/v1/traces", format, None, body).await,
        trace_id,
    )
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    deep_nesting_is_400_past_the_decoder_limit_and_stored_below_it
);
/// 10 000 levels of kvlist or array are refused whole with 400 by the
/// decoders' recursion limits (prost: 100 messages, serde_json: 128
/// levels), so nothing after them — conversion, analysis, encoding, drop —
/// ever sees a value deeper than that. The deepest value they accept is
/// stored and reads back with every level.
async fn deep_nesting_is_400_past_the_decoder_limit_and_stored_below_it(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    for format in [PROTOBUF, JSON] {
        for kvlist in [true, false] {
            let what = format!("{format}, kvlist {kvlist}");
            let (reply, _) = post_nested(&backend, format, 10_000, kvlist).await;
            let message = bad_request_message(&reply, format);
            assert!(
                message.contains("recursion"),
                "{what}: the message names the limit: {message}"
            );
            // The deepest accepted: one level more is refused.
            let mut depth = 60;
            let (reply, trace_id) = loop {
                let (reply, trace_id) = post_nested(&backend, format, depth, kvlist).await;
                if reply.status == 200 {
                    break (reply, trace_id);
                }
                bad_request_message(&reply, format);
                depth -= 1;
                assert!(depth > 10, "{what}: even 10 levels refused: {reply:?}");
            };
            assert_eq!(partial_success(&reply, format).0, 0, "{what}: {reply:?}");
            let stored = backend.wait_for_trace(&trace_id.to_hex(), 1).await;
            let value = stored
                .first()
                .and_then(|span| span.attributes.first())
                .map(|kv| kv.value.clone())
                .unwrap_or_else(|| panic!("{what}: depth {depth} stored: {stored:?}"));
            assert_eq!(depth_of(&value), depth, "{what}: every level read back");
        }
    }
    still_serves(&backend, 1).await;
}

// ---- size ------------------------------------------------------------------

fn model_span(trace_id: TraceId, span_id: u64, attributes: Vec<KeyValue>) -> model::Span {
    fixtures::span(trace_id, SpanId(span_id.to_be_bytes()))
        .service(SERVICE)
        .name("big")
        .attributes(attributes)
        .build()
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_10_mb_attribute_value_is_stored_whole
);
/// A 10 MB attribute value in a request under the 20 MiB body limit is
/// stored whole, in both encodings: the body limit is the only bound on
/// values.
async fn a_10_mb_attribute_value_is_stored_whole(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    let big: String = "0123456789".repeat(1_000_000);
    for (tag, format) in [(1u8, PROTOBUF), (2, JSON)] {
        let trace_id = support::unique_trace_id(tag);
        let span = model_span(
            trace_id,
            1,
            vec![KeyValue::new("big", AnyValue::String(big.clone()))],
        );
        let request = otlp_request(std::slice::from_ref(&span));
        let body = if format == JSON {
            serde_json::to_vec(&request).expect("JSON request")
        } else {
            request.encode_to_vec()
        };
        let reply = backend.post("/v1/traces", format, None, body).await;
        assert_eq!(partial_success(&reply, format).0, 0, "{format}: {reply:?}");
        let stored = backend.wait_for_trace(&trace_id.to_hex(), 1).await;
        assert_eq!(stored, vec![span], "{format}: stored and read back whole");
    }
    still_serves(&backend, 3).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    as_many_tiny_spans_as_fit_under_the_body_limit_are_all_stored
);
/// As many minimal spans as fit under the 20 MiB limit (ids only, about
/// 30 bytes each: some 700 000) are all stored by one request.
async fn as_many_tiny_spans_as_fit_under_the_body_limit_are_all_stored(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    let limit = otelite_backend::DEFAULT_MAX_BODY_BYTES;
    let base = support::unique_trace_id(7);
    let mut spans = Vec::new();
    let mut count: u64 = 0;
    loop {
        // 1 000 spans per trace, so that traces stay ordinary.
        let mut trace_id = base;
        trace_id.0[8..].copy_from_slice(&(count / 1_000 + 1).to_be_bytes());
        let span = field(
            2,
            &[field(1, &trace_id.0), field(2, &(count + 1).to_be_bytes())].concat(),
        );
        // Room for the enclosing fields' keys and lengths (under 64 bytes).
        if spans.len() + span.len() + 64 > limit {
            break;
        }
        spans.extend_from_slice(&span);
        count += 1;
    }
    let body = request_spans(&spans);
    assert!(body.len() <= limit, "{} bytes", body.len());
    drop(spans);

    let reply = backend.post("/v1/traces", PROTOBUF, None, body).await;
    assert_eq!(
        partial_success(&reply, PROTOBUF),
        (0, String::new()),
        "{reply:?}"
    );
    assert!(count > 600_000, "{count} spans");
    let rates = backend
        .wait_for_rates(SERVICE, |r| r.n("store") == Some(count))
        .await;
    assert_eq!(rates.n("store"), Some(count), "every span stored");
    assert_eq!(rates.n("process"), Some(count), "and processed");
    still_serves(&backend, 4).await;
}

// ---- bad strings and ids -----------------------------------------------------

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    invalid_utf8_is_400_and_nothing_of_the_request_is_stored
);
/// A string that is not UTF-8 makes the protobuf message invalid as a whole
/// (proto3 `string` must be UTF-8): 400, nothing of it stored. JSON text
/// that is not UTF-8, or escapes a lone surrogate, is refused the same way.
async fn invalid_utf8_is_400_and_nothing_of_the_request_is_stored(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    let trace_id = support::unique_trace_id(9);
    let good = field(2, &span_protobuf(&trace_id.0, &[1; 8], b"good", b""));
    let bad = field(
        2,
        &span_protobuf(&trace_id.0, &[2; 8], b"bad \xff\xfe name", b""),
    );
    let body = request_spans(&[good, bad].concat());
    let reply = backend.post("/v1/traces", PROTOBUF, None, body).await;
    let message = bad_request_message(&reply, PROTOBUF);
    assert!(message.contains("UTF-8"), "{message}");

    let mut json = request_json(
        &trace_id.to_hex(),
        "0303030303030303",
        r#"{"stringValue":"X"}"#,
    );
    let at = json.iter().position(|b| *b == b'X').expect("placeholder");
    json[at] = 0xff;
    let reply = backend.post("/v1/traces", JSON, None, json).await;
    bad_request_message(&reply, JSON);
    let json = request_json(
        &trace_id.to_hex(),
        "0404040404040404",
        r#"{"stringValue":"\ud800"}"#,
    );
    let reply = backend.post("/v1/traces", JSON, None, json).await;
    bad_request_message(&reply, JSON);

    still_serves(&backend, 10).await;
    assert_eq!(
        backend.trace(&trace_id.to_hex()).await,
        None,
        "nothing stored"
    );
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    bad_ids_reject_their_span_only
);
/// Ids are checked span by span: a trace id that is not 16 bytes or is all
/// zero, a span id that is not 8 bytes or is all zero, a parent id that is
/// neither empty nor 8 bytes, a link with a bad id: that span is rejected
/// and counted in `partial_success`, the others are stored. An all-zero
/// parent id means "no parent". In JSON, ids must be hex: text that is not
/// makes the whole request a 400.
async fn bad_ids_reject_their_span_only(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    let trace_id = support::unique_trace_id(11);
    let t = &trace_id.0[..];
    let link = |trace: &[u8], span: &[u8]| field(13, &[field(1, trace), field(2, span)].concat());
    let spans: Vec<(&str, Vec<u8>)> = vec![
        ("ok", span_protobuf(t, &[1; 8], b"ok", b"")),
        (
            "zero parent",
            span_protobuf(t, &[2; 8], b"zero parent", &field(4, &[0; 8])),
        ),
        ("long trace id", span_protobuf(&[7; 17], &[3; 8], b"x", b"")),
        ("empty trace id", span_protobuf(b"", &[4; 8], b"x", b"")),
        ("zero span id", span_protobuf(t, &[0; 8], b"x", b"")),
        ("long span id", span_protobuf(t, &[5; 9], b"x", b"")),
        (
            "short parent",
            span_protobuf(t, &[6; 8], b"x", &field(4, &[1; 7])),
        ),
        (
            "bad link",
            span_protobuf(t, &[7; 8], b"x", &link(&[1; 3], &[1; 8])),
        ),
    ];
    let body: Vec<u8> = spans.iter().flat_map(|(_, s)| field(2, s)).collect();
    let reply = backend
        .post("/v1/traces", PROTOBUF, None, request_spans(&body))
        .await;
    let (rejected, message) = partial_success(&reply, PROTOBUF);
    assert_eq!(rejected, 6, "{message}");
    assert!(message.contains("span 2: trace_id"), "{message}");
    let stored = backend.wait_for_trace(&trace_id.to_hex(), 2).await;
    let mut names: Vec<&str> = stored.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["ok", "zero parent"]);
    assert!(
        stored.iter().all(|s| s.parent_span_id.is_none()),
        "{stored:?}"
    );

    // JSON: hex of the wrong length is a bad id like above; non-hex text
    // does not decode at all.
    let short = request_json(
        &trace_id.to_hex()[2..],
        "0909090909090909",
        r#"{"intValue":"1"}"#,
    );
    let reply = backend.post("/v1/traces", JSON, None, short).await;
    assert_eq!(partial_success(&reply, JSON).0, 1, "{reply:?}");
    let not_hex = request_json("zz", "0909090909090909", r#"{"intValue":"1"}"#);
    let reply = backend.post("/v1/traces", JSON, None, not_hex).await;
    bad_request_message(&reply, JSON);
    still_serves(&backend, 12).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    odd_timestamps_are_stored_as_sent
);
/// Timestamps are stored as sent, whatever they are: 0, the far future
/// (`u64::MAX`), an end before the start (whose duration counts as 0).
async fn odd_timestamps_are_stored_as_sent(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    let trace_id = support::unique_trace_id(13);
    let cases: [(u64, u64); 4] = [
        (0, 0),
        (1, u64::MAX),
        (u64::MAX, u64::MAX),
        (1_700_000_000_000_000_000, 1_600_000_000_000_000_000),
    ];
    let spans: Vec<model::Span> = cases
        .iter()
        .zip(1..)
        .map(|(&(start, end), id)| {
            let mut span = model_span(trace_id, id, Vec::new());
            span.start_time_unix_nano = start;
            span.end_time_unix_nano = end;
            span
        })
        .collect();
    for (format, body) in [
        (PROTOBUF, otlp_request(&spans[..2]).encode_to_vec()),
        (
            JSON,
            serde_json::to_vec(&otlp_request(&spans[2..])).expect("JSON"),
        ),
    ] {
        let reply = backend.post("/v1/traces", format, None, body).await;
        assert_eq!(partial_success(&reply, format).0, 0, "{format}: {reply:?}");
    }
    let mut stored = backend.wait_for_trace(&trace_id.to_hex(), 4).await;
    stored.sort_by_key(|s| s.span_id);
    assert_eq!(stored, spans, "stored as sent");
    // The trace is found by a search over all time, with a sane duration.
    let found = backend
        .search(&format!("service={SERVICE}&limit=100"))
        .await;
    let summary = found
        .iter()
        .find(|t| t["traceId"] == trace_id.to_hex())
        .unwrap_or_else(|| panic!("trace in the search results: {found:?}"));
    assert_eq!(support::as_u64(&summary["spanCount"]), Some(4), "{summary}");
    still_serves(&backend, 14).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_span_whose_parent_never_arrives_is_stored_as_an_orphan
);
/// A span whose parent never arrives is stored, and its trace's summary
/// counts it as an orphan.
async fn a_span_whose_parent_never_arrives_is_stored_as_an_orphan(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    let trace_id = support::unique_trace_id(15);
    let mut orphan = model_span(trace_id, 2, Vec::new());
    orphan.parent_span_id = Some(SpanId([0xee; 8]));
    let reply = backend
        .post(
            "/v1/traces",
            PROTOBUF,
            None,
            otlp_request(std::slice::from_ref(&orphan)).encode_to_vec(),
        )
        .await;
    assert_eq!(partial_success(&reply, PROTOBUF).0, 0, "{reply:?}");
    let stored = backend.wait_for_trace(&trace_id.to_hex(), 1).await;
    assert_eq!(stored, vec![orphan], "stored as sent, parent id kept");
    let found = backend.search(&format!("service={SERVICE}")).await;
    let summary = found
        .iter()
        .find(|t| t["traceId"] == trace_id.to_hex())
        .unwrap_or_else(|| panic!("trace in the search results: {found:?}"));
    assert_eq!(
        support::as_u64(&summary["orphanSpanCount"]),
        Some(1),
        "{summary}"
    );
    assert_eq!(support::as_u64(&summary["spanCount"]), Some(1), "{summary}");
}

// ---- the query side ------------------------------------------------------------

/// Malformed parameters on every query route: a 400 whose body names the
/// culprit, never a 5xx. Each case is `(path and query, text the body
/// must contain)`.
const MALFORMED: &[(&str, &str)] = &[
    ("/api/otelite/search?limit=abc", "limit"),
    ("/api/otelite/search?limit=0", "limit"),
    ("/api/otelite/search?limit=1000001", "limit"),
    ("/api/otelite/search?limit=99999999999999999999999", "limit"),
    ("/api/otelite/search?start=yesterday", "start"),
    ("/api/otelite/search?start=-1", "start"),
    ("/api/otelite/search?start=5&end=1", "start"),
    ("/api/otelite/search?kind=sideways", "kind"),
    ("/api/otelite/search?error=maybe", "error"),
    (
        "/api/otelite/search?minDurationNanos=-5",
        "minDurationNanos",
    ),
    (
        "/api/otelite/search?maxDurationNanos=1e9",
        "maxDurationNanos",
    ),
    ("/api/otelite/search?cursor=%00%ff", "cursor"),
    ("/api/otelite/search?attribute=novalue", "attribute"),
    ("/api/otelite/search?bogus=1", "bogus"),
    ("/api/otelite/traces/not-hex", "trace"),
    ("/api/otelite/traces/0102", "trace"),
    ("/api/otelite/dependencies?start=x", "start"),
    ("/api/otelite/dependencies?end=18446744073709551616", "end"),
    ("/api/rates?start=x", "start"),
    ("/api/rates?start=2&end=1", "start"),
    ("/api/rates?nope=1", "nope"),
    ("/api/traces?limit=x", "limit"),
    ("/api/traces?limit=-1", "limit"),
    ("/api/traces?start=x", "start"),
    ("/api/traces?end=1.5", "end"),
    ("/api/traces?start=9&end=1", "start"),
    ("/api/traces?minDuration=fast", "minDuration"),
    ("/api/traces?minDuration=2s&maxDuration=1s", "maxDuration"),
    ("/api/traces?tag=novalue", "tag"),
    ("/api/traces?tags=%7Bnot-json", "tags"),
    ("/api/traces?tag=span.kind:sideways", "span.kind"),
    ("/api/traces?traceID=zz", "traceID"),
    ("/api/traces/zz", "trace"),
    ("/api/dependencies?endTs=x", "endTs"),
    ("/api/dependencies?lookback=-3", "lookback"),
    (
        "/api/v3/traces?query.startTimeMin=yesterday",
        "query.startTimeMin",
    ),
    ("/api/v3/traces?query.searchDepth=x", "query.searchDepth"),
    (
        "/api/v3/traces?query.attributes=%7Bnot-json",
        "query.attributes",
    ),
    ("/api/v3/traces?query.durationMin=soon", "query.durationMin"),
    (
        "/api/v3/trace-summaries?query.startTimeMax=1",
        "query.startTimeMax",
    ),
    ("/api/v3/traces/zz", "trace"),
    ("/api/v3/operations", "service"),
];

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    malformed_query_parameters_are_400_with_a_message
);
async fn malformed_query_parameters_are_400_with_a_message(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    still_serves(&backend, 20).await;
    let http = reqwest::Client::new();
    let mut wrong = Vec::new();
    for &(path, culprit) in MALFORMED {
        let reply = http
            .get(backend.query_url(path))
            .send()
            .await
            .expect("GET reaches the query listener");
        let status = reply.status().as_u16();
        let text = reply.text().await.expect("read reply");
        if status != 400 || !text.contains(culprit) {
            wrong.push(format!("{path}: {status} {text}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "not a 400 naming the parameter:\n{}",
        wrong.join("\n")
    );
    still_serves(&backend, 21).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    huge_limits_are_capped_and_injection_finds_nothing
);
/// Enormous limits are capped (Jaeger's APIs) and SQL in filter values is
/// only ever a value: no match, no error, nothing changed.
async fn huge_limits_are_capped_and_injection_finds_nothing(store: Store) {
    let backend = Backend::start_on(store, "hostile", |_| {}).await;
    still_serves(&backend, 22).await;
    for path in [
        "/api/traces?service=hostile&limit=18446744073709551615",
        "/api/v3/traces?query.serviceName=hostile&query.searchDepth=18446744073709551615",
        "/api/v3/trace-summaries?query.serviceName=hostile&query.searchDepth=999999999",
    ] {
        let (status, body) = backend.get_json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let injections = [
        "/api/otelite/search?attribute=k')%20OR%201%3D1%20--%3Dv",
        "/api/otelite/search?attribute=x%3D'%3B%20DROP%20TABLE%20spans%3B%20--",
        "/api/otelite/search?service=hostile'%20OR%20'1'%3D'1",
        "/api/otelite/search?operation=%22%20OR%20%221%22%3D%221",
        "/api/otelite/search?attribute=*%3D*",
        "/api/otelite/search?attribute=a%20OR%20b%3DNEAR(x)",
        "/api/traces?service=x'%20OR%201%3D1--",
        "/api/traces?service=hostile&tag=k%22%20OR%201%3D1:v",
        "/api/v3/traces?query.serviceName=hostile&query.attributes=%7B%22'%20OR%201%3D1--%22%3A%22*%22%7D",
    ];
    for path in injections {
        let (status, body) = backend.get_json(path).await;
        // Jaeger's v3 answers an empty result with 404, as Jaeger does.
        let empty_v3 = path.starts_with("/api/v3/") && status == 404;
        assert!(status == 200 || empty_v3, "{path}: {status} {body}");
        let found = body
            .get("traces")
            .or_else(|| body.get("data"))
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        assert_eq!(found, 0, "{path}: nothing matches: {body}");
    }
    // Everything stored before is still there.
    let found = backend.search("service=hostile").await;
    assert_eq!(found.len(), 1, "{found:?}");
    still_serves(&backend, 23).await;
}
