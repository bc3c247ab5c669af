//! `SdkConverter` must carry every field of a real SDK span.

use super::SdkConverter;
use crate::model::otlp::{from_otlp, to_otlp};
use crate::model::{
    AnyValue, Event, KeyValue, Link, SpanId, SpanKind, Status, StatusCode, TraceId,
};
use opentelemetry::trace::{self as api, TraceContextExt as _, Tracer, TracerProvider as _};
use std::sync::Arc;

/// Captures what the SDK hands to an exporter.
#[derive(Debug, Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Capture {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(batch);
        Ok(())
    }
}

#[test]
fn sdk_converter_carries_every_field_of_a_real_span() {
    use opentelemetry::{InstrumentationScope, KeyValue as ApiKv, Value};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    let capture = Capture::default();
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name("svc")
        .with_attribute(ApiKv::new("host.name", "h1"))
        .with_schema_url(Vec::<ApiKv>::new(), "https://schema/r")
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_simple_exporter(capture.clone())
        .build();
    let scope = InstrumentationScope::builder("lib")
        .with_version("1.2")
        .with_schema_url("https://schema/s")
        .with_attributes([ApiKv::new("scope.attr", true)])
        .build();
    let tracer = provider.tracer_with_scope(scope);

    let linked = api::SpanContext::new(
        api::TraceId::from(7u128),
        api::SpanId::from(8u64),
        api::TraceFlags::SAMPLED,
        true,
        api::TraceState::from_key_value([("k", "v")]).unwrap_or_default(),
    );
    let remote_parent = api::SpanContext::new(
        api::TraceId::from(0xabcu128),
        api::SpanId::from(0xdefu64),
        api::TraceFlags::SAMPLED,
        true,
        api::TraceState::default(),
    );
    let parent_cx = opentelemetry::Context::new().with_remote_span_context(remote_parent);
    let start = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_000_000_123);
    let end = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(2_000_000_456);
    let mut span = tracer
        .span_builder("op")
        .with_kind(api::SpanKind::Client)
        .with_start_time(start)
        .with_attributes([
            ApiKv::new("s", "x"),
            ApiKv::new("i", 42i64),
            ApiKv::new("d", 1.5),
            ApiKv::new("b", false),
            ApiKv::new("arr", Value::Array(vec![1i64, 2].into())),
        ])
        .with_links(vec![api::Link::new(linked, vec![ApiKv::new("l", 1i64)], 0)])
        .start_with_context(&tracer, &parent_cx);
    use opentelemetry::trace::Span as _;
    span.add_event_with_timestamp(
        "ev",
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_500_000_000),
        vec![ApiKv::new("e", "1")],
    );
    span.set_status(api::Status::error("boom"));
    span.end_with_timestamp(end);
    let _ = provider.shutdown();

    let batch = std::mem::take(
        &mut *capture
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    assert_eq!(batch.len(), 1);
    let spans = SdkConverter::new(&resource).convert(batch);
    let s = &spans[0];
    assert_eq!(s.trace_id, TraceId(0xabcu128.to_be_bytes()));
    assert_ne!(s.span_id, SpanId([0; 8]));
    assert_eq!(s.parent_span_id, Some(SpanId(0xdefu64.to_be_bytes())));
    assert_eq!(s.trace_state, "");
    // Sampled, and the parent is known to be remote.
    assert_eq!(s.flags, 0x01 | 0x100 | 0x200);
    assert_eq!(s.service_name(), "svc");
    assert_eq!(s.resource.schema_url, "https://schema/r");
    assert!(
        s.resource
            .attributes
            .contains(&KeyValue::new("host.name", AnyValue::String("h1".into())))
    );
    assert_eq!(s.scope.name, "lib");
    assert_eq!(s.scope.version, "1.2");
    assert_eq!(s.scope.schema_url, "https://schema/s");
    assert_eq!(
        s.scope.attributes,
        vec![KeyValue::new("scope.attr", AnyValue::Bool(true))]
    );
    assert_eq!(s.name, "op");
    assert_eq!(s.kind, SpanKind::Client);
    assert_eq!(s.start_time_unix_nano, 1_000_000_123);
    assert_eq!(s.end_time_unix_nano, 2_000_000_456);
    assert_eq!(
        s.status,
        Status {
            code: StatusCode::Error,
            message: "boom".into()
        }
    );
    assert_eq!(
        s.attributes,
        vec![
            KeyValue::new("s", AnyValue::String("x".into())),
            KeyValue::new("i", AnyValue::Int(42)),
            KeyValue::new("d", AnyValue::Double(1.5)),
            KeyValue::new("b", AnyValue::Bool(false)),
            KeyValue::new(
                "arr",
                AnyValue::Array(vec![AnyValue::Int(1), AnyValue::Int(2)])
            ),
        ]
    );
    assert_eq!(s.dropped_attributes_count, 0);
    assert_eq!(
        s.events,
        vec![Event {
            name: "ev".into(),
            time_unix_nano: 1_500_000_000,
            attributes: vec![KeyValue::new("e", AnyValue::String("1".into()))],
            dropped_attributes_count: 0,
        }]
    );
    assert_eq!(
        s.links,
        vec![Link {
            trace_id: TraceId(7u128.to_be_bytes()),
            span_id: SpanId(8u64.to_be_bytes()),
            trace_state: "k=v".into(),
            flags: 0x01 | 0x100 | 0x200,
            attributes: vec![KeyValue::new("l", AnyValue::Int(1))],
            dropped_attributes_count: 0,
        }]
    );
    assert_eq!((s.dropped_events_count, s.dropped_links_count), (0, 0));
    // And it survives the trip to OTLP and back.
    let back = from_otlp(to_otlp(&spans));
    assert_eq!(back.spans, spans);
}
