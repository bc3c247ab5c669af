//! SDK spans → the protobuf bytes of an OTLP `ExportTraceServiceRequest`,
//! written straight from `SpanData`: the exporter's hot path.
//!
//! Going through the model first (`SdkConverter::convert`, then
//! `otelite_model::encode::encode_request`) allocated a model span, its
//! attribute and event lists and a `String` per `&'static str` key, only to
//! free them after encoding; that was about a third of the exporter's CPU
//! per span. The bytes written here are exactly the bytes of that path for
//! the same spans (the tests check it on generated spans), so the two stay
//! in step: the resource and scopes still go through the model (once per
//! exporter and once per scope of a batch), and spans, events, links and
//! attributes map field by field as `SdkConverter` maps them.

use crate::convert::{self, SdkConverter, nanos, remote_bits};
use crate::model::wire::{
    FIXED64, LEN, VARINT, bytes_field_always, fixed_field_len, fixed32_field, fixed64_field, int32,
    key, key_len, len_field, str_field, str_field_len, varint, varint_field, varint_field_len,
    varint_len,
};
use crate::model::{self, otlp};
use opentelemetry::trace::{Event, Link, SpanKind, Status};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use prost::Message;
use std::borrow::Cow;

/// The request's fixed parts for one resource, encoded once: the
/// `Resource` message and the `ResourceSpans.schema_url`.
#[derive(Debug, Clone, Default)]
pub struct EncodedResource {
    resource: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub fn new(resource: &model::Resource) -> Self {
        let resource_spans = otlp::resource_to_otlp(resource);
        Self {
            resource: resource_spans
                .resource
                .map(|r| r.encode_to_vec())
                .unwrap_or_default(),
            schema_url: resource_spans.schema_url,
        }
    }
}

/// Spans of one scope: the scope's `InstrumentationScope` message and the
/// batch indexes of its spans.
struct ScopeGroup {
    scope: model::Scope,
    encoded: Vec<u8>,
    spans: Vec<usize>,
}

/// What each span needs again when it is written: its size and trace state
/// (rendered once: `TraceState::header` allocates when it is not empty).
struct Sized {
    len: usize,
    trace_state: String,
}

/// Appends the request for `batch` to `buf`: one `ResourceSpans` with the
/// converter's resource, scopes in order of first appearance, as
/// `encode_request(&converter.convert(batch), buf)` would.
pub fn encode_request(converter: &SdkConverter, batch: &[SpanData], buf: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    let resource = converter.encoded_resource();
    let groups = group_by_scope(batch);
    let sized: Vec<Sized> = batch.iter().map(sized).collect();
    let scope_lens: Vec<usize> = groups
        .iter()
        .map(|group| {
            len_field(1, group.encoded.len())
                + group
                    .spans
                    .iter()
                    .map(|&i| len_field(2, sized[i].len))
                    .sum::<usize>()
                + str_field_len(3, &group.scope.schema_url)
        })
        .collect();
    // ResourceSpans { resource = 1, scope_spans = 2, schema_url = 3 }.
    let len = len_field(1, resource.resource.len())
        + scope_lens
            .iter()
            .map(|len| len_field(2, *len))
            .sum::<usize>()
        + str_field_len(3, &resource.schema_url);
    buf.reserve(len_field(1, len));
    key(buf, 1, LEN);
    varint(buf, len as u64);
    bytes_field_always(buf, 1, &resource.resource);
    for (group, scope_len) in groups.iter().zip(scope_lens) {
        // ScopeSpans { scope = 1, spans = 2, schema_url = 3 }.
        key(buf, 2, LEN);
        varint(buf, scope_len as u64);
        bytes_field_always(buf, 1, &group.encoded);
        for &i in &group.spans {
            key(buf, 2, LEN);
            varint(buf, sized[i].len as u64);
            write_span(buf, &batch[i], &sized[i].trace_state);
        }
        str_field(buf, 3, &group.scope.schema_url);
    }
    str_field(buf, 3, &resource.schema_url);
}

/// Groups spans by scope as the model path does: consecutive spans with an
/// equal SDK scope share one, others are grouped by equal model scopes.
fn group_by_scope(batch: &[SpanData]) -> Vec<ScopeGroup> {
    let mut groups: Vec<ScopeGroup> = Vec::new();
    let mut last: Option<(&opentelemetry::InstrumentationScope, usize)> = None;
    for (i, data) in batch.iter().enumerate() {
        let group = match last {
            Some((sdk, group)) if *sdk == data.instrumentation_scope => group,
            _ => {
                let scope = convert::scope(&data.instrumentation_scope);
                let group = match groups.iter().position(|g| g.scope == scope) {
                    Some(group) => group,
                    None => {
                        let encoded = otlp::scope_to_otlp(&scope)
                            .scope
                            .map(|s| s.encode_to_vec())
                            .unwrap_or_default();
                        groups.push(ScopeGroup {
                            scope,
                            encoded,
                            spans: Vec::new(),
                        });
                        groups.len() - 1
                    }
                };
                last = Some((&data.instrumentation_scope, group));
                group
            }
        };
        groups[group].spans.push(i);
    }
    groups
}

fn sized(data: &SpanData) -> Sized {
    let trace_state = data.span_context.trace_state().header();
    Sized {
        len: span_len(data, &trace_state),
        trace_state,
    }
}

// ------------------------------------------------ the model's field values

fn kind(kind: &SpanKind) -> i32 {
    convert::kind(kind).as_i32()
}

fn flags(data: &SpanData) -> u32 {
    u32::from(data.span_context.trace_flags().to_u8()) | remote_bits(data.parent_span_is_remote)
}

fn link_flags(link: &Link) -> u32 {
    let context = &link.span_context;
    u32::from(context.trace_flags().to_u8()) | remote_bits(context.is_remote())
}

/// The `Status` message when it is present: (message, code), as the model
/// path writes it (absent only for `Unset`).
fn status(status: &Status) -> Option<(&str, i32)> {
    match status {
        Status::Unset => None,
        Status::Ok => Some(("", model::StatusCode::Ok.as_i32())),
        Status::Error { description } => {
            Some((description.as_ref(), model::StatusCode::Error.as_i32()))
        }
    }
}

/// A value as the model's `AnyValue` carries it: scalars, arrays of
/// scalars, and any other value as its text.
enum Any<'a> {
    Bool(bool),
    Int(i64),
    Double(f64),
    String(Cow<'a, str>),
    Array(&'a Array),
}

fn any(value: &Value) -> Any<'_> {
    match value {
        Value::Bool(b) => Any::Bool(*b),
        Value::I64(i) => Any::Int(*i),
        Value::F64(f) => Any::Double(*f),
        Value::String(s) => Any::String(Cow::Borrowed(s.as_str())),
        Value::Array(
            array @ (Array::Bool(_) | Array::I64(_) | Array::F64(_) | Array::String(_)),
        ) => Any::Array(array),
        // Non-exhaustive types: kept as text, as `SdkConverter` keeps them.
        other => Any::String(Cow::Owned(other.to_string())),
    }
}

// ------------------------------------------------------------------ sizes

/// The `AnyValue` message's size (one `oneof` field, always written).
fn any_len(value: &Any<'_>) -> usize {
    match value {
        Any::Bool(b) => key_len(2) + varint_len(u64::from(*b)),
        Any::Int(i) => key_len(3) + varint_len(*i as u64),
        Any::Double(_) => key_len(4) + 8,
        Any::String(s) => len_field(1, s.len()),
        Any::Array(array) => len_field(5, array_len(array)),
    }
}

/// The `ArrayValue` message's size: `values = 1`, each an `AnyValue`.
fn array_len(array: &Array) -> usize {
    let element = |value: Any<'_>| len_field(1, any_len(&value));
    match array {
        Array::Bool(v) => v.iter().map(|b| element(Any::Bool(*b))).sum(),
        Array::I64(v) => v.iter().map(|i| element(Any::Int(*i))).sum(),
        Array::F64(v) => v.iter().map(|f| element(Any::Double(*f))).sum(),
        Array::String(v) => v
            .iter()
            .map(|s| element(Any::String(Cow::Borrowed(s.as_str()))))
            .sum(),
        // `any` lets no other array through.
        _ => 0,
    }
}

fn key_value_len(key: &str, value: &Any<'_>) -> usize {
    str_field_len(1, key) + len_field(2, any_len(value))
}

fn attributes_len(tag: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| len_field(tag, key_value_len(kv.key.as_str(), &any(&kv.value))))
        .sum()
}

fn event_len(event: &Event) -> usize {
    fixed_field_len(1, nanos(event.timestamp) == 0, 8)
        + str_field_len(2, &event.name)
        + attributes_len(3, &event.attributes)
        + varint_field_len(4, u64::from(event.dropped_attributes_count))
}

fn link_len(link: &Link, trace_state: &str) -> usize {
    len_field(1, 16)
        + len_field(2, 8)
        + str_field_len(3, trace_state)
        + attributes_len(4, &link.attributes)
        + varint_field_len(5, u64::from(link.dropped_attributes_count))
        + fixed_field_len(6, link_flags(link) == 0, 4)
}

fn status_len(message: &str, code: i32) -> usize {
    str_field_len(2, message) + varint_field_len(3, int32(code))
}

fn span_len(data: &SpanData, trace_state: &str) -> usize {
    let has_parent = data.parent_span_id != opentelemetry::trace::SpanId::INVALID;
    len_field(1, 16)
        + len_field(2, 8)
        + str_field_len(3, trace_state)
        + if has_parent { len_field(4, 8) } else { 0 }
        + str_field_len(5, &data.name)
        + varint_field_len(6, int32(kind(&data.span_kind)))
        + fixed_field_len(7, nanos(data.start_time) == 0, 8)
        + fixed_field_len(8, nanos(data.end_time) == 0, 8)
        + attributes_len(9, &data.attributes)
        + varint_field_len(10, u64::from(data.dropped_attributes_count))
        + data
            .events
            .iter()
            .map(|e| len_field(11, event_len(e)))
            .sum::<usize>()
        + varint_field_len(12, u64::from(data.events.dropped_count))
        + data
            .links
            .iter()
            .map(|l| len_field(13, link_len(l, &l.span_context.trace_state().header())))
            .sum::<usize>()
        + varint_field_len(14, u64::from(data.links.dropped_count))
        + status(&data.status).map_or(0, |(m, c)| len_field(15, status_len(m, c)))
        + fixed_field_len(16, flags(data) == 0, 4)
}

// ---------------------------------------------------------------- writing

/// The `AnyValue` message's content.
fn write_any(buf: &mut Vec<u8>, value: &Any<'_>) {
    match value {
        Any::Bool(b) => {
            key(buf, 2, VARINT);
            varint(buf, u64::from(*b));
        }
        Any::Int(i) => {
            key(buf, 3, VARINT);
            varint(buf, *i as u64);
        }
        Any::Double(d) => {
            key(buf, 4, FIXED64);
            buf.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Any::String(s) => bytes_field_always(buf, 1, s.as_bytes()),
        Any::Array(array) => {
            key(buf, 5, LEN);
            varint(buf, array_len(array) as u64);
            write_array(buf, array);
        }
    }
}

fn write_array(buf: &mut Vec<u8>, array: &Array) {
    let mut element = |value: Any<'_>| {
        key(buf, 1, LEN);
        varint(buf, any_len(&value) as u64);
        write_any(buf, &value);
    };
    match array {
        Array::Bool(v) => v.iter().for_each(|b| element(Any::Bool(*b))),
        Array::I64(v) => v.iter().for_each(|i| element(Any::Int(*i))),
        Array::F64(v) => v.iter().for_each(|f| element(Any::Double(*f))),
        Array::String(v) => v
            .iter()
            .for_each(|s| element(Any::String(Cow::Borrowed(s.as_str())))),
        // `any` lets no other array through.
        _ => {}
    }
}

fn write_attributes(buf: &mut Vec<u8>, tag: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        let (name, value) = (kv.key.as_str(), any(&kv.value));
        key(buf, tag, LEN);
        varint(buf, key_value_len(name, &value) as u64);
        str_field(buf, 1, name);
        key(buf, 2, LEN);
        varint(buf, any_len(&value) as u64);
        write_any(buf, &value);
    }
}

fn write_event(buf: &mut Vec<u8>, event: &Event) {
    key(buf, 11, LEN);
    varint(buf, event_len(event) as u64);
    fixed64_field(buf, 1, nanos(event.timestamp));
    str_field(buf, 2, &event.name);
    write_attributes(buf, 3, &event.attributes);
    varint_field(buf, 4, u64::from(event.dropped_attributes_count));
}

fn write_link(buf: &mut Vec<u8>, link: &Link) {
    let context = &link.span_context;
    let trace_state = context.trace_state().header();
    key(buf, 13, LEN);
    varint(buf, link_len(link, &trace_state) as u64);
    bytes_field_always(buf, 1, &context.trace_id().to_bytes());
    bytes_field_always(buf, 2, &context.span_id().to_bytes());
    str_field(buf, 3, &trace_state);
    write_attributes(buf, 4, &link.attributes);
    varint_field(buf, 5, u64::from(link.dropped_attributes_count));
    fixed32_field(buf, 6, link_flags(link));
}

/// One `Span` message's content (its key and length are the caller's).
fn write_span(buf: &mut Vec<u8>, data: &SpanData, trace_state: &str) {
    let context = &data.span_context;
    bytes_field_always(buf, 1, &context.trace_id().to_bytes());
    bytes_field_always(buf, 2, &context.span_id().to_bytes());
    str_field(buf, 3, trace_state);
    if data.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        bytes_field_always(buf, 4, &data.parent_span_id.to_bytes());
    }
    str_field(buf, 5, &data.name);
    varint_field(buf, 6, int32(kind(&data.span_kind)));
    fixed64_field(buf, 7, nanos(data.start_time));
    fixed64_field(buf, 8, nanos(data.end_time));
    write_attributes(buf, 9, &data.attributes);
    varint_field(buf, 10, u64::from(data.dropped_attributes_count));
    for event in data.events.iter() {
        write_event(buf, event);
    }
    varint_field(buf, 12, u64::from(data.events.dropped_count));
    for link in data.links.iter() {
        write_link(buf, link);
    }
    varint_field(buf, 14, u64::from(data.links.dropped_count));
    if let Some((message, code)) = status(&data.status) {
        key(buf, 15, LEN);
        varint(buf, status_len(message, code) as u64);
        str_field(buf, 2, message);
        varint_field(buf, 3, int32(code));
    }
    fixed32_field(buf, 16, flags(data));
}

#[cfg(test)]
mod tests;
