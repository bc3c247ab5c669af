//! The Rust SDK with the otelite exporter, through a real backend, read back
//! through the query API: every field of every span arrives as produced, and
//! `/api/rates` shows no loss at any stage for any service.
//!
//! The expected spans are written out here, with ids taken from the SDK's own
//! `SpanContext`s and times from the test's clock, never computed by otelite
//! code: a conversion bug in the exporter cannot hide in what is expected.

use crate::support::fixtures;
use crate::support::{self, Backend, STAGES, Store, for_each_store};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use otelite_model::{self as model, AnyValue, StatusCode};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RESOURCE_SCHEMA: &str = "https://opentelemetry.io/schemas/1.26.0";
const SCOPE_SCHEMA: &str = "https://opentelemetry.io/schemas/1.30.0";

/// OTLP span flags: W3C `sampled`, and the parent's is-remote known (0x100)
/// and true (0x200), as `trace.proto` defines them.
const SAMPLED_LOCAL_PARENT: u32 = 0x101;
const SAMPLED_REMOTE_PARENT: u32 = 0x301;

/// One instrumented service: its provider, tracer, and how many spans it ended.
struct Service {
    name: &'static str,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    ended: u64,
}

impl Service {
    fn new(backend: &Backend, name: &'static str) -> Self {
        // Without the SDK's detectors, so `OTEL_*` variables cannot change it.
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_schema_url(
                [
                    KeyValue::new("service.name", name),
                    KeyValue::new("deployment.environment.name", "e2e"),
                    KeyValue::new("host.cpu.count", 2_i64),
                ],
                RESOURCE_SCHEMA,
            )
            .build();
        let provider = otelite_exporter::OteliteExporter::builder()
            .with_endpoint(backend.otlp_url())
            .build_provider(resource)
            .expect("otelite exporter builds a provider");
        let scope = InstrumentationScope::builder("otelite-e2e")
            .with_version("1.2.3")
            .with_schema_url(SCOPE_SCHEMA)
            .with_attributes([KeyValue::new("scope.owner", name)])
            .build();
        let tracer = provider.tracer_with_scope(scope);
        Self {
            name,
            provider,
            tracer,
            ended: 0,
        }
    }

    /// Ends a span at `at` and returns its context.
    fn end(&mut self, mut span: opentelemetry_sdk::trace::Span, at: SystemTime) -> SpanContext {
        let context = span.span_context().clone();
        span.end_with_timestamp(at);
        self.ended += 1;
        context
    }
}

/// What the backend should hold as the resource of `service`: the SDK's
/// attributes sorted by key (see `support::normalized`).
fn resource(service: &str) -> Arc<model::Resource> {
    Arc::new(model::Resource {
        service_name: service.into(),
        attributes: vec![
            kv("deployment.environment.name", string("e2e")),
            kv("host.cpu.count", AnyValue::Int(2)),
            kv("service.name", string(service)),
        ],
        dropped_attributes_count: 0,
        schema_url: RESOURCE_SCHEMA.into(),
    })
}

fn scope(service: &str) -> Arc<model::Scope> {
    Arc::new(model::Scope {
        name: "otelite-e2e".into(),
        version: "1.2.3".into(),
        attributes: vec![kv("scope.owner", string(service))],
        dropped_attributes_count: 0,
        schema_url: SCOPE_SCHEMA.into(),
    })
}

/// A span of `service` with the context the SDK gave it, sampled.
fn expected_span(service: &str, context: &SpanContext) -> fixtures::SpanBuilder {
    fixtures::span(trace_id(context), span_id(context))
        .resource(&resource(service))
        .scope(&scope(service))
}

fn trace_id(context: &SpanContext) -> model::TraceId {
    model::TraceId(context.trace_id().to_bytes())
}

fn span_id(context: &SpanContext) -> model::SpanId {
    model::SpanId(context.span_id().to_bytes())
}

fn kv(key: &str, value: AnyValue) -> model::KeyValue {
    model::KeyValue::new(key, value)
}

fn string(text: &str) -> AnyValue {
    AnyValue::String(text.into())
}

fn text(value: &serde_json::Value) -> &str {
    value.as_str().unwrap_or("?")
}

fn unix_nanos(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).expect("after 1970");
    u64::try_from(since.as_nanos()).expect("before 2554")
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

/// Every attribute value type the SDK has.
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

/// `typed_attributes` as the backend should serve them, written out.
fn typed_attributes_expected() -> Vec<model::KeyValue> {
    use AnyValue::{Array, Bool, Double, Int};
    vec![
        kv("http.request.method", string("GET")),
        kv("http.response.status_code", Int(200)),
        kv("user.premium", Bool(true)),
        kv("cart.total", Double(99.5)),
        kv("cart.tags", Array(vec![string("gift"), string("express")])),
        kv("cart.item_ids", Array(vec![Int(7), Int(-3), Int(i64::MAX)])),
        kv("cart.weights", Array(vec![Double(0.5), Double(1.25)])),
        kv("cart.gift_wrap", Array(vec![Bool(true), Bool(false)])),
        kv("text.unicode", string("grüße, 世界 ✓")),
        kv("text.empty", string("")),
    ]
}

/// The test's clock: `at(ms)` is a moment a few seconds ago, with odd
/// nanoseconds so that rounding anywhere shows.
struct Clock(SystemTime);

impl Clock {
    fn new() -> Self {
        Self(SystemTime::now() - Duration::from_secs(5))
    }

    fn at(&self, ms: u64) -> SystemTime {
        self.0 + Duration::from_millis(ms) + Duration::from_nanos(ms * 7 + 1)
    }

    fn ns(&self, ms: u64) -> u64 {
        unix_nanos(self.at(ms))
    }
}

/// The contexts of the spans `produce` ended.
struct Scenario {
    clock: Clock,
    warmup: SpanContext,
    root: SpanContext,
    call_orders: SpanContext,
    server: SpanContext,
    db: SpanContext,
    call_payments: SpanContext,
    charge: SpanContext,
}

impl Scenario {
    fn checkout(&self) -> String {
        self.root.trace_id().to_string()
    }

    fn warmup(&self) -> String {
        self.warmup.trace_id().to_string()
    }
}

/// Web → orders → payments, with a second web trace that a link points to.
fn produce(web: &mut Service, orders: &mut Service, payments: &mut Service) -> Scenario {
    let clock = Clock::new();
    let at = |ms| clock.at(ms);

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

    let linked = SpanContext::new(
        warmup.trace_id(),
        warmup.span_id(),
        warmup.trace_flags(),
        false,
        TraceState::from_key_value([("linked", "warmup")]).expect("trace state"),
    );
    let call_orders = web
        .tracer
        .span_builder("call orders")
        .with_kind(SpanKind::Client)
        .with_start_time(at(13))
        .with_links(vec![Link::new(
            linked,
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
    let db = orders.end(db, at(17));

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
    let charge = payments.end(charge, at(21));

    let call_payments = orders.end(call_payments, at(22));
    let server = orders.end(server, at(23));
    let call_orders = web.end(call_orders, at(24));
    let root = web.end(root, at(25));
    Scenario {
        clock,
        warmup,
        root,
        call_orders,
        server,
        db,
        call_payments,
        charge,
    }
}

/// What the backend should serve for the scenario, by span id.
fn expected(s: &Scenario) -> BTreeMap<String, model::Span> {
    use model::SpanKind::{Client, Consumer, Internal, Producer, Server};
    let ns = |ms| s.clock.ns(ms);
    let spans = [
        expected_span("web", &s.warmup)
            .name("warmup")
            .kind(Internal)
            .flags(SAMPLED_LOCAL_PARENT)
            .times(ns(0), ns(5)),
        expected_span("web", &s.root)
            .name("GET /checkout")
            .kind(Server)
            .flags(SAMPLED_LOCAL_PARENT)
            .times(ns(10), ns(25))
            .attributes(typed_attributes_expected())
            .event(fixtures::event(
                "request.parsed",
                ns(11),
                vec![
                    kv("bytes", AnyValue::Int(512)),
                    kv("valid", AnyValue::Bool(true)),
                ],
            ))
            .event(fixtures::event("no.attributes", ns(12), vec![]))
            .status(StatusCode::Ok, ""),
        expected_span("web", &s.call_orders)
            .parent_span_id(span_id(&s.root))
            .name("call orders")
            .kind(Client)
            .flags(SAMPLED_LOCAL_PARENT)
            .times(ns(13), ns(24))
            .link(model::Link {
                trace_id: trace_id(&s.warmup),
                span_id: span_id(&s.warmup),
                trace_state: "linked=warmup".into(),
                flags: SAMPLED_LOCAL_PARENT,
                attributes: vec![kv("link.reason", string("warmed cache"))],
                dropped_attributes_count: 0,
            }),
        expected_span("orders", &s.server)
            .parent_span_id(span_id(&s.call_orders))
            .name("POST /orders")
            .kind(Server)
            .flags(SAMPLED_REMOTE_PARENT)
            .times(ns(14), ns(23))
            .attribute("order.id", string("o-42")),
        expected_span("orders", &s.db)
            .parent_span_id(span_id(&s.server))
            .name("db.insert")
            .kind(Client)
            .flags(SAMPLED_LOCAL_PARENT)
            .times(ns(15), ns(17))
            .attribute("db.system", string("sqlite"))
            .attribute("db.rows", AnyValue::Int(1)),
        expected_span("orders", &s.call_payments)
            .parent_span_id(span_id(&s.server))
            .name("call payments")
            .kind(Producer)
            .flags(SAMPLED_LOCAL_PARENT)
            .times(ns(18), ns(22)),
        expected_span("payments", &s.charge)
            .parent_span_id(span_id(&s.call_payments))
            .name("POST /charge")
            .kind(Consumer)
            .flags(SAMPLED_REMOTE_PARENT)
            .times(ns(19), ns(21))
            .attribute("payment.amount", AnyValue::Double(99.5))
            .event(fixtures::event(
                "exception",
                ns(20),
                vec![
                    kv("exception.type", string("CardDeclined")),
                    kv("exception.message", string("card declined")),
                ],
            ))
            .status(StatusCode::Error, "card declined"),
    ];
    spans
        .into_iter()
        .map(|span| {
            let span = span.build();
            (span.span_id.to_hex(), span)
        })
        .collect()
}

/// Kind and status code of each span of the checkout trace, by name, as the
/// query API's JSON writes them (not through the model's deserializer).
const CHECKOUT_KINDS: [(&str, &str, &str); 6] = [
    ("GET /checkout", "server", "ok"),
    ("call orders", "client", "unset"),
    ("POST /orders", "server", "unset"),
    ("db.insert", "client", "unset"),
    ("call payments", "producer", "unset"),
    ("POST /charge", "consumer", "error"),
];

/// Spans each service ended in `produce`.
const ENDED: [(&str, u64); 3] = [("web", 3), ("orders", 3), ("payments", 1)];

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
    let scenario = produce(web, orders, payments);
    let expected = expected(&scenario);
    assert_eq!(expected.len(), 7, "the scenario ends seven spans");
    for service in services {
        let count = ENDED.iter().find(|(name, _)| *name == service.name);
        assert_eq!(Some(service.ended), count.map(|c| c.1), "{}", service.name);
        support::shutdown(service.provider).await;
    }

    let (checkout, warmup) = (scenario.checkout(), scenario.warmup());
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

    let (status, body) = backend
        .get_json(&format!("/api/otelite/traces/{checkout}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut kinds: Vec<(&str, &str, &str)> = body["spans"]
        .as_array()
        .unwrap_or_else(|| panic!("no spans array in {body}"))
        .iter()
        .map(|span| {
            let (name, kind) = (text(&span["name"]), text(&span["kind"]));
            (name, kind, text(&span["status"]["code"]))
        })
        .collect();
    kinds.sort_by_key(|(name, _, _)| CHECKOUT_KINDS.iter().position(|k| k.0 == *name));
    assert_eq!(kinds, CHECKOUT_KINDS, "kinds and status codes as JSON");

    for (service, produced) in ENDED {
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
    let scenario = produce(web, orders, payments);
    for service in services {
        support::shutdown(service.provider).await;
    }
    let (checkout, warmup) = (scenario.checkout(), scenario.warmup());
    backend.wait_for_trace(&checkout, 6).await;
    backend.wait_for_trace(&warmup, 1).await;

    let found = backend.search("service=web&limit=10").await;
    let ids: Vec<&str> = found.iter().filter_map(|t| t["traceId"].as_str()).collect();
    assert_eq!(
        ids,
        [checkout.as_str(), warmup.as_str()],
        "newest first: {found:#?}"
    );

    // The checkout trace runs from its root's start to its root's end.
    let (start, end) = (scenario.clock.ns(10), scenario.clock.ns(25));
    let summary = &found[0];
    assert_eq!(summary["rootService"], "web", "{summary}");
    assert_eq!(summary["rootName"], "GET /checkout", "{summary}");
    assert_eq!(summary["spanCount"], 6, "{summary}");
    assert_eq!(summary["errorCount"], 1, "{summary}");
    let field = |name: &str| support::as_u64(&summary[name]);
    assert_eq!(field("startTimeUnixNano"), Some(start), "{summary}");
    assert_eq!(field("endTimeUnixNano"), Some(end), "{summary}");
    assert_eq!(field("durationNanos"), Some(end - start), "{summary}");

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
// carries a trace state.
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
    let clock = Clock::new();
    let span = service
        .tracer
        .span_builder("continue")
        .with_kind(SpanKind::Server)
        .with_start_time(clock.at(0))
        .start_with_context(&service.tracer, &remote(&parent));
    let context = service.end(span, clock.at(3));
    support::shutdown(service.provider).await;

    let expected = expected_span("edge", &context)
        .parent_span_id(model::SpanId([1, 2, 3, 4, 5, 6, 7, 8]))
        .trace_state("vendor=abc,other=x-1")
        .flags(SAMPLED_REMOTE_PARENT)
        .name("continue")
        .kind(model::SpanKind::Server)
        .times(clock.ns(0), clock.ns(3))
        .build();
    assert_eq!(
        expected.trace_id.0,
        parent.trace_id().to_bytes(),
        "same trace"
    );
    let stored = backend
        .wait_for_trace(&context.trace_id().to_string(), 1)
        .await;
    let stored: Vec<model::Span> = stored.into_iter().map(support::normalized).collect();
    assert_eq!(stored, [expected]);
}
