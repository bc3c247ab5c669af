//! OTLP protobuf bytes → model spans in one pass, without the prost
//! request types in between: the same result as `prost::Message::decode`
//! then `otlp::from_otlp`, for less work on ingest's hot path (no `Vec`
//! per id, no second vector per attribute list, no pass over the decoded
//! request to move it into the model).
//!
//! Valid protobuf the prost types accept is accepted here with the same
//! meaning: fields in any order, unknown fields skipped, a repeated
//! singular field's last value winning (and a repeated message merged into
//! the first), attribute values nested at most 100 deep (prost's limit
//! counts from the request, so it stops a few levels sooner). One
//! leniency: `Resource.entity_refs` is skipped unread, where prost would
//! refuse a malformed one.

use crate::otlp::{InvalidSpan, SpansFromOtlp, span_ids};
use crate::span::{self as model, AnyValue, KeyValue, SpanId, TraceId};
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use std::sync::Arc;

/// How deep attribute values may nest, as prost's own limit.
const RECURSION_LIMIT: u32 = 100;
/// How deep each attribute list's `KeyValue` messages sit below the
/// request, counted as prost counts nested messages toward its recursion
/// limit: a value this decoder takes is one prost decodes too, as the
/// store does when it reads spans back. Request → ResourceSpans → Resource
/// → KeyValue; → ScopeSpans → InstrumentationScope → KeyValue; → Span →
/// KeyValue; → Event or Link → KeyValue.
const RESOURCE_ATTRIBUTE: u32 = 3;
const SCOPE_ATTRIBUTE: u32 = 4;
const SPAN_ATTRIBUTE: u32 = 4;
const EVENT_ATTRIBUTE: u32 = 5;

/// Why the bytes are not an `ExportTraceServiceRequest`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Prost(#[from] prost::DecodeError),
    #[error("a field runs past the end of its message")]
    Truncated,
    #[error("a field has wire type {found:?}, expected {expected:?}")]
    WireType { found: WireType, expected: WireType },
    #[error("a string field is not UTF-8")]
    NotUtf8,
    #[error("attribute values nest deeper than the recursion limit ({RECURSION_LIMIT} levels)")]
    TooDeep,
}

/// An `ExportTraceServiceRequest` in protobuf → its valid spans as model
/// spans, and the invalid ones listed (see `otlp::from_otlp`).
pub fn from_protobuf(mut bytes: &[u8]) -> Result<SpansFromOtlp, DecodeError> {
    let mut out = SpansFromOtlp::default();
    let mut index = 0;
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => resource_spans(message(&mut bytes, wire)?, &mut out, &mut index)?,
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok(out)
}

/// One `ResourceSpans`: its resource and schema first (they may come after
/// the spans on the wire), then its scopes' spans.
fn resource_spans(
    bytes: &[u8],
    out: &mut SpansFromOtlp,
    index: &mut usize,
) -> Result<(), DecodeError> {
    let mut resource = ResourceFields::default();
    let mut schema_url = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tag, wire) = decode_key(&mut rest)?;
        match tag {
            1 => resource.merge(message(&mut rest, wire)?)?,
            3 => schema_url = string(&mut rest, wire)?,
            _ => skip(&mut rest, tag, wire)?,
        }
    }
    let resource = Arc::new(model::Resource::new(
        resource.attributes,
        resource.dropped_attributes_count,
        schema_url,
    ));
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tag, wire) = decode_key(&mut rest)?;
        match tag {
            2 => scope_spans(message(&mut rest, wire)?, &resource, out, index)?,
            _ => skip(&mut rest, tag, wire)?,
        }
    }
    Ok(())
}

#[derive(Default)]
struct ResourceFields {
    attributes: Vec<KeyValue>,
    dropped_attributes_count: u32,
}

impl ResourceFields {
    fn merge(&mut self, mut bytes: &[u8]) -> Result<(), DecodeError> {
        while !bytes.is_empty() {
            let (tag, wire) = decode_key(&mut bytes)?;
            match tag {
                1 => self
                    .attributes
                    .push(key_value(&mut bytes, wire, RESOURCE_ATTRIBUTE)?),
                2 => self.dropped_attributes_count = uint32(&mut bytes, wire)?,
                _ => skip(&mut bytes, tag, wire)?,
            }
        }
        Ok(())
    }
}

/// One `ScopeSpans`: its scope and schema first, then its spans.
fn scope_spans(
    bytes: &[u8],
    resource: &Arc<model::Resource>,
    out: &mut SpansFromOtlp,
    index: &mut usize,
) -> Result<(), DecodeError> {
    let mut scope = model::Scope::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tag, wire) = decode_key(&mut rest)?;
        match tag {
            1 => merge_scope(&mut scope, message(&mut rest, wire)?)?,
            3 => scope.schema_url = string(&mut rest, wire)?,
            _ => skip(&mut rest, tag, wire)?,
        }
    }
    let scope = Arc::new(scope);
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tag, wire) = decode_key(&mut rest)?;
        match tag {
            2 => {
                match span(message(&mut rest, wire)?, *index, resource, &scope)? {
                    Ok(span) => out.spans.push(span),
                    Err(invalid) => {
                        out.rejected.push(invalid);
                        out.rejected_services.push(resource.service_name.clone());
                    }
                }
                *index += 1;
            }
            _ => skip(&mut rest, tag, wire)?,
        }
    }
    Ok(())
}

fn merge_scope(scope: &mut model::Scope, mut bytes: &[u8]) -> Result<(), DecodeError> {
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => scope.name = string(&mut bytes, wire)?,
            2 => scope.version = string(&mut bytes, wire)?,
            3 => scope
                .attributes
                .push(key_value(&mut bytes, wire, SCOPE_ATTRIBUTE)?),
            4 => scope.dropped_attributes_count = uint32(&mut bytes, wire)?,
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok(())
}

/// A span's ids as they came, checked once the whole span is read.
#[derive(Default)]
struct RawIds<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
}

/// One span: `Ok(Err(_))` when it is well-formed protobuf but not a valid
/// span (it is then listed, not stored).
fn span(
    mut bytes: &[u8],
    index: usize,
    resource: &Arc<model::Resource>,
    scope: &Arc<model::Scope>,
) -> Result<Result<model::Span, InvalidSpan>, DecodeError> {
    let mut ids = RawIds::default();
    let mut links: Vec<(&[u8], &[u8], model::Link)> = Vec::new();
    let mut span = model::Span {
        trace_id: TraceId::default(),
        span_id: SpanId::default(),
        parent_span_id: None,
        trace_state: String::new(),
        flags: 0,
        resource: resource.clone(),
        scope: scope.clone(),
        name: String::new(),
        kind: model::SpanKind::Unspecified,
        start_time_unix_nano: 0,
        end_time_unix_nano: 0,
        status: model::Status::default(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
    };
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => ids.trace_id = message(&mut bytes, wire)?,
            2 => ids.span_id = message(&mut bytes, wire)?,
            3 => span.trace_state = string(&mut bytes, wire)?,
            4 => ids.parent_span_id = message(&mut bytes, wire)?,
            5 => span.name = string(&mut bytes, wire)?,
            6 => span.kind = model::SpanKind::from_i32(int32(&mut bytes, wire)?),
            7 => span.start_time_unix_nano = fixed64(&mut bytes, wire)?,
            8 => span.end_time_unix_nano = fixed64(&mut bytes, wire)?,
            9 => span
                .attributes
                .push(key_value(&mut bytes, wire, SPAN_ATTRIBUTE)?),
            10 => span.dropped_attributes_count = uint32(&mut bytes, wire)?,
            11 => span.events.push(event(message(&mut bytes, wire)?)?),
            12 => span.dropped_events_count = uint32(&mut bytes, wire)?,
            13 => links.push(link(message(&mut bytes, wire)?)?),
            14 => span.dropped_links_count = uint32(&mut bytes, wire)?,
            15 => merge_status(&mut span.status, message(&mut bytes, wire)?)?,
            16 => span.flags = fixed32(&mut bytes, wire)?,
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    let (trace_id, span_id, parent_span_id) =
        match span_ids(ids.trace_id, ids.span_id, ids.parent_span_id, index) {
            Ok(ids) => ids,
            Err(invalid) => return Ok(Err(invalid)),
        };
    span.trace_id = trace_id;
    span.span_id = span_id;
    span.parent_span_id = parent_span_id;
    span.links.reserve_exact(links.len());
    for (link_index, (trace_id, span_id, mut link)) in links.into_iter().enumerate() {
        let invalid = InvalidSpan::LinkId {
            index,
            link: link_index,
        };
        let (Some(trace_id), Some(span_id)) =
            (TraceId::from_slice(trace_id), SpanId::from_slice(span_id))
        else {
            return Ok(Err(invalid));
        };
        link.trace_id = trace_id;
        link.span_id = span_id;
        span.links.push(link);
    }
    Ok(Ok(span))
}

fn event(mut bytes: &[u8]) -> Result<model::Event, DecodeError> {
    let mut event = model::Event {
        name: String::new(),
        time_unix_nano: 0,
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    };
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => event.time_unix_nano = fixed64(&mut bytes, wire)?,
            2 => event.name = string(&mut bytes, wire)?,
            3 => event
                .attributes
                .push(key_value(&mut bytes, wire, EVENT_ATTRIBUTE)?),
            4 => event.dropped_attributes_count = uint32(&mut bytes, wire)?,
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok(event)
}

/// A link, with its ids still raw (checked with the span's).
fn link(mut bytes: &[u8]) -> Result<(&[u8], &[u8], model::Link), DecodeError> {
    let (mut trace_id, mut span_id): (&[u8], &[u8]) = (&[], &[]);
    let mut link = model::Link {
        trace_id: TraceId::default(),
        span_id: SpanId::default(),
        trace_state: String::new(),
        flags: 0,
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    };
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => trace_id = message(&mut bytes, wire)?,
            2 => span_id = message(&mut bytes, wire)?,
            3 => link.trace_state = string(&mut bytes, wire)?,
            4 => link
                .attributes
                .push(key_value(&mut bytes, wire, EVENT_ATTRIBUTE)?),
            5 => link.dropped_attributes_count = uint32(&mut bytes, wire)?,
            6 => link.flags = fixed32(&mut bytes, wire)?,
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok((trace_id, span_id, link))
}

fn merge_status(status: &mut model::Status, mut bytes: &[u8]) -> Result<(), DecodeError> {
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            2 => status.message = string(&mut bytes, wire)?,
            3 => status.code = model::StatusCode::from_i32(int32(&mut bytes, wire)?),
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok(())
}

/// A `KeyValue` field at nesting `depth`.
fn key_value(bytes: &mut &[u8], wire: WireType, depth: u32) -> Result<KeyValue, DecodeError> {
    let mut body = message(bytes, wire)?;
    let mut kv = KeyValue {
        key: String::new(),
        value: AnyValue::Empty,
    };
    while !body.is_empty() {
        let (tag, wire) = decode_key(&mut body)?;
        match tag {
            1 => kv.key = string(&mut body, wire)?,
            2 => merge_value(&mut kv.value, message(&mut body, wire)?, depth + 1)?,
            _ => skip(&mut body, tag, wire)?,
        }
    }
    Ok(kv)
}

/// An `AnyValue` message merged into `value`: a scalar replaces it, an
/// array or list extends one of the same kind (protobuf's merge).
fn merge_value(value: &mut AnyValue, mut bytes: &[u8], depth: u32) -> Result<(), DecodeError> {
    if depth > RECURSION_LIMIT {
        return Err(DecodeError::TooDeep);
    }
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => *value = AnyValue::String(string(&mut bytes, wire)?),
            2 => *value = AnyValue::Bool(varint(&mut bytes, wire)? != 0),
            3 => *value = AnyValue::Int(varint(&mut bytes, wire)? as i64),
            4 => *value = AnyValue::Double(f64::from_bits(fixed64(&mut bytes, wire)?)),
            5 => {
                let body = message(&mut bytes, wire)?;
                let mut values = match std::mem::replace(value, AnyValue::Empty) {
                    AnyValue::Array(values) => values,
                    _ => Vec::new(),
                };
                array_values(body, &mut values, depth + 1)?;
                *value = AnyValue::Array(values);
            }
            6 => {
                let body = message(&mut bytes, wire)?;
                let mut values = match std::mem::replace(value, AnyValue::Empty) {
                    AnyValue::KvList(values) => values,
                    _ => Vec::new(),
                };
                list_values(body, &mut values, depth + 1)?;
                *value = AnyValue::KvList(values);
            }
            7 => *value = AnyValue::Bytes(message(&mut bytes, wire)?.to_vec()),
            // String-table indexes belong to the profiles signal (as in
            // `otlp::value_from_otlp`).
            8 => {
                varint(&mut bytes, wire)?;
                *value = AnyValue::Empty;
            }
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok(())
}

/// An `ArrayValue`'s elements, appended to `values`.
fn array_values(
    mut bytes: &[u8],
    values: &mut Vec<AnyValue>,
    depth: u32,
) -> Result<(), DecodeError> {
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => {
                let mut element = AnyValue::Empty;
                merge_value(&mut element, message(&mut bytes, wire)?, depth + 1)?;
                values.push(element);
            }
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok(())
}

/// A `KeyValueList`'s pairs, appended to `values`.
fn list_values(
    mut bytes: &[u8],
    values: &mut Vec<KeyValue>,
    depth: u32,
) -> Result<(), DecodeError> {
    while !bytes.is_empty() {
        let (tag, wire) = decode_key(&mut bytes)?;
        match tag {
            1 => values.push(key_value(&mut bytes, wire, depth + 1)?),
            _ => skip(&mut bytes, tag, wire)?,
        }
    }
    Ok(())
}

fn expect(wire: WireType, expected: WireType) -> Result<(), DecodeError> {
    if wire == expected {
        Ok(())
    } else {
        Err(DecodeError::WireType {
            found: wire,
            expected,
        })
    }
}

/// A length-delimited field's bytes (a message, `bytes` or a string),
/// borrowed from the input.
fn message<'a>(bytes: &mut &'a [u8], wire: WireType) -> Result<&'a [u8], DecodeError> {
    expect(wire, WireType::LengthDelimited)?;
    let len = decode_varint(bytes)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
    if len > bytes.len() {
        return Err(DecodeError::Truncated);
    }
    let (field, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(field)
}

fn string(bytes: &mut &[u8], wire: WireType) -> Result<String, DecodeError> {
    let field = message(bytes, wire)?;
    std::str::from_utf8(field)
        .map(str::to_owned)
        .map_err(|_| DecodeError::NotUtf8)
}

fn varint(bytes: &mut &[u8], wire: WireType) -> Result<u64, DecodeError> {
    expect(wire, WireType::Varint)?;
    Ok(decode_varint(bytes)?)
}

/// `int32` and enums: a varint, its low 32 bits (as prost reads them).
fn int32(bytes: &mut &[u8], wire: WireType) -> Result<i32, DecodeError> {
    Ok(varint(bytes, wire)? as i32)
}

fn uint32(bytes: &mut &[u8], wire: WireType) -> Result<u32, DecodeError> {
    Ok(varint(bytes, wire)? as u32)
}

fn fixed64(bytes: &mut &[u8], wire: WireType) -> Result<u64, DecodeError> {
    expect(wire, WireType::SixtyFourBit)?;
    let (field, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or(DecodeError::Truncated)?;
    *bytes = rest;
    Ok(u64::from_le_bytes(*field))
}

fn fixed32(bytes: &mut &[u8], wire: WireType) -> Result<u32, DecodeError> {
    expect(wire, WireType::ThirtyTwoBit)?;
    let (field, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or(DecodeError::Truncated)?;
    *bytes = rest;
    Ok(u32::from_le_bytes(*field))
}

fn skip(bytes: &mut &[u8], tag: u32, wire: WireType) -> Result<(), DecodeError> {
    Ok(skip_field(wire, tag, bytes, DecodeContext::default())?)
}

#[cfg(test)]
mod tests;
