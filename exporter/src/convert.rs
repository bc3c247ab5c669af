//! `SpanData` from the OpenTelemetry SDK → model spans; model → OTLP lives
//! in `otelite-model`. The exporter sends bytes `encode` writes straight
//! from `SpanData`; they must equal this conversion's, then the model's
//! encoding (`encode`'s tests check it).

use crate::encode::EncodedResource;
use crate::model::{self, AnyValue, KeyValue};
use opentelemetry::trace::{self as api, SpanKind};
use opentelemetry_sdk::trace::SpanData;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// OTLP span flag bits: the parent's is-remote is known, and its value.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// Converts SDK spans, holding the resource the SDK handed to the exporter
/// and reusing one `Arc<Scope>` while consecutive spans share a scope.
#[derive(Debug, Clone)]
pub struct SdkConverter {
    resource: Arc<model::Resource>,
    /// The resource as the request encodes it, once per resource.
    encoded_resource: Arc<EncodedResource>,
}

impl SdkConverter {
    pub fn new(resource: &opentelemetry_sdk::Resource) -> Self {
        let attributes = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.as_str(), value(v)))
            .collect();
        let schema_url = resource.schema_url().unwrap_or_default().to_owned();
        let resource = model::Resource::new(attributes, 0, schema_url);
        Self {
            encoded_resource: Arc::new(EncodedResource::new(&resource)),
            resource: Arc::new(resource),
        }
    }

    pub fn resource(&self) -> &Arc<model::Resource> {
        &self.resource
    }

    pub fn encoded_resource(&self) -> &EncodedResource {
        &self.encoded_resource
    }

    pub fn convert(&self, batch: Vec<SpanData>) -> Vec<model::Span> {
        let mut last_scope: Option<(opentelemetry::InstrumentationScope, Arc<model::Scope>)> = None;
        batch
            .into_iter()
            .map(|data| {
                let scope = match &last_scope {
                    Some((sdk, ours)) if *sdk == data.instrumentation_scope => ours.clone(),
                    _ => {
                        let ours = Arc::new(scope(&data.instrumentation_scope));
                        last_scope = Some((data.instrumentation_scope.clone(), ours.clone()));
                        ours
                    }
                };
                self.span(data, scope)
            })
            .collect()
    }

    fn span(&self, data: SpanData, scope: Arc<model::Scope>) -> model::Span {
        let context = &data.span_context;
        let parent = model::SpanId(data.parent_span_id.to_bytes());
        let (status_code, status_message) = match data.status {
            api::Status::Unset => (model::StatusCode::Unset, String::new()),
            api::Status::Ok => (model::StatusCode::Ok, String::new()),
            api::Status::Error { description } => {
                (model::StatusCode::Error, description.into_owned())
            }
        };
        model::Span {
            trace_id: model::TraceId(context.trace_id().to_bytes()),
            span_id: model::SpanId(context.span_id().to_bytes()),
            parent_span_id: (!parent.is_zero()).then_some(parent),
            trace_state: context.trace_state().header(),
            flags: u32::from(context.trace_flags().to_u8())
                | remote_bits(data.parent_span_is_remote),
            resource: self.resource.clone(),
            scope,
            name: data.name.into_owned(),
            kind: kind(&data.span_kind),
            start_time_unix_nano: nanos(data.start_time),
            end_time_unix_nano: nanos(data.end_time),
            status: model::Status {
                code: status_code,
                message: status_message,
            },
            attributes: attributes(data.attributes),
            dropped_attributes_count: data.dropped_attributes_count,
            events: data.events.events.into_iter().map(event).collect(),
            dropped_events_count: data.events.dropped_count,
            links: data.links.links.into_iter().map(link).collect(),
            dropped_links_count: data.links.dropped_count,
        }
    }
}

pub(crate) fn scope(scope: &opentelemetry::InstrumentationScope) -> model::Scope {
    model::Scope {
        name: scope.name().to_owned(),
        version: scope.version().unwrap_or_default().to_owned(),
        attributes: scope
            .attributes()
            .map(|kv| KeyValue::new(kv.key.as_str(), value(&kv.value)))
            .collect(),
        dropped_attributes_count: 0,
        schema_url: scope.schema_url().unwrap_or_default().to_owned(),
    }
}

/// The OTLP flag bits for a parent's (or a link's) is-remote, always known here.
pub(crate) fn remote_bits(is_remote: bool) -> u32 {
    if is_remote {
        HAS_IS_REMOTE | IS_REMOTE
    } else {
        HAS_IS_REMOTE
    }
}

fn event(event: opentelemetry::trace::Event) -> model::Event {
    model::Event {
        name: event.name.into_owned(),
        time_unix_nano: nanos(event.timestamp),
        attributes: attributes(event.attributes),
        dropped_attributes_count: event.dropped_attributes_count,
    }
}

fn link(link: opentelemetry::trace::Link) -> model::Link {
    let context = &link.span_context;
    model::Link {
        trace_id: model::TraceId(context.trace_id().to_bytes()),
        span_id: model::SpanId(context.span_id().to_bytes()),
        trace_state: context.trace_state().header(),
        flags: u32::from(context.trace_flags().to_u8()) | remote_bits(context.is_remote()),
        attributes: attributes(link.attributes),
        dropped_attributes_count: link.dropped_attributes_count,
    }
}

/// Takes the SDK's attributes by value: owned strings (`String` values,
/// formatted keys) move into the model instead of being copied.
fn attributes(attributes: Vec<opentelemetry::KeyValue>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key.into(),
            value: owned_value(kv.value),
        })
        .collect()
}

/// `value` for a value the converter owns (span, event and link attributes).
fn owned_value(value: opentelemetry::Value) -> AnyValue {
    use opentelemetry::{Array, Value};
    match value {
        Value::String(s) => AnyValue::String(s.into()),
        Value::Array(Array::String(v)) => {
            AnyValue::Array(v.into_iter().map(|s| AnyValue::String(s.into())).collect())
        }
        other => self::value(&other),
    }
}

fn value(value: &opentelemetry::Value) -> AnyValue {
    use opentelemetry::{Array, Value};
    match value {
        Value::Bool(b) => AnyValue::Bool(*b),
        Value::I64(i) => AnyValue::Int(*i),
        Value::F64(f) => AnyValue::Double(*f),
        Value::String(s) => AnyValue::String(s.as_str().to_owned()),
        Value::Array(Array::Bool(v)) => {
            AnyValue::Array(v.iter().map(|b| AnyValue::Bool(*b)).collect())
        }
        Value::Array(Array::I64(v)) => {
            AnyValue::Array(v.iter().map(|i| AnyValue::Int(*i)).collect())
        }
        Value::Array(Array::F64(v)) => {
            AnyValue::Array(v.iter().map(|f| AnyValue::Double(*f)).collect())
        }
        Value::Array(Array::String(v)) => AnyValue::Array(
            v.iter()
                .map(|s| AnyValue::String(s.as_str().to_owned()))
                .collect(),
        ),
        // The API's value types are non-exhaustive; keep what we cannot type as text.
        other => AnyValue::String(other.to_string()),
    }
}

pub(crate) fn kind(kind: &SpanKind) -> model::SpanKind {
    match kind {
        SpanKind::Internal => model::SpanKind::Internal,
        SpanKind::Server => model::SpanKind::Server,
        SpanKind::Client => model::SpanKind::Client,
        SpanKind::Producer => model::SpanKind::Producer,
        SpanKind::Consumer => model::SpanKind::Consumer,
    }
}

pub(crate) fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
