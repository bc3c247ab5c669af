//! Model spans → the protobuf bytes of an OTLP `ExportTraceServiceRequest`,
//! written directly: the exporter's hot path. The bytes are exactly what
//! prost writes for `to_otlp(spans)` (a proptest checks it), without building
//! the request's structs first (an allocation per id, attribute list, value
//! and event) and with each span's size computed once instead of once per
//! nesting level.
//!
//! Field numbers and order follow `opentelemetry/proto/trace/v1/trace.proto`
//! and `common/v1/common.proto`; prost writes fields in field-number order,
//! skips proto3 defaults, and always writes a set `oneof` value.

use crate::otlp::{resource_to_otlp, scope_to_otlp};
use crate::span::{self as model, AnyValue, KeyValue};
use crate::wire::{
    FIXED64, LEN, VARINT, bytes_field_always, fixed_field_len, fixed32_field, fixed64_field, int32,
    key, key_len, len_field, str_field, str_field_len, varint, varint_field, varint_field_len,
    varint_len,
};
use prost::Message;
use std::sync::Arc;

/// Appends the encoded request for `spans` (grouped by resource and scope in
/// order of first appearance, as `to_otlp` groups them) to `buf`.
pub fn encode_request(spans: &[model::Span], buf: &mut Vec<u8>) {
    let groups = group(spans);
    // ResourceSpans { resource = 1, scope_spans = 2, schema_url = 3 }.
    for (resource, scopes) in &groups {
        let resource_spans = resource_to_otlp(resource);
        let pb_resource = resource_spans
            .resource
            .map(|r| r.encode_to_vec())
            .unwrap_or_default();
        let encoded_scopes: Vec<(Vec<u8>, usize)> = scopes
            .iter()
            .map(|(scope, spans)| {
                let pb_scope = scope_to_otlp(scope)
                    .scope
                    .map(|s| s.encode_to_vec())
                    .unwrap_or_default();
                let len = scope_spans_len(&pb_scope, scope, spans);
                (pb_scope, len)
            })
            .collect();
        let len = len_field(1, pb_resource.len())
            + encoded_scopes
                .iter()
                .map(|(_, len)| len_field(2, *len))
                .sum::<usize>()
            + str_field_len(3, &resource.schema_url);
        buf.reserve(len_field(1, len));
        key(buf, 1, LEN);
        varint(buf, len as u64);
        bytes_field_always(buf, 1, &pb_resource);
        for ((pb_scope, len), (scope, spans)) in encoded_scopes.iter().zip(scopes) {
            // ScopeSpans { scope = 1, spans = 2, schema_url = 3 }.
            key(buf, 2, LEN);
            varint(buf, *len as u64);
            bytes_field_always(buf, 1, pb_scope);
            for (span, span_len) in spans {
                key(buf, 2, LEN);
                varint(buf, *span_len as u64);
                write_span(buf, span);
            }
            str_field(buf, 3, &scope.schema_url);
        }
        str_field(buf, 3, &resource.schema_url);
    }
}

/// Appends one span as a `Span` message (no field key or length before it):
/// the bytes prost writes for `span_to_otlp(span)`. The backend stores spans
/// this way.
pub fn encode_span(span: &model::Span, buf: &mut Vec<u8>) {
    buf.reserve(span_len(span));
    write_span(buf, span);
}

/// Spans of one scope, each with its encoded size.
type ScopeGroup<'a> = (Arc<model::Scope>, Vec<(&'a model::Span, usize)>);

fn group(spans: &[model::Span]) -> Vec<(Arc<model::Resource>, Vec<ScopeGroup<'_>>)> {
    let mut groups: Vec<(Arc<model::Resource>, Vec<ScopeGroup<'_>>)> = Vec::new();
    for span in spans {
        let index = match groups.iter().position(|(r, _)| same(r, &span.resource)) {
            Some(index) => index,
            None => {
                groups.push((span.resource.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[index].1;
        let scope_index = match scopes.iter().position(|(s, _)| same(s, &span.scope)) {
            Some(i) => i,
            None => {
                scopes.push((span.scope.clone(), Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[scope_index].1.push((span, span_len(span)));
    }
    groups
}

fn same<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

fn scope_spans_len(
    pb_scope: &[u8],
    scope: &model::Scope,
    spans: &[(&model::Span, usize)],
) -> usize {
    len_field(1, pb_scope.len())
        + spans
            .iter()
            .map(|(_, len)| len_field(2, *len))
            .sum::<usize>()
        + str_field_len(3, &scope.schema_url)
}

// ------------------------------------------------------------------ sizes

fn any_value_len(value: &AnyValue) -> usize {
    match value {
        AnyValue::Empty => 0,
        AnyValue::String(s) => len_field(1, s.len()),
        AnyValue::Bool(b) => key_len(2) + varint_len(u64::from(*b)),
        AnyValue::Int(i) => key_len(3) + varint_len(*i as u64),
        AnyValue::Double(_) => key_len(4) + 8,
        AnyValue::Array(values) => len_field(
            5,
            values.iter().map(|v| len_field(1, any_value_len(v))).sum(),
        ),
        AnyValue::KvList(values) => len_field(6, attributes_len(1, values)),
        AnyValue::Bytes(b) => len_field(7, b.len()),
    }
}

fn key_value_len(kv: &KeyValue) -> usize {
    str_field_len(1, &kv.key) + len_field(2, any_value_len(&kv.value))
}

fn attributes_len(tag: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| len_field(tag, key_value_len(kv)))
        .sum()
}

fn event_len(event: &model::Event) -> usize {
    fixed_field_len(1, event.time_unix_nano == 0, 8)
        + str_field_len(2, &event.name)
        + attributes_len(3, &event.attributes)
        + varint_field_len(4, u64::from(event.dropped_attributes_count))
}

fn link_len(link: &model::Link) -> usize {
    len_field(1, link.trace_id.0.len())
        + len_field(2, link.span_id.0.len())
        + str_field_len(3, &link.trace_state)
        + attributes_len(4, &link.attributes)
        + varint_field_len(5, u64::from(link.dropped_attributes_count))
        + fixed_field_len(6, link.flags == 0, 4)
}

/// The `Status` message when it is present (as `span_to_otlp` decides).
fn status(span: &model::Span) -> Option<(&str, i32)> {
    match (span.status.code, span.status.message.is_empty()) {
        (model::StatusCode::Unset, true) => None,
        (code, _) => Some((&span.status.message, code.as_i32())),
    }
}

fn status_len(message: &str, code: i32) -> usize {
    str_field_len(2, message) + varint_field_len(3, int32(code))
}

fn span_len(span: &model::Span) -> usize {
    len_field(1, span.trace_id.0.len())
        + len_field(2, span.span_id.0.len())
        + str_field_len(3, &span.trace_state)
        + span.parent_span_id.map_or(0, |p| len_field(4, p.0.len()))
        + str_field_len(5, &span.name)
        + varint_field_len(6, int32(span.kind.as_i32()))
        + fixed_field_len(7, span.start_time_unix_nano == 0, 8)
        + fixed_field_len(8, span.end_time_unix_nano == 0, 8)
        + attributes_len(9, &span.attributes)
        + varint_field_len(10, u64::from(span.dropped_attributes_count))
        + span
            .events
            .iter()
            .map(|e| len_field(11, event_len(e)))
            .sum::<usize>()
        + varint_field_len(12, u64::from(span.dropped_events_count))
        + span
            .links
            .iter()
            .map(|l| len_field(13, link_len(l)))
            .sum::<usize>()
        + varint_field_len(14, u64::from(span.dropped_links_count))
        + status(span).map_or(0, |(m, c)| len_field(15, status_len(m, c)))
        + fixed_field_len(16, span.flags == 0, 4)
}

// ---------------------------------------------------------------- writing

fn write_any_value(buf: &mut Vec<u8>, value: &AnyValue) {
    match value {
        AnyValue::Empty => {}
        AnyValue::String(s) => bytes_field_always(buf, 1, s.as_bytes()),
        AnyValue::Bool(b) => {
            key(buf, 2, VARINT);
            varint(buf, u64::from(*b));
        }
        AnyValue::Int(i) => {
            key(buf, 3, VARINT);
            varint(buf, *i as u64);
        }
        AnyValue::Double(d) => {
            key(buf, 4, FIXED64);
            buf.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        AnyValue::Array(values) => {
            key(buf, 5, LEN);
            let len: usize = values.iter().map(|v| len_field(1, any_value_len(v))).sum();
            varint(buf, len as u64);
            for v in values {
                key(buf, 1, LEN);
                varint(buf, any_value_len(v) as u64);
                write_any_value(buf, v);
            }
        }
        AnyValue::KvList(values) => {
            key(buf, 6, LEN);
            varint(buf, attributes_len(1, values) as u64);
            write_attributes(buf, 1, values);
        }
        AnyValue::Bytes(b) => bytes_field_always(buf, 7, b),
    }
}

fn write_attributes(buf: &mut Vec<u8>, tag: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        key(buf, tag, LEN);
        varint(buf, key_value_len(kv) as u64);
        str_field(buf, 1, &kv.key);
        key(buf, 2, LEN);
        varint(buf, any_value_len(&kv.value) as u64);
        write_any_value(buf, &kv.value);
    }
}

fn write_span(buf: &mut Vec<u8>, span: &model::Span) {
    bytes_field_always(buf, 1, &span.trace_id.0);
    bytes_field_always(buf, 2, &span.span_id.0);
    str_field(buf, 3, &span.trace_state);
    if let Some(parent) = span.parent_span_id {
        bytes_field_always(buf, 4, &parent.0);
    }
    str_field(buf, 5, &span.name);
    varint_field(buf, 6, int32(span.kind.as_i32()));
    fixed64_field(buf, 7, span.start_time_unix_nano);
    fixed64_field(buf, 8, span.end_time_unix_nano);
    write_attributes(buf, 9, &span.attributes);
    varint_field(buf, 10, u64::from(span.dropped_attributes_count));
    for event in &span.events {
        key(buf, 11, LEN);
        varint(buf, event_len(event) as u64);
        fixed64_field(buf, 1, event.time_unix_nano);
        str_field(buf, 2, &event.name);
        write_attributes(buf, 3, &event.attributes);
        varint_field(buf, 4, u64::from(event.dropped_attributes_count));
    }
    varint_field(buf, 12, u64::from(span.dropped_events_count));
    for link in &span.links {
        key(buf, 13, LEN);
        varint(buf, link_len(link) as u64);
        bytes_field_always(buf, 1, &link.trace_id.0);
        bytes_field_always(buf, 2, &link.span_id.0);
        str_field(buf, 3, &link.trace_state);
        write_attributes(buf, 4, &link.attributes);
        varint_field(buf, 5, u64::from(link.dropped_attributes_count));
        fixed32_field(buf, 6, link.flags);
    }
    varint_field(buf, 14, u64::from(span.dropped_links_count));
    if let Some((message, code)) = status(span) {
        key(buf, 15, LEN);
        varint(buf, status_len(message, code) as u64);
        str_field(buf, 2, message);
        varint_field(buf, 3, int32(code));
    }
    fixed32_field(buf, 16, span.flags);
}
