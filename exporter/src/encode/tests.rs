//! The direct encoder must write exactly the bytes of the model path
//! (`SdkConverter::convert`, then the model's `encode_request`).

use super::encode_request;
use crate::convert::SdkConverter;
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as PbValue;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn model_path(converter: &SdkConverter, batch: &[SpanData]) -> Vec<u8> {
    let mut buf = Vec::new();
    otelite_model::encode::encode_request(&converter.convert(batch.to_vec()), &mut buf);
    buf
}

fn direct(converter: &SdkConverter, batch: &[SpanData]) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_request(converter, batch, &mut buf);
    buf
}

fn resource() -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("svc")
        .with_attribute(KeyValue::new("host.name", "h1"))
        .with_schema_url(Vec::<KeyValue>::new(), "https://schema/r")
        .build()
}

fn at(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn context(trace: u128, span: u64, flags: u8, remote: bool, state: &[(&str, &str)]) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::new(flags),
        remote,
        TraceState::from_key_value(state.iter().copied()).unwrap_or_default(),
    )
}

/// A span with every field set to a value that is not the default.
fn full_span(scope: InstrumentationScope) -> SpanData {
    let mut events = SpanEvents::default();
    events.events = vec![
        Event::new("ev", at(1_500_000_000), vec![KeyValue::new("e", "1")], 2),
        Event::new("", UNIX_EPOCH, Vec::new(), 0),
    ];
    events.dropped_count = 3;
    let mut links = SpanLinks::default();
    links.links = vec![Link::new(
        context(7, 8, 1, true, &[("k", "v"), ("k2", "v2")]),
        vec![KeyValue::new("l", 1_i64)],
        4,
    )];
    links.dropped_count = 5;
    SpanData {
        span_context: context(0xabc, 0x123, 1, false, &[("vendor", "x")]),
        parent_span_id: SpanId::from(0xdef_u64),
        parent_span_is_remote: true,
        span_kind: SpanKind::Client,
        name: "op".into(),
        start_time: at(1_000_000_123),
        end_time: at(2_000_000_456),
        attributes: vec![
            KeyValue::new("s", "x"),
            KeyValue::new("owned", format!("user-{}", 42)),
            KeyValue::new("i", -42_i64),
            KeyValue::new("d", 1.5),
            KeyValue::new("b", true),
            KeyValue::new("", ""),
            KeyValue::new("ai", Value::Array(vec![1_i64, -2].into())),
            KeyValue::new("ab", Value::Array(vec![true, false].into())),
            KeyValue::new("af", Value::Array(vec![0.25, -0.0].into())),
            KeyValue::new(
                "as",
                Value::Array(Array::String(vec![StringValue::from("a"), "".into()])),
            ),
        ],
        dropped_attributes_count: 6,
        events,
        links,
        status: Status::error("boom"),
        instrumentation_scope: scope,
    }
}

fn scope(name: &'static str) -> InstrumentationScope {
    InstrumentationScope::builder(name)
        .with_version("1.2")
        .with_schema_url("https://schema/s")
        .with_attributes([KeyValue::new("scope.attr", true)])
        .build()
}

#[test]
fn empty_batch_writes_nothing() {
    assert_eq!(
        direct(&SdkConverter::new(&resource()), &[]),
        Vec::<u8>::new()
    );
}

#[test]
fn every_field_decodes_to_what_the_sdk_span_holds() {
    let converter = SdkConverter::new(&resource());
    let batch = vec![full_span(scope("lib"))];
    let bytes = direct(&converter, &batch);
    assert_eq!(bytes, model_path(&converter, &batch));

    let request =
        <ExportTraceServiceRequest as prost::Message>::decode(&bytes[..]).expect("a valid request");
    let resource_spans = &request.resource_spans[0];
    assert_eq!(resource_spans.schema_url, "https://schema/r");
    let scope_spans = &resource_spans.scope_spans[0];
    let scope = scope_spans.scope.as_ref().expect("scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("lib", "1.2")
    );
    assert_eq!(scope_spans.schema_url, "https://schema/s");
    let span = &scope_spans.spans[0];
    assert_eq!(span.trace_id, 0xabc_u128.to_be_bytes());
    assert_eq!(span.span_id, 0x123_u64.to_be_bytes());
    assert_eq!(span.parent_span_id, 0xdef_u64.to_be_bytes());
    assert_eq!(span.trace_state, "vendor=x");
    assert_eq!(span.flags, 0x01 | 0x100 | 0x200);
    assert_eq!(span.name, "op");
    assert_eq!(span.kind, 3);
    assert_eq!(
        (span.start_time_unix_nano, span.end_time_unix_nano),
        (1_000_000_123, 2_000_000_456)
    );
    assert_eq!(span.attributes.len(), 10);
    assert_eq!(span.attributes[1].key, "owned");
    assert_eq!(
        span.attributes[1]
            .value
            .as_ref()
            .and_then(|v| v.value.clone()),
        Some(PbValue::StringValue("user-42".into()))
    );
    assert_eq!(
        span.attributes[2]
            .value
            .as_ref()
            .and_then(|v| v.value.clone()),
        Some(PbValue::IntValue(-42))
    );
    assert_eq!(span.dropped_attributes_count, 6);
    assert_eq!(span.events.len(), 2);
    assert_eq!(
        (span.events[0].name.as_str(), span.events[0].time_unix_nano),
        ("ev", 1_500_000_000)
    );
    assert_eq!(span.events[0].dropped_attributes_count, 2);
    assert_eq!(span.dropped_events_count, 3);
    assert_eq!(span.links[0].trace_id, 7_u128.to_be_bytes());
    assert_eq!(span.links[0].trace_state, "k=v,k2=v2");
    assert_eq!(span.links[0].flags, 0x01 | 0x100 | 0x200);
    assert_eq!(span.links[0].dropped_attributes_count, 4);
    assert_eq!(span.dropped_links_count, 5);
    let status = span.status.as_ref().expect("status");
    assert_eq!((status.code, status.message.as_str()), (2, "boom"));
}

#[test]
fn scopes_group_in_order_of_first_appearance() {
    let converter = SdkConverter::new(&resource());
    let batch: Vec<SpanData> = ["a", "b", "a", "a", "c", "b"]
        .into_iter()
        .map(|name| full_span(scope(name)))
        .collect();
    let bytes = direct(&converter, &batch);
    assert_eq!(bytes, model_path(&converter, &batch));
    let request =
        <ExportTraceServiceRequest as prost::Message>::decode(&bytes[..]).expect("a valid request");
    let groups: Vec<(String, usize)> = request.resource_spans[0]
        .scope_spans
        .iter()
        .map(|s| (s.scope.clone().unwrap_or_default().name, s.spans.len()))
        .collect();
    assert_eq!(
        groups,
        vec![("a".into(), 3), ("b".into(), 2), ("c".into(), 1)]
    );
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        any::<f64>().prop_map(Value::F64),
        ".{0,12}".prop_map(|s| Value::String(s.into())),
        prop::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(v.into())),
        prop::collection::vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(v.into())),
        prop::collection::vec(any::<f64>(), 0..4).prop_map(|v| Value::Array(v.into())),
        prop::collection::vec(".{0,5}", 0..4).prop_map(|v| Value::Array(Array::String(
            v.into_iter().map(StringValue::from).collect()
        ))),
    ]
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(("[a-z.]{0,8}", value()), 0..5)
        .prop_map(|kvs| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        ".{0,6}".prop_map(Status::error),
    ]
}

fn kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        Just(SpanKind::Internal),
        Just(SpanKind::Server),
        Just(SpanKind::Client),
        Just(SpanKind::Producer),
        Just(SpanKind::Consumer),
    ]
}

prop_compose! {
    fn event()(
        name in ".{0,6}",
        time in prop_oneof![Just(0_u64), any::<u64>()],
        attributes in attributes(),
        dropped in 0_u32..3,
    ) -> Event {
        Event::new(name, at(time), attributes, dropped)
    }
}

prop_compose! {
    fn link()(
        trace in any::<u128>(),
        span in any::<u64>(),
        flags in any::<u8>(),
        remote in any::<bool>(),
        state in prop::option::of("[a-z]{1,4}"),
        attributes in attributes(),
        dropped in 0_u32..3,
    ) -> Link {
        let state: Vec<(&str, &str)> = state.as_deref().map(|s| vec![(s, s)]).unwrap_or_default();
        Link::new(context(trace, span, flags, remote, &state), attributes, dropped)
    }
}

prop_compose! {
    fn span()(
        trace in any::<u128>(),
        id in any::<u64>(),
        flags in any::<u8>(),
        parent in prop_oneof![Just(0_u64), any::<u64>()],
        parent_remote in any::<bool>(),
        state in prop::option::of("[a-z]{1,4}"),
        kind in kind(),
        name in ".{0,10}",
        times in (prop_oneof![Just(0_u64), any::<u64>()], any::<u64>()),
        attributes in attributes(),
        dropped in (0_u32..3, 0_u32..3, 0_u32..3),
        events in prop::collection::vec(event(), 0..3),
        links in prop::collection::vec(link(), 0..2),
        status in status(),
        scope in prop::sample::select(vec!["a", "b", "c"]),
        version in prop::option::of("[0-9.]{1,4}"),
    ) -> SpanData {
        let state: Vec<(&str, &str)> = state.as_deref().map(|s| vec![(s, s)]).unwrap_or_default();
        let mut span_events = SpanEvents::default();
        span_events.events = events;
        span_events.dropped_count = dropped.1;
        let mut span_links = SpanLinks::default();
        span_links.links = links;
        span_links.dropped_count = dropped.2;
        let mut scope = InstrumentationScope::builder(scope);
        if let Some(version) = version {
            scope = scope.with_version(version);
        }
        SpanData {
            span_context: context(trace, id, flags, false, &state),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: parent_remote,
            span_kind: kind,
            name: name.into(),
            start_time: at(times.0),
            end_time: at(times.1),
            attributes,
            dropped_attributes_count: dropped.0,
            events: span_events,
            links: span_links,
            status,
            instrumentation_scope: scope.build(),
        }
    }
}

proptest! {
    #[test]
    fn direct_bytes_equal_the_model_paths(batch in prop::collection::vec(span(), 0..8)) {
        let converter = SdkConverter::new(&resource());
        prop_assert_eq!(direct(&converter, &batch), model_path(&converter, &batch));
    }
}
