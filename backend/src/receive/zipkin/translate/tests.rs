//! The mapping, field by field, on Zipkin JSON written as Zipkin documents
//! it; expected values are literals.

use super::*;
use serde_json::json;

fn spans(value: serde_json::Value) -> Vec<wire::Span> {
    serde_json::from_value(value).expect("valid Zipkin JSON")
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

#[test]
fn a_client_span_maps_as_the_collector_maps_it() {
    let request = to_otlp(spans(json!([{
        "traceId": "5af7183fb1d4cf5f",
        "parentId": "6b221d5bc9e6496c",
        "id": "352bff9a74ca9ad2",
        "kind": "CLIENT",
        "name": "get /api",
        "timestamp": 1556604172355737u64,
        "duration": 1431,
        "localEndpoint": {"serviceName": "backend", "ipv4": "192.168.99.1", "port": 3306},
        "remoteEndpoint": {"serviceName": "mysql", "ipv4": "172.19.0.2", "port": 3306},
        "annotations": [{"timestamp": 1556604172355800u64, "value": "wire send"}],
        "tags": {"http.method": "GET", "otel.library.name": "lib", "otel.library.version": "1.2"}
    }])))
    .expect("valid spans");
    assert_eq!(request.resource_spans.len(), 1);
    let resource = &request.resource_spans[0];
    let service = &resource.resource.as_ref().expect("a resource").attributes[0];
    assert_eq!(service.key, "service.name");
    assert_eq!(
        service.value.as_ref().and_then(|v| v.value.clone()),
        Some(text("backend"))
    );
    let scope = resource.scope_spans[0].scope.as_ref().expect("a scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("lib", "1.2")
    );
    let span = &resource.scope_spans[0].spans[0];
    assert_eq!(
        hex::encode(&span.trace_id),
        "00000000000000005af7183fb1d4cf5f"
    );
    assert_eq!(hex::encode(&span.span_id), "352bff9a74ca9ad2");
    assert_eq!(hex::encode(&span.parent_span_id), "6b221d5bc9e6496c");
    assert_eq!(span.name, "get /api");
    assert_eq!(span.kind, SpanKind::Client as i32);
    assert_eq!(span.start_time_unix_nano, 1_556_604_172_355_737_000);
    assert_eq!(span.end_time_unix_nano, 1_556_604_172_357_168_000);
    assert_eq!(attr(span, "http.method"), Some(&text("GET")));
    assert_eq!(attr(span, "otel.library.name"), None);
    assert_eq!(attr(span, "net.host.ip"), Some(&text("192.168.99.1")));
    assert_eq!(attr(span, "net.host.port"), Some(&Value::IntValue(3306)));
    assert_eq!(attr(span, "peer.service"), Some(&text("mysql")));
    assert_eq!(attr(span, "net.peer.ip"), Some(&text("172.19.0.2")));
    assert_eq!(attr(span, "net.peer.port"), Some(&Value::IntValue(3306)));
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "wire send");
    assert_eq!(span.events[0].time_unix_nano, 1_556_604_172_355_800_000);
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(0));
}

#[test]
fn kinds_statuses_and_the_trace_state_come_from_their_tags() {
    let request = to_otlp(spans(json!([
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312",
         "kind": "SERVER", "timestamp": 1, "tags": {"error": "true"}},
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "0000000000000002",
         "kind": "PRODUCER", "timestamp": 1,
         "tags": {"otel.status_code": "ERROR", "otel.status_description": "boom"}},
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "0000000000000003",
         "kind": "CONSUMER", "timestamp": 1, "tags": {"error": "timed out"}},
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "4",
         "timestamp": 1, "tags": {"span.kind": "internal", "w3c.tracestate": "k=v",
                                  "otel.status_code": "STATUS_CODE_OK"}},
    ])))
    .expect("valid spans");
    let spans = &request.resource_spans[0].scope_spans[0].spans;
    let status = |i: usize| spans[i].status.clone().expect("a status");
    assert_eq!(spans[0].kind, SpanKind::Server as i32);
    assert_eq!(status(0).code, StatusCode::Error as i32);
    assert_eq!(attr(&spans[0], "error"), None);
    assert_eq!(spans[1].kind, SpanKind::Producer as i32);
    assert_eq!((status(1).code, status(1).message.as_str()), (2, "boom"));
    assert_eq!(attr(&spans[1], "otel.status_code"), None);
    assert_eq!(spans[2].kind, SpanKind::Consumer as i32);
    assert_eq!(
        (status(2).code, status(2).message.as_str()),
        (2, "timed out")
    );
    assert_eq!(attr(&spans[2], "error"), Some(&text("timed out")));
    assert_eq!(spans[3].kind, SpanKind::Internal as i32);
    assert_eq!(hex::encode(&spans[3].span_id), "0000000000000004");
    assert_eq!(spans[3].trace_state, "k=v");
    assert_eq!(status(3).code, StatusCode::Ok as i32);
    assert!(spans[3].attributes.is_empty());
    // No `localEndpoint`: a resource without `service.name`.
    let resource = request.resource_spans[0]
        .resource
        .as_ref()
        .expect("a resource");
    assert!(resource.attributes.is_empty());
}

#[test]
fn a_shared_server_span_gets_its_own_id_under_the_client_span() {
    let request = to_otlp(spans(json!([
        {"traceId": "86154a4ba6e91385", "parentId": "00000000000000aa", "id": "4d1e00c0db9010db",
         "kind": "SERVER", "shared": true, "timestamp": 10, "duration": 5,
         "localEndpoint": {"serviceName": "api"}},
        {"traceId": "86154a4ba6e91385", "parentId": "4d1e00c0db9010db", "id": "1111111111111111",
         "timestamp": 11, "duration": 1, "localEndpoint": {"serviceName": "api"}},
        {"traceId": "86154a4ba6e91385", "parentId": "4d1e00c0db9010db", "id": "2222222222222222",
         "kind": "CLIENT", "timestamp": 11, "localEndpoint": {"serviceName": "web"}},
    ])))
    .expect("valid spans");
    let api = &request.resource_spans[0].scope_spans[0].spans;
    let server = &api[0];
    assert_eq!(hex::encode(&server.parent_span_id), "4d1e00c0db9010db");
    assert_ne!(hex::encode(&server.span_id), "4d1e00c0db9010db");
    assert_ne!(hex::encode(&server.span_id), "0000000000000000");
    // The server's child in the same service follows it …
    assert_eq!(api[1].parent_span_id, server.span_id);
    // … a span of another service keeps the parent it named.
    let web = &request.resource_spans[1].scope_spans[0].spans[0];
    assert_eq!(hex::encode(&web.parent_span_id), "4d1e00c0db9010db");
    // The same span sent again gets the same id.
    let again = to_otlp(spans(json!([
        {"traceId": "86154a4ba6e91385", "parentId": "00000000000000aa", "id": "4d1e00c0db9010db",
         "kind": "SERVER", "shared": true, "timestamp": 10, "localEndpoint": {"serviceName": "api"}},
        // A shared root (py_zipkin's every root server span) keeps its id.
        {"traceId": "86154a4ba6e91385", "id": "00000000000000bb", "kind": "SERVER",
         "shared": true, "timestamp": 10, "localEndpoint": {"serviceName": "api"}}
    ])))
    .expect("valid spans");
    let again = &again.resource_spans[0].scope_spans[0].spans;
    assert_eq!(again[0].span_id, server.span_id);
    assert_eq!(hex::encode(&again[1].span_id), "00000000000000bb");
    assert!(again[1].parent_span_id.is_empty());
}

#[test]
fn a_span_without_timestamp_starts_at_zero_and_says_so() {
    let request = to_otlp(spans(json!([
        {"traceId": "1", "id": "2", "duration": 7}
    ])))
    .expect("valid spans");
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        (span.start_time_unix_nano, span.end_time_unix_nano),
        (0, 7000)
    );
    assert_eq!(
        attr(span, "otel.zipkin.absentField.startTime"),
        Some(&Value::BoolValue(true))
    );
}

#[test]
fn ids_that_are_not_hex_or_too_long_refuse_the_request() {
    for bad in [
        json!([{"traceId": "xyz", "id": "1"}]),
        json!([{"traceId": "1", "id": "12345678901234567"}]),
        json!([{"traceId": "123456789012345678901234567890123", "id": "1"}]),
        json!([{"traceId": "1", "id": "1", "parentId": "zz"}]),
        json!([{"traceId": "", "id": "1"}]),
    ] {
        assert!(to_otlp(spans(bad.clone())).is_err(), "{bad}");
    }
}
