//! The official OpenTelemetry clients, unchanged, send to otelite: Rust's
//! `opentelemetry-otlp`, Python's and Node's OTLP/HTTP exporters, each in
//! protobuf and JSON. Every client sends the same scenario (see
//! `tests/clients/python/client.py`); the test reads it back through the
//! query API and checks names, parentage, typed attributes, events and status.
//!
//! The Python and Node dependencies come from `.ci/run`; a test fails, never
//! skips, when they are missing. Every client sends to both stores
//! (`::sqlite`, `::clickhouse`).

use crate::support::foreign::{self, Sent};
use crate::support::{self, Backend, Store, for_each_store};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use otelite_model::{self as model, AnyValue, SpanKind as Kind, StatusCode};
use std::collections::BTreeMap;
use std::process::Command;

fn attr<'a>(attributes: &'a [model::KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

fn string(text: &str) -> AnyValue {
    AnyValue::String(text.to_owned())
}

/// Reads the scenario back and checks it span by span.
pub(crate) async fn check(
    backend: &Backend,
    sent: &Sent,
    service: &str,
    scope: &str,
    run_id: &str,
) {
    let stored = backend.wait_for_trace(&sent.trace_id, 4).await;
    let by_name: BTreeMap<&str, &model::Span> =
        stored.iter().map(|s| (s.name.as_str(), s)).collect();
    assert_eq!(
        by_name.keys().copied().collect::<Vec<_>>(),
        ["charge", "checkout", "db.select", "load-cart"],
        "{service}: the four spans of the scenario, once each: {stored:#?}"
    );
    assert_eq!(stored.len(), 4, "{service}: {stored:#?}");
    let id = |name: &str| sent.spans[name].clone();
    for (name, parent) in [
        ("checkout", None),
        ("load-cart", Some("checkout")),
        ("db.select", Some("load-cart")),
        ("charge", Some("checkout")),
    ] {
        let span = by_name[name];
        assert_eq!(span.trace_id.to_hex(), sent.trace_id, "{service} {name}");
        assert_eq!(span.span_id.to_hex(), id(name), "{service} {name}");
        assert_eq!(
            span.parent_span_id.map(|p| p.to_hex()),
            parent.map(id),
            "{service}: parent of {name}"
        );
        assert_eq!(span.resource.service_name, service, "{service} {name}");
        assert_eq!(
            attr(&span.resource.attributes, "run.id"),
            Some(&string(run_id)),
            "{service}: resource of {name}: {:#?}",
            span.resource
        );
        assert_eq!(
            (span.scope.name.as_str(), span.scope.version.as_str()),
            (scope, "1.0.0")
        );
        assert!(
            0 < span.start_time_unix_nano && span.start_time_unix_nano <= span.end_time_unix_nano,
            "{service} {name}: times {span:#?}"
        );
    }

    let root = by_name["checkout"];
    assert_eq!(root.kind, Kind::Server, "{service}");
    let expected_root_attributes = [
        ("run.id", string(run_id)),
        ("http.response.status_code", AnyValue::Int(500)),
        ("retry.enabled", AnyValue::Bool(true)),
        ("sample.ratio", AnyValue::Double(0.25)),
        ("tags", AnyValue::Array(vec![string("a"), string("b")])),
    ];
    for (key, value) in &expected_root_attributes {
        assert_eq!(
            attr(&root.attributes, key),
            Some(value),
            "{service}: checkout attribute {key}: {:#?}",
            root.attributes
        );
    }
    assert_eq!(root.events.len(), 1, "{service}: {:#?}", root.events);
    assert_eq!(root.events[0].name, "order.received");
    assert_eq!(
        attr(&root.events[0].attributes, "items"),
        Some(&AnyValue::Int(3)),
        "{service}: {:#?}",
        root.events
    );
    assert_eq!(root.status.code, StatusCode::Error, "{service}");
    assert_eq!(root.status.message, "payment failed", "{service}");

    let cart = by_name["load-cart"];
    assert_eq!(cart.kind, Kind::Internal, "{service}");
    assert_eq!(
        attr(&cart.attributes, "cart.items"),
        Some(&AnyValue::Int(3)),
        "{service}"
    );
    assert_eq!(cart.status.code, StatusCode::Unset, "{service}");

    let db = by_name["db.select"];
    assert_eq!(db.kind, Kind::Client, "{service}");
    assert_eq!(
        attr(&db.attributes, "db.system"),
        Some(&string("sqlite")),
        "{service}"
    );

    let charge = by_name["charge"];
    assert_eq!(charge.kind, Kind::Client, "{service}");
    assert_eq!(charge.status.code, StatusCode::Error, "{service}");
    assert_eq!(charge.status.message, "card declined", "{service}");
    assert_eq!(charge.events.len(), 1, "{service}: {:#?}", charge.events);
    assert_eq!(charge.events[0].name, "exception");
    assert_eq!(
        attr(&charge.events[0].attributes, "exception.message"),
        Some(&string("card declined")),
        "{service}"
    );

    let found = backend.search(&format!("service={service}")).await;
    assert_eq!(found.len(), 1, "{service}: {found:#?}");
    assert_eq!(found[0]["traceId"], sent.trace_id.as_str());
    assert_eq!(found[0]["rootName"], "checkout");
    assert_eq!(found[0]["rootService"], service);
    assert_eq!(found[0]["spanCount"], 4);
    assert_eq!(found[0]["errorCount"], 2);

    let rates = backend
        .wait_for_rates(service, |r| r.n("store") == Some(4))
        .await;
    assert!(
        !rates.exporter_counters,
        "{service} sends no otelite counters: {rates:#?}"
    );
    assert_eq!(rates.baseline, "process", "{rates:#?}");
    assert_eq!(
        rates.counts(),
        [None, None, None, Some(4), Some(4), Some(4)],
        "{rates:#?}"
    );
    for stage in ["total", "collect", "transmit"] {
        assert_eq!(
            rates.stage(stage).rate,
            None,
            "{service} {stage}: {rates:#?}"
        );
    }
    for stage in ["process", "analyze", "store"] {
        assert_eq!(
            rates.stage(stage).rate,
            Some(1.0),
            "{service} {stage}: {rates:#?}"
        );
    }
    assert!(
        rates.note.is_some(),
        "the missing counters are explained: {rates:#?}"
    );
}

pub(crate) fn run_id(client: &str) -> String {
    format!("{client}-{}", support::unique_trace_id(0))
}

/// The scenario with the Rust SDK and `opentelemetry-otlp`'s blocking
/// reqwest client; runs on a plain thread, as that client requires.
fn rust_otlp_client(endpoint: String, run_id: String, protocol: Protocol) -> Sent {
    let name = match protocol {
        Protocol::HttpJson => "rust-json-client",
        _ => "rust-proto-client",
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .expect("opentelemetry-otlp exporter");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_service_name(name)
                .with_attribute(KeyValue::new("run.id", run_id.clone()))
                .build(),
        )
        .build();
    let tracer = provider.tracer_with_scope(
        InstrumentationScope::builder("otelite-e2e-rust")
            .with_version("1.0.0")
            .build(),
    );
    let mut spans = BTreeMap::new();
    let mut root = tracer
        .span_builder("checkout")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("run.id", run_id),
            KeyValue::new("http.response.status_code", 500_i64),
            KeyValue::new("retry.enabled", true),
            KeyValue::new("sample.ratio", 0.25),
            KeyValue::new(
                "tags",
                opentelemetry::Value::Array(opentelemetry::Array::String(vec![
                    "a".into(),
                    "b".into(),
                ])),
            ),
        ])
        .start(&tracer);
    root.add_event("order.received", vec![KeyValue::new("items", 3_i64)]);
    let root_cx = Context::new().with_remote_span_context(root.span_context().clone());
    let mut cart = tracer.start_with_context("load-cart", &root_cx);
    cart.set_attribute(KeyValue::new("cart.items", 3_i64));
    let cart_cx = Context::new().with_remote_span_context(cart.span_context().clone());
    let mut db = tracer
        .span_builder("db.select")
        .with_kind(SpanKind::Client)
        .start_with_context(&tracer, &cart_cx);
    db.set_attribute(KeyValue::new("db.system", "sqlite"));
    spans.insert(
        "db.select".to_owned(),
        db.span_context().span_id().to_string(),
    );
    db.end();
    spans.insert(
        "load-cart".to_owned(),
        cart.span_context().span_id().to_string(),
    );
    cart.end();
    let mut charge = tracer
        .span_builder("charge")
        .with_kind(SpanKind::Client)
        .start_with_context(&tracer, &root_cx);
    charge.add_event(
        "exception",
        vec![KeyValue::new("exception.message", "card declined")],
    );
    charge.set_status(Status::error("card declined"));
    spans.insert(
        "charge".to_owned(),
        charge.span_context().span_id().to_string(),
    );
    charge.end();
    root.set_status(Status::error("payment failed"));
    spans.insert(
        "checkout".to_owned(),
        root.span_context().span_id().to_string(),
    );
    let trace_id = root.span_context().trace_id().to_string();
    root.end();
    provider
        .shutdown()
        .expect("opentelemetry-otlp exports and shuts down");
    Sent { trace_id, spans }
}

async fn rust_client(store: Store, protocol: Protocol, service: &str) {
    let backend = Backend::start_on(store, "foreign", |_| {}).await;
    let run_id = run_id(service);
    let (endpoint, id) = (backend.otlp_url(), run_id.clone());
    let sent = tokio::task::spawn_blocking(move || rust_otlp_client(endpoint, id, protocol))
        .await
        .expect("client thread");
    check(&backend, &sent, service, "otelite-e2e-rust", &run_id).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    rust_opentelemetry_otlp_protobuf
);
async fn rust_opentelemetry_otlp_protobuf(store: Store) {
    rust_client(store, Protocol::HttpBinary, "rust-proto-client").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    rust_opentelemetry_otlp_json
);
async fn rust_opentelemetry_otlp_json(store: Store) {
    rust_client(store, Protocol::HttpJson, "rust-json-client").await;
}

/// The client program for a language, with the machine's `OTEL_*` settings
/// removed so that they cannot redirect or alter it.
pub(crate) fn client_command(language: &str, args: [&str; 3]) -> Command {
    let mut command = match language {
        "python" => {
            let mut command = Command::new(foreign::python());
            command.arg(foreign::clients_dir().join("python/client.py"));
            command
        }
        "node" => {
            let mut command = Command::new(foreign::node());
            command
                .current_dir(foreign::clients_dir().join("node"))
                .arg("client.js");
            command
        }
        other => panic!("no client for {other}"),
    };
    command
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("OTEL_SERVICE_NAME")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    command
}

async fn script_client(store: Store, language: &'static str, protocol: &'static str) {
    let backend = Backend::start_on(store, "foreign", |_| {}).await;
    script_client_to(&backend, language, protocol).await;
}

async fn script_client_to(backend: &Backend, language: &'static str, protocol: &'static str) {
    let service = format!("{language}-{protocol}-client");
    let run_id = run_id(&service);
    let (endpoint, id) = (backend.otlp_url(), run_id.clone());
    let sent = tokio::task::spawn_blocking(move || {
        foreign::run(client_command(language, [&endpoint, &id, protocol]))
    })
    .await
    .expect("client thread");
    let scope = format!("otelite-e2e-{language}");
    check(backend, &sent, &service, &scope, &run_id).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    python_otlp_protobuf_gzip
);
async fn python_otlp_protobuf_gzip(store: Store) {
    script_client(store, "python", "proto").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    python_otlp_json
);
async fn python_otlp_json(store: Store) {
    script_client(store, "python", "json").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    node_otlp_json_chunked
);
async fn node_otlp_json_chunked(store: Store) {
    script_client(store, "node", "json").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    node_otlp_protobuf_chunked
);
async fn node_otlp_protobuf_chunked(store: Store) {
    script_client(store, "node", "proto").await;
}
