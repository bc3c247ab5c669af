//! Model spans ↔ OTLP `ExportTraceServiceRequest` (the prost types of
//! `opentelemetry-proto`). Both directions live here so that the round trip
//! can be checked in one place.

use crate::span::{self as model, AnyValue, KeyValue, SpanId, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as pb_common;
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1 as pb;
use std::sync::Arc;

/// A resource's group: its model (to match spans against), the OTLP group,
/// and the model scope of each of its scope groups.
type ResourceGroup = (
    Arc<model::Resource>,
    pb::ResourceSpans,
    Vec<Arc<model::Scope>>,
);

/// Groups spans by resource and scope (in order of first appearance) into
/// one OTLP request.
pub fn to_otlp(spans: &[model::Span]) -> ExportTraceServiceRequest {
    let mut groups: Vec<ResourceGroup> = Vec::new();
    for span in spans {
        let (resource, scope) = (&span.resource, &span.scope);
        let index = match groups.iter().position(|(r, _, _)| same(r, resource)) {
            Some(index) => index,
            None => {
                groups.push((resource.clone(), resource_to_otlp(resource), Vec::new()));
                groups.len() - 1
            }
        };
        let (_, resource_spans, scopes) = &mut groups[index];
        let scope_index = match scopes.iter().position(|s| same(s, scope)) {
            Some(i) => i,
            None => {
                scopes.push(scope.clone());
                resource_spans.scope_spans.push(scope_to_otlp(scope));
                scopes.len() - 1
            }
        };
        resource_spans.scope_spans[scope_index]
            .spans
            .push(span_to_otlp(span));
    }
    ExportTraceServiceRequest {
        resource_spans: groups.into_iter().map(|(_, rs, _)| rs).collect(),
    }
}

fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

pub fn resource_to_otlp(resource: &model::Resource) -> pb::ResourceSpans {
    pb::ResourceSpans {
        resource: Some(PbResource {
            attributes: attributes_to_otlp(&resource.attributes),
            dropped_attributes_count: resource.dropped_attributes_count,
            entity_refs: Vec::new(),
        }),
        scope_spans: Vec::new(),
        schema_url: resource.schema_url.clone(),
    }
}

pub fn scope_to_otlp(scope: &model::Scope) -> pb::ScopeSpans {
    pb::ScopeSpans {
        scope: Some(pb_common::InstrumentationScope {
            name: scope.name.clone(),
            version: scope.version.clone(),
            attributes: attributes_to_otlp(&scope.attributes),
            dropped_attributes_count: scope.dropped_attributes_count,
        }),
        spans: Vec::new(),
        schema_url: scope.schema_url.clone(),
    }
}

/// One model span as an OTLP span (resource and scope are carried by the
/// enclosing groups).
pub fn span_to_otlp(span: &model::Span) -> pb::Span {
    pb::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span
            .parent_span_id
            .map(|p| p.0.to_vec())
            .unwrap_or_default(),
        flags: span.flags,
        name: span.name.clone(),
        kind: span.kind.as_i32(),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: attributes_to_otlp(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .iter()
            .map(|e| pb::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.clone(),
                attributes: attributes_to_otlp(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links: span
            .links
            .iter()
            .map(|l| pb::span::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: attributes_to_otlp(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: span.dropped_links_count,
        status: match (span.status.code, span.status.message.is_empty()) {
            (model::StatusCode::Unset, true) => None,
            (code, _) => Some(pb::Status {
                message: span.status.message.clone(),
                code: code.as_i32(),
            }),
        },
    }
}

pub fn attributes_to_otlp(attributes: &[KeyValue]) -> Vec<pb_common::KeyValue> {
    attributes
        .iter()
        .map(|kv| pb_common::KeyValue {
            key: kv.key.clone(),
            value: Some(value_to_otlp(&kv.value)),
            key_strindex: 0,
        })
        .collect()
}

fn value_to_otlp(value: &AnyValue) -> pb_common::AnyValue {
    use pb_common::any_value::Value;
    let value = match value {
        AnyValue::Empty => None,
        AnyValue::String(s) => Some(Value::StringValue(s.clone())),
        AnyValue::Bool(b) => Some(Value::BoolValue(*b)),
        AnyValue::Int(i) => Some(Value::IntValue(*i)),
        AnyValue::Double(d) => Some(Value::DoubleValue(*d)),
        AnyValue::Bytes(b) => Some(Value::BytesValue(b.clone())),
        AnyValue::Array(values) => Some(Value::ArrayValue(pb_common::ArrayValue {
            values: values.iter().map(value_to_otlp).collect(),
        })),
        AnyValue::KvList(values) => Some(Value::KvlistValue(pb_common::KeyValueList {
            values: attributes_to_otlp(values),
        })),
    };
    pb_common::AnyValue { value }
}

/// Why a span of an OTLP request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSpan {
    /// Of the wrong length, or 16 zero bytes (`len` 16).
    #[error("span {index}: trace_id {}", id_fault(*len, 16))]
    TraceId { index: usize, len: usize },
    /// Of the wrong length, or 8 zero bytes (`len` 8).
    #[error("span {index}: span_id {}", id_fault(*len, 8))]
    SpanId { index: usize, len: usize },
    #[error("span {index}: parent_span_id must be empty or 8 bytes, got {len} bytes")]
    ParentSpanId { index: usize, len: usize },
    #[error("span {index}: link {link}: trace_id must be 16 bytes and span_id 8 bytes")]
    LinkId { index: usize, link: usize },
}

impl InvalidSpan {
    /// A short name for the fault, the `reason` a lost span is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TraceId { .. } => "invalid_trace_id",
            Self::SpanId { .. } => "invalid_span_id",
            Self::ParentSpanId { .. } => "invalid_parent_span_id",
            Self::LinkId { .. } => "invalid_link_id",
        }
    }
}

/// The valid spans of a request, and one error per span that was not.
#[derive(Debug, Default)]
pub struct SpansFromOtlp {
    pub spans: Vec<model::Span>,
    pub rejected: Vec<InvalidSpan>,
    /// The service of each rejected span, in the same order: the backend
    /// counts each loss against the service that sent it.
    pub rejected_services: Vec<String>,
}

/// OTLP request → model spans. Invalid spans are left out and listed, so the
/// caller can answer with a partial success; the request is consumed so that
/// strings move instead of being copied.
pub fn from_otlp(request: ExportTraceServiceRequest) -> SpansFromOtlp {
    let mut out = SpansFromOtlp::default();
    let mut index = 0;
    for resource_spans in request.resource_spans {
        let resource = Arc::new(resource_from_otlp(
            resource_spans.resource,
            resource_spans.schema_url,
        ));
        for scope_spans in resource_spans.scope_spans {
            let scope = Arc::new(scope_from_otlp(scope_spans.scope, scope_spans.schema_url));
            for span in scope_spans.spans {
                match span_from_otlp(span, index, &resource, &scope) {
                    Ok(span) => out.spans.push(span),
                    Err(error) => {
                        out.rejected.push(error);
                        out.rejected_services.push(resource.service_name.clone());
                    }
                }
                index += 1;
            }
        }
    }
    out
}

fn resource_from_otlp(resource: Option<PbResource>, schema_url: String) -> model::Resource {
    let resource = resource.unwrap_or_default();
    model::Resource::new(
        attributes_from_otlp(resource.attributes),
        resource.dropped_attributes_count,
        schema_url,
    )
}

fn scope_from_otlp(
    scope: Option<pb_common::InstrumentationScope>,
    schema_url: String,
) -> model::Scope {
    let scope = scope.unwrap_or_default();
    model::Scope {
        name: scope.name,
        version: scope.version,
        attributes: attributes_from_otlp(scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
        schema_url,
    }
}

/// What is wrong with an id of `len` bytes that should have `expected`:
/// an id of the right length is refused only for being all zero.
fn id_fault(len: usize, expected: usize) -> String {
    if len == expected {
        "is all zero".to_owned()
    } else {
        format!("must be {expected} bytes, got {len} bytes")
    }
}

fn valid_trace_id(bytes: &[u8]) -> Option<TraceId> {
    TraceId::from_slice(bytes).filter(|id| !id.is_zero())
}

fn valid_span_id(bytes: &[u8]) -> Option<SpanId> {
    SpanId::from_slice(bytes).filter(|id| !id.is_zero())
}

/// A span's ids checked: the trace and span ids of the right length and
/// not all zero, the parent empty or of the right length.
pub(crate) fn span_ids(
    trace_id: &[u8],
    span_id: &[u8],
    parent_span_id: &[u8],
    index: usize,
) -> Result<(TraceId, SpanId, Option<SpanId>), InvalidSpan> {
    let trace = valid_trace_id(trace_id).ok_or(InvalidSpan::TraceId {
        index,
        len: trace_id.len(),
    })?;
    let span = valid_span_id(span_id).ok_or(InvalidSpan::SpanId {
        index,
        len: span_id.len(),
    })?;
    let parent = match parent_span_id.len() {
        0 => None,
        // An all-zero parent is how some clients write "no parent".
        _ => match SpanId::from_slice(parent_span_id) {
            Some(parent) => (!parent.is_zero()).then_some(parent),
            None => {
                return Err(InvalidSpan::ParentSpanId {
                    index,
                    len: parent_span_id.len(),
                });
            }
        },
    };
    Ok((trace, span, parent))
}

fn span_from_otlp(
    span: pb::Span,
    index: usize,
    resource: &Arc<model::Resource>,
    scope: &Arc<model::Scope>,
) -> Result<model::Span, InvalidSpan> {
    let (trace_id, span_id, parent_span_id) =
        span_ids(&span.trace_id, &span.span_id, &span.parent_span_id, index)?;
    let links = span
        .links
        .into_iter()
        .enumerate()
        .map(|(link_index, link)| {
            let invalid = InvalidSpan::LinkId {
                index,
                link: link_index,
            };
            Ok(model::Link {
                trace_id: TraceId::from_slice(&link.trace_id).ok_or(invalid.clone())?,
                span_id: SpanId::from_slice(&link.span_id).ok_or(invalid)?,
                trace_state: link.trace_state,
                flags: link.flags,
                attributes: attributes_from_otlp(link.attributes),
                dropped_attributes_count: link.dropped_attributes_count,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let status = span.status.unwrap_or_default();
    Ok(model::Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        resource: resource.clone(),
        scope: scope.clone(),
        name: span.name,
        kind: model::SpanKind::from_i32(span.kind),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        status: model::Status {
            code: model::StatusCode::from_i32(status.code),
            message: status.message,
        },
        attributes: attributes_from_otlp(span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .into_iter()
            .map(|e| model::Event {
                name: e.name,
                time_unix_nano: e.time_unix_nano,
                attributes: attributes_from_otlp(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count: span.dropped_links_count,
    })
}

pub fn attributes_from_otlp(attributes: Vec<pb_common::KeyValue>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: kv.value.map(value_from_otlp).unwrap_or(AnyValue::Empty),
        })
        .collect()
}

fn value_from_otlp(value: pb_common::AnyValue) -> AnyValue {
    use pb_common::any_value::Value;
    match value.value {
        None => AnyValue::Empty,
        Some(Value::StringValue(s)) => AnyValue::String(s),
        Some(Value::BoolValue(b)) => AnyValue::Bool(b),
        Some(Value::IntValue(i)) => AnyValue::Int(i),
        Some(Value::DoubleValue(d)) => AnyValue::Double(d),
        Some(Value::BytesValue(b)) => AnyValue::Bytes(b),
        Some(Value::ArrayValue(array)) => {
            AnyValue::Array(array.values.into_iter().map(value_from_otlp).collect())
        }
        Some(Value::KvlistValue(list)) => AnyValue::KvList(attributes_from_otlp(list.values)),
        // String-table indexes belong to the profiles signal and never appear in traces.
        Some(Value::StringValueStrindex(_)) => AnyValue::Empty,
    }
}
