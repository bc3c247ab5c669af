//! Spans for tests to send and to expect back: `span(trace, id)` gives a
//! model span from `otelite_model::fixtures` with the end-to-end defaults,
//! and its chained setters change only what a test is about. `otlp_request`
//! writes model spans as an OTLP request by the specification, with no
//! otelite code, so a conversion bug in otelite cannot cancel itself out
//! between what a test sends and what it expects.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as pb_common;
use opentelemetry_proto::tonic::resource::v1 as pb_resource;
use opentelemetry_proto::tonic::trace::v1 as pb;
use otelite_model::{
    self as model, AnyValue, KeyValue, Resource, Scope, SpanId, SpanKind, StatusCode, TraceId,
};

pub use otelite_model::fixtures::{SpanBuilder, event};

/// The default start: 2023-11-14T22:13:20Z.
pub const START: u64 = 1_700_000_000_000_000_000;

/// A span of service `e2e` with no parent, no scope, name `span`, kind
/// internal, flags 0, lasting 1 µs from [`START`], and nothing else.
pub fn span(trace_id: TraceId, span_id: SpanId) -> SpanBuilder {
    otelite_model::fixtures::span(0, 0)
        .trace_id(trace_id)
        .span_id(span_id)
        .service("e2e")
        .name("span")
        .kind(SpanKind::Internal)
        .flags(0)
        .times(START, START + 1_000)
}

/// One scope's spans within a resource's group.
type ScopeGroup<'a> = (&'a Scope, Vec<pb::Span>);

/// Three spans of `service` in `trace` as one OTLP request, the second
/// with an all-zero span id: the backend stores two and counts the third
/// lost at process (`invalid_span_id`).
pub fn one_invalid_of_three(trace: TraceId, service: &str) -> ExportTraceServiceRequest {
    let spans: Vec<_> = (1..=3u8)
        .map(|i| {
            span(trace, SpanId([0, 0, 0, 0, 0, 0, 0, i]))
                .service(service)
                .build()
        })
        .collect();
    let mut request = otlp_request(&spans);
    request.resource_spans[0].scope_spans[0].spans[1].span_id = vec![0; 8];
    request
}

/// The spans as one OTLP request: a `ResourceSpans` per distinct resource
/// and in it a `ScopeSpans` per distinct scope, in order of first
/// appearance. Written from the OTLP protos, not with otelite's conversion.
pub fn otlp_request(spans: &[model::Span]) -> ExportTraceServiceRequest {
    let mut groups: Vec<(&Resource, Vec<ScopeGroup>)> = Vec::new();
    for span in spans {
        let at = match groups.iter().position(|(r, _)| **r == *span.resource) {
            Some(at) => at,
            None => {
                groups.push((&span.resource, Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[at].1;
        let at = match scopes.iter().position(|(s, _)| **s == *span.scope) {
            Some(at) => at,
            None => {
                scopes.push((&span.scope, Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[at].1.push(otlp_span(span));
    }
    let resource_spans = groups.into_iter().map(|(resource, scopes)| {
        let scope_spans = scopes.into_iter().map(|(scope, spans)| pb::ScopeSpans {
            scope: Some(pb_common::InstrumentationScope {
                name: scope.name.clone(),
                version: scope.version.clone(),
                attributes: otlp_attributes(&scope.attributes),
                dropped_attributes_count: scope.dropped_attributes_count,
            }),
            spans,
            schema_url: scope.schema_url.clone(),
        });
        pb::ResourceSpans {
            resource: Some(pb_resource::Resource {
                attributes: otlp_attributes(&resource.attributes),
                dropped_attributes_count: resource.dropped_attributes_count,
                entity_refs: Vec::new(),
            }),
            scope_spans: scope_spans.collect(),
            schema_url: resource.schema_url.clone(),
        }
    });
    ExportTraceServiceRequest {
        resource_spans: resource_spans.collect(),
    }
}

fn otlp_span(span: &model::Span) -> pb::Span {
    let events = span.events.iter().map(|e| pb::span::Event {
        time_unix_nano: e.time_unix_nano,
        name: e.name.clone(),
        attributes: otlp_attributes(&e.attributes),
        dropped_attributes_count: e.dropped_attributes_count,
    });
    let links = span.links.iter().map(|l| pb::span::Link {
        trace_id: l.trace_id.0.to_vec(),
        span_id: l.span_id.0.to_vec(),
        trace_state: l.trace_state.clone(),
        attributes: otlp_attributes(&l.attributes),
        dropped_attributes_count: l.dropped_attributes_count,
        flags: l.flags,
    });
    pb::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span.parent_span_id.map_or(Vec::new(), |p| p.0.to_vec()),
        flags: span.flags,
        name: span.name.clone(),
        kind: otlp_kind(span.kind),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: otlp_attributes(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: events.collect(),
        dropped_events_count: span.dropped_events_count,
        links: links.collect(),
        dropped_links_count: span.dropped_links_count,
        // Always present, also when unset: otelite must read code 0 as unset.
        status: Some(pb::Status {
            message: span.status.message.clone(),
            code: match span.status.code {
                StatusCode::Unset => 0,
                StatusCode::Ok => 1,
                StatusCode::Error => 2,
                StatusCode::Other(code) => code,
            },
        }),
    }
}

/// The numbers of `opentelemetry/proto/trace/v1/trace.proto`.
fn otlp_kind(kind: SpanKind) -> i32 {
    match kind {
        SpanKind::Unspecified => 0,
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
        SpanKind::Other(kind) => kind,
    }
}

fn otlp_attributes(attributes: &[KeyValue]) -> Vec<pb_common::KeyValue> {
    let one = |kv: &KeyValue| pb_common::KeyValue {
        key: kv.key.clone(),
        value: Some(otlp_value(&kv.value)),
        key_strindex: 0,
    };
    attributes.iter().map(one).collect()
}

fn otlp_value(value: &AnyValue) -> pb_common::AnyValue {
    use pb_common::any_value::Value;
    let value = match value {
        AnyValue::Empty => None,
        AnyValue::String(s) => Some(Value::StringValue(s.clone())),
        AnyValue::Bool(b) => Some(Value::BoolValue(*b)),
        AnyValue::Int(i) => Some(Value::IntValue(*i)),
        AnyValue::Double(d) => Some(Value::DoubleValue(*d)),
        AnyValue::Bytes(b) => Some(Value::BytesValue(b.clone())),
        AnyValue::Array(values) => Some(Value::ArrayValue(pb_common::ArrayValue {
            values: values.iter().map(otlp_value).collect(),
        })),
        AnyValue::KvList(values) => Some(Value::KvlistValue(pb_common::KeyValueList {
            values: otlp_attributes(values),
        })),
    };
    pb_common::AnyValue { value }
}

/// A monotonic cumulative sum of one point, from `start_ns` to `now_ns`,
/// as SDKs and the Collector push their own counters.
pub fn cumulative_sum(
    name: &str,
    value: i64,
    attributes: Vec<pb_common::KeyValue>,
    start_ns: u64,
    now_ns: u64,
) -> opentelemetry_proto::tonic::metrics::v1::Metric {
    use opentelemetry_proto::tonic::metrics::v1::{
        AggregationTemporality, Metric, NumberDataPoint, Sum, metric, number_data_point,
    };
    Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
            data_points: vec![NumberDataPoint {
                attributes,
                start_time_unix_nano: start_ns,
                time_unix_nano: now_ns,
                value: Some(number_data_point::Value::AsInt(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}
