//! How model values become stored bytes: a span as its OTLP protobuf
//! encoding, resources and scopes as OTLP messages keyed by a stable hash,
//! and attributes as search tokens. Reading goes back through
//! `otelite_exporter::convert::from_otlp`, the one OTLP → model path.

use crate::analyze::{AnalyzedSpan, SpanFacts};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use otelite_exporter::convert;
use otelite_exporter::model::{AnyValue, KeyValue, Resource, Scope, Span};
use std::sync::Arc;

/// A span ready for the writer: everything encoded beforehand, on the
/// request's thread, so that the single writer thread only inserts.
#[derive(Debug)]
pub struct SpanRow {
    pub facts: SpanFacts,
    pub scope: Arc<Scope>,
    pub kind: i32,
    pub status_code: i32,
    pub body: Vec<u8>,
    pub tokens: String,
}

impl SpanRow {
    pub fn new(analyzed: AnalyzedSpan) -> Self {
        let AnalyzedSpan { facts, span } = analyzed;
        Self {
            scope: span.scope.clone(),
            kind: span.kind.as_i32(),
            status_code: span.status.code.as_i32(),
            body: span_body(&span),
            tokens: span_tokens(&span),
            facts,
        }
    }
}
use prost::Message;

pub fn span_body(span: &Span) -> Vec<u8> {
    convert::span_to_otlp(span).encode_to_vec()
}

/// A resource (with its schema URL) as an empty `ResourceSpans`.
pub fn resource_body(resource: &Resource) -> Vec<u8> {
    convert::resource_to_otlp(resource).encode_to_vec()
}

/// A scope (with its schema URL) as an empty `ScopeSpans`.
pub fn scope_body(scope: &Scope) -> Vec<u8> {
    convert::scope_to_otlp(scope).encode_to_vec()
}

pub fn decode_resource(body: &[u8]) -> Result<ResourceSpans, prost::DecodeError> {
    ResourceSpans::decode(body)
}

pub fn decode_scope(body: &[u8]) -> Result<ScopeSpans, prost::DecodeError> {
    ScopeSpans::decode(body)
}

/// 64-bit FNV-1a: stable across builds and platforms, unlike std's hasher,
/// which matters because these hashes are persisted.
pub fn stable_hash(parts: &[&[u8]]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// The search token of one `key = value` pair: the pair's hash in hex behind
/// a letter, one word for FTS5's tokenizer whatever the text holds.
pub fn attribute_token(key: &str, value: &str) -> String {
    format!(
        "a{:016x}",
        stable_hash(&[key.as_bytes(), value.as_bytes()]) as u64
    )
}

/// The text a search matches an attribute value against: strings as they
/// are, numbers and booleans as written in JSON. Arrays, maps and bytes are
/// not searchable.
pub fn searchable_text(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::String(s) => Some(s.clone()),
        AnyValue::Bool(b) => Some(b.to_string()),
        AnyValue::Int(i) => Some(i.to_string()),
        AnyValue::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

/// All search tokens of a span's own attributes.
pub fn span_tokens(span: &Span) -> String {
    attribute_tokens(&span.attributes)
}

/// The search tokens of a list of attributes, space-separated.
pub fn attribute_tokens(attributes: &[KeyValue]) -> String {
    let mut tokens = String::with_capacity(18 * attributes.len());
    for KeyValue { key, value } in attributes {
        if let Some(text) = searchable_text(value) {
            tokens.push_str(&attribute_token(key, &text));
            tokens.push(' ');
        }
    }
    tokens
}
