//! Zipkin's v2 intake, `POST /api/v2/spans`: py_zipkin, Zipkin's Python
//! tracer, sends a trace through its own HTTP transport
//! (`tests/clients/python/zipkin_client.py`); the spans come back through
//! the query API with Zipkin's fields mapped as the OpenTelemetry
//! Collector's Zipkin receiver maps them, are found by search and counted
//! in the funnel, on both stores. A body that is not Zipkin JSON gets 400 with a message,
//! and the ingest token guards the route as it guards `/v1/traces`.

use crate::support::foreign::{self, Sent};
use crate::support::{Backend, Store, assert_rate, for_each_store};
use otelite_backend::net::BearerToken;
use otelite_model::{self as model, AnyValue, SpanKind, StatusCode};
use std::process::Command;

fn attr<'a>(span: &'a model::Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

fn string(text: &str) -> Option<AnyValue> {
    Some(AnyValue::String(text.to_owned()))
}

fn py_zipkin(backend: &Backend, run_id: &str) -> Sent {
    let url = backend.otlp_url();
    let port = url
        .rsplit(':')
        .next()
        .expect("a port in the URL")
        .to_owned();
    let mut command = Command::new(foreign::python());
    command
        .arg(foreign::clients_dir().join("python/zipkin_client.py"))
        .args(["127.0.0.1", &port, run_id])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    foreign::run(command)
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    py_zipkin_spans_are_stored_mapped_and_searchable
);
async fn py_zipkin_spans_are_stored_mapped_and_searchable(store: Store) {
    let backend = Backend::start_on(store, "zipkin", |_| {}).await;
    // The client blocks until its spans are answered: off the runtime.
    let sent = tokio::task::block_in_place(|| py_zipkin(&backend, "zipkin-run-1"));
    let stored = backend.wait_for_trace(&sent.trace_id, 2).await;
    assert_eq!(stored.len(), 2, "{stored:#?}");
    let span = |name: &str| {
        stored
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {stored:#?}"))
    };
    let (root, charge) = (span("POST /checkout"), span("charge"));

    for (span, name) in [(root, "POST /checkout"), (charge, "charge")] {
        assert_eq!(span.trace_id.to_hex(), sent.trace_id);
        assert_eq!(span.span_id.to_hex(), sent.spans[name]);
        assert_eq!(span.service_name(), "checkout");
        assert_eq!(attr(span, "net.host.ip").cloned(), string("10.0.0.1"));
        assert_eq!(attr(span, "net.host.port"), Some(&AnyValue::Int(8080)));
    }
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(attr(root, "http.method").cloned(), string("POST"));
    assert_eq!(attr(root, "run.id").cloned(), string("zipkin-run-1"));
    assert_eq!(root.status.code, StatusCode::Unset);
    assert_eq!(root.events.len(), 1);
    assert_eq!(root.events[0].name, "cart loaded");
    assert!(root.events[0].time_unix_nano >= root.start_time_unix_nano);
    // Microseconds, so a whole number of them in nanoseconds.
    assert_eq!(root.start_time_unix_nano % 1000, 0);

    assert_eq!(charge.parent_span_id, Some(root.span_id));
    assert_eq!(charge.kind, SpanKind::Client);
    assert_eq!(attr(charge, "peer.service").cloned(), string("payments"));
    assert_eq!(attr(charge, "net.peer.ip").cloned(), string("10.0.0.2"));
    assert_eq!(attr(charge, "net.peer.port"), Some(&AnyValue::Int(5432)));
    assert_eq!(charge.status.code, StatusCode::Error);
    assert_eq!(charge.status.message, "card declined");

    let found = backend.search("service=checkout&limit=10").await;
    assert!(
        found.iter().any(|t| t["traceId"] == sent.trace_id.as_str()),
        "search by service finds the Zipkin trace: {found:#?}"
    );
    let rates = backend
        .wait_for_rates("checkout", |r| r.n("store") == Some(2))
        .await;
    assert_rate(&rates, "process", 2, 2);
    assert_rate(&rates, "store", 2, 2);
}

#[tokio::test]
async fn a_body_that_is_not_zipkin_json_gets_400_with_a_message() {
    let backend = Backend::start().await;
    let reply = backend
        .post(
            "/api/v2/spans",
            "application/json",
            None,
            br#"{"traceId": "not a list"}"#.to_vec(),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        text.starts_with("request body is not a valid Zipkin v2 JSON span list: "),
        "{text}"
    );
    let reply = backend
        .post("/api/v2/spans", "application/json", None, b"[]".to_vec())
        .await;
    assert_eq!(
        reply.status, 202,
        "an empty list is accepted, as Zipkin does"
    );
}

#[tokio::test]
async fn the_ingest_token_guards_the_zipkin_route() {
    let backend = Backend::start_with(|config| {
        config.ingest_token = Some(BearerToken::new("zipkin-secret"));
    })
    .await;
    let reply = backend
        .post("/api/v2/spans", "application/json", None, b"[]".to_vec())
        .await;
    assert_eq!(reply.status, 401);
}
