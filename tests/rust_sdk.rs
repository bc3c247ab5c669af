//! The Rust SDK with the otelite exporter, through a real backend, read back
//! through the query API: every field of every span arrives as produced, and
//! `/api/rates` shows no loss at any stage for any service.

use crate::support::{self, Backend, STAGES, Store, for_each_store};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData};
use otelite_exporter::convert::SdkConverter;
use otelite_model as model;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// One instrumented service: its provider, tracer, and the spans it ended.
struct Service {
    name: &'static str,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    ended: Vec<SpanData>,
}

impl Service {
    fn new(backend: &Backend, name: &'static str) -> Self {
        let provider = support::otelite_provider(&backend.otlp_url(), name, None);
        let scope = InstrumentationScope::builder("otelite-e2e")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.owner", name)])
            .build();
        let tracer = provider.tracer_with_scope(scope);
        Self {
            name,
            provider,
            tracer,
            ended: Vec::new(),
        }
    }

    /// Ends a span at `at`, keeping a copy of exactly what the SDK hands to
    /// its processors (the span's data plus that end time).
    fn end(&mut self, mut span: opentelemetry_sdk::trace::Span, at: SystemTime) -> SpanContext {
        let mut data = span.exported_data().expect("span is recording");
        data.end_time = at;
        span.end_with_timestamp(at);
        let context = data.span_context.clone();
        self.ended.push(data);
        context
    }

    /// What the backend should hold for this service's spans, by span id.
    fn expected(&self) -> BTreeMap<String, model::Span> {
        SdkConverter::new(&support::resource(self.name))
            .convert(self.ended.clone())
            .into_iter()
            .map(|span| (span.span_id.to_hex(), support::normalized(span)))
            .collect()
    }
}

/// The parent context a server span gets from a propagated header.
fn remote(parent: &SpanContext) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        parent.trace_id(),
        parent.span_id(),
        parent.trace_flags(),
        true,
        parent.trace_state().clone(),
    ))
}

/// The parent context of an in-process child.
fn local(parent: &SpanContext) -> Context {
    Context::new().with_remote_span_context(parent.clone())
}

fn typed_attributes() -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.response.status_code", 200_i64),
        KeyValue::new("user.premium", true),
        KeyValue::new("cart.total", 99.5_f64),
        KeyValue::new(
            "cart.tags",
            Value::Array(Array::String(vec![
                StringValue::from("gift"),
                StringValue::from("express"),
            ])),
        ),
        KeyValue::new(
            "cart.item_ids",
            Value::Array(Array::I64(vec![7, -3, i64::MAX])),
        ),
        KeyValue::new("cart.weights", Value::Array(Array::F64(vec![0.5, 1.25]))),
        KeyValue::new(
            "cart.gift_wrap",
            Value::Array(Array::Bool(vec![true, false])),
        ),
        KeyValue::new("text.unicode", "grüße, 世界 ✓"),
        KeyValue::new("text.empty", ""),
    ]
}

/// Web → orders → payments, with a second web trace that a link points to.
/// Returns the two trace ids (checkout first).
fn produce(web: &mut Service, orders: &mut Service, payments: &mut Service) -> [String; 2] {
    let base = SystemTime::now() - Duration::from_secs(5);
    let at = |ms: u64| base + Duration::from_millis(ms) + Duration::from_nanos(ms * 7 + 1);

    let warmup = web
        .tracer
        .span_builder("warmup")
        .with_kind(SpanKind::Internal)
        .with_start_time(at(0))
        .start(&web.tracer);
    let warmup = web.end(warmup, at(5));

    let mut root = web
        .tracer
        .span_builder("GET /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(10))
        .with_attributes(typed_attributes())
        .start(&web.tracer);
    root.add_event_with_timestamp(
        "request.parsed",
        at(11),
        vec![
            KeyValue::new("bytes", 512_i64),
            KeyValue::new("valid", true),
        ],
    );
    root.add_event_with_timestamp("no.attributes", at(12), vec![]);
    root.set_status(Status::Ok);
    let root_cx = root.span_context().clone();

    let call_orders = web
        .tracer
        .span_builder("call orders")
        .with_kind(SpanKind::Client)
        .with_start_time(at(13))
        .with_links(vec![Link::new(
            warmup.clone(),
            vec![KeyValue::new("link.reason", "warmed cache")],
            0,
        )])
        .start_with_context(&web.tracer, &local(&root_cx));
    let call_orders_cx = call_orders.span_context().clone();

    let server = orders
        .tracer
        .span_builder("POST /orders")
        .with_kind(SpanKind::Server)
        .with_start_time(at(14))
        .with_attributes([KeyValue::new("order.id", "o-42")])
        .start_with_context(&orders.tracer, &remote(&call_orders_cx));
    let server_cx = server.span_context().clone();

    let db = orders
        .tracer
        .span_builder("db.insert")
        .with_kind(SpanKind::Client)
        .with_start_time(at(15))
        .with_attributes([
            KeyValue::new("db.system", "sqlite"),
            KeyValue::new("db.rows", 1_i64),
        ])
        .start_with_context(&orders.tracer, &local(&server_cx));
    orders.end(db, at(17));

    let call_payments = orders
        .tracer
        .span_builder("call payments")
        .with_kind(SpanKind::Producer)
        .with_start_time(at(18))
        .start_with_context(&orders.tracer, &local(&server_cx));
    let call_payments_cx = call_payments.span_context().clone();

    let mut charge = payments
        .tracer
        .span_builder("POST /charge")
        .with_kind(SpanKind::Consumer)
        .with_start_time(at(19))
        .with_attributes([KeyValue::new("payment.amount", 99.5_f64)])
        .start_with_context(&payments.tracer, &remote(&call_payments_cx));
    charge.add_event_with_timestamp(
        "exception",
        at(20),
        vec![
            KeyValue::new("exception.type", "CardDeclined"),
            KeyValue::new("exception.message", "card declined"),
        ],
    );
    charge.set_status(Status::error("card declined"));
    payments.end(charge, at(21));

    orders.end(call_payments, at(22));
    orders.end(server, at(23));
    web.end(call_orders, at(24));
    web.end(root, at(25));

    [
        root_cx.trace_id().to_string(),
        warmup.trace_id().to_string(),
    ]
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    spans_from_three_services_arrive_field_for_field
);
async fn spans_from_three_services_arrive_field_for_field(store: Store) {
    let backend = Backend::start_on(store, "rust_sdk", |_| {}).await;
    three_services_field_for_field(&backend).await;
}

async fn three_services_field_for_field(backend: &Backend) {
    let mut services = [
        Service::new(backend, "web"),
        Service::new(backend, "orders"),
        Service::new(backend, "payments"),
    ];
    let [web, orders, payments] = &mut services;
    let [checkout, warmup] = produce(web, orders, payments);
    let expected: BTreeMap<String, model::Span> =
        services.iter().flat_map(Service::expected).collect();
    assert_eq!(expected.len(), 7, "the scenario ends seven spans");
    let mut counts = BTreeMap::new();
    for service in services {
        counts.insert(service.name, service.ended.len() as u64);
        support::shutdown(service.provider).await;
    }

    let mut seen = 0;
    for (trace_id, count) in [(&checkout, 6), (&warmup, 1)] {
        let stored = backend.wait_for_trace(trace_id, count).await;
        assert_eq!(stored.len(), count, "spans stored for trace {trace_id}");
        for span in stored {
            let id = span.span_id.to_hex();
            let want = expected
                .get(&id)
                .unwrap_or_else(|| panic!("backend returned a span nobody sent: {span:#?}"));
            assert_eq!(
                &support::normalized(span),
                want,
                "span {id} ({})",
                want.name
            );
            seen += 1;
        }
    }
    assert_eq!(seen, expected.len(), "every span came back exactly once");

    for (service, produced) in counts {
        let rates = backend
            .wait_for_rates(service, |r| {
                r.n("total").is_some() && r.n("store") == r.n("total")
            })
            .await;
        assert_eq!(rates.stage_names(), STAGES, "stages of {service}");
        assert!(
            rates.exporter_counters,
            "{service} sent exporter counters: {rates:#?}"
        );
        assert_eq!(rates.baseline, "total", "{rates:#?}");
        assert_eq!(rates.counts(), vec![Some(produced); 6], "{rates:#?}");
        for stage in STAGES {
            assert_eq!(
                rates.stage(stage).rate,
                Some(1.0),
                "{service} {stage}: {rates:#?}"
            );
        }
    }
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    search_finds_the_traces_newest_first
);
async fn search_finds_the_traces_newest_first(store: Store) {
    let backend = Backend::start_on(store, "rust_sdk", |_| {}).await;
    search_newest_first(&backend).await;
}

async fn search_newest_first(backend: &Backend) {
    let mut services = [
        Service::new(backend, "web"),
        Service::new(backend, "orders"),
        Service::new(backend, "payments"),
    ];
    let [web, orders, payments] = &mut services;
    let [checkout, warmup] = produce(web, orders, payments);
    let expected: Vec<model::Span> = services
        .iter()
        .flat_map(|s| s.expected().into_values())
        .collect();
    for service in services {
        support::shutdown(service.provider).await;
    }
    backend.wait_for_trace(&checkout, 6).await;
    backend.wait_for_trace(&warmup, 1).await;

    let found = backend.search("service=web&limit=10").await;
    let ids: Vec<&str> = found.iter().filter_map(|t| t["traceId"].as_str()).collect();
    assert_eq!(
        ids,
        [checkout.as_str(), warmup.as_str()],
        "newest first: {found:#?}"
    );

    let in_checkout: Vec<&model::Span> = expected
        .iter()
        .filter(|s| s.trace_id.to_hex() == checkout)
        .collect();
    let start = in_checkout.iter().map(|s| s.start_time_unix_nano).min();
    let end = in_checkout.iter().map(|s| s.end_time_unix_nano).max();
    let summary = &found[0];
    assert_eq!(summary["rootService"], "web", "{summary}");
    assert_eq!(summary["rootName"], "GET /checkout", "{summary}");
    assert_eq!(summary["spanCount"], 6, "{summary}");
    assert_eq!(summary["errorCount"], 1, "{summary}");
    assert_eq!(
        support::as_u64(&summary["startTimeUnixNano"]),
        start,
        "{summary}"
    );
    assert_eq!(
        support::as_u64(&summary["endTimeUnixNano"]),
        end,
        "{summary}"
    );
    assert_eq!(
        support::as_u64(&summary["durationNanos"]),
        end.zip(start).map(|(e, s)| e - s),
        "{summary}"
    );

    let by_operation = backend.search("service=web&operation=warmup").await;
    let ids: Vec<&str> = by_operation
        .iter()
        .filter_map(|t| t["traceId"].as_str())
        .collect();
    assert_eq!(ids, [warmup.as_str()], "{by_operation:#?}");

    let limited = backend.search("service=web&limit=1").await;
    assert_eq!(limited.len(), 1, "limit=1: {limited:#?}");

    let nobody = backend.search("service=no-such-service").await;
    assert!(nobody.is_empty(), "{nobody:#?}");
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    trace_lookup_rejects_bad_ids_and_unknown_traces
);
async fn trace_lookup_rejects_bad_ids_and_unknown_traces(store: Store) {
    let backend = Backend::start_on(store, "rust_sdk", |_| {}).await;
    let (status, body) = backend
        .get_json("/api/otelite/traces/0af7651916cd43dd8448eb211c80319c")
        .await;
    assert_eq!(status, 404, "unknown trace: {body}");
    assert!(body["error"].is_string(), "404 body has an error: {body}");
    for bad in [
        "not-hex",
        "0af7651916cd43dd",
        "0af7651916cd43dd8448eb211c80319c00",
    ] {
        let (status, body) = backend
            .get_json(&format!("/api/otelite/traces/{bad}"))
            .await;
        assert_eq!(status, 400, "trace id {bad:?}: {body}");
        assert!(body["error"].is_string(), "400 body has an error: {body}");
    }
}

// Trace flags and state survive: a span continuing a remote parent that
// carries a trace state and is not sampled-by-default flags.
for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    remote_parent_trace_state_is_kept
);
async fn remote_parent_trace_state_is_kept(store: Store) {
    let backend = Backend::start_on(store, "rust_sdk", |_| {}).await;
    let mut service = Service::new(&backend, "edge");
    let parent = SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes(support::unique_trace_id(1).0),
        opentelemetry::trace::SpanId::from_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "abc"), ("other", "x-1")]).expect("trace state"),
    );
    let span = service
        .tracer
        .span_builder("continue")
        .with_kind(SpanKind::Server)
        .start_with_context(&service.tracer, &remote(&parent));
    let context = service.end(span, SystemTime::now());
    let expected = service.expected();
    support::shutdown(service.provider).await;

    let stored = backend
        .wait_for_trace(&context.trace_id().to_string(), 1)
        .await;
    assert_eq!(stored.len(), 1);
    let span = support::normalized(stored[0].clone());
    assert_eq!(span.trace_state, "vendor=abc,other=x-1");
    assert_eq!(
        span.parent_span_id.map(|id| id.to_hex()).as_deref(),
        Some("0102030405060708")
    );
    assert_eq!(Some(&span), expected.get(&context.span_id().to_string()));
}
