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

/// Bytes of a string value that its prefix token keeps: longer prefixes
/// are matched on these and then checked against the span itself.
pub const PREFIX_BYTES: usize = 16;

/// The prefix token of a string attribute: the key's hash, then the
/// value's first bytes in hex, so that the token of a value starts with the
/// hex of any of its prefixes and an FTS5 prefix query (`token*`) finds it.
pub fn prefix_token(key: &str, value: &str) -> String {
    let head = &value.as_bytes()[..value.len().min(PREFIX_BYTES)];
    format!(
        "p{:016x}{}",
        stable_hash(&[key.as_bytes()]) as u64,
        hex::encode(head)
    )
}

/// An FTS5 query term matching every string value of `key` that starts
/// with `prefix` (a superset when the prefix is longer than `PREFIX_BYTES`).
pub fn prefix_query(key: &str, prefix: &str) -> String {
    let mut term = prefix_token(key, prefix);
    term.push('*');
    term
}

pub fn operation_token(name: &str) -> String {
    format!(
        "o{:016x}",
        stable_hash(&[b"operation", name.as_bytes()]) as u64
    )
}

pub fn kind_token(kind: i32) -> String {
    format!("k{kind}")
}

pub fn service_token(service: &str) -> String {
    format!(
        "s{:016x}",
        stable_hash(&[b"service", service.as_bytes()]) as u64
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

/// All search tokens of a span: its name, kind and own attributes.
pub fn span_tokens(span: &Span) -> String {
    let mut tokens = attribute_tokens(&span.attributes);
    tokens.push_str(&operation_token(&span.name));
    tokens.push(' ');
    tokens.push_str(&kind_token(span.kind.as_i32()));
    tokens
}

/// The search tokens of a list of attributes, space-separated: one per
/// searchable pair, and a prefix token per string.
pub fn attribute_tokens(attributes: &[KeyValue]) -> String {
    let mut tokens = String::with_capacity(40 * attributes.len());
    for KeyValue { key, value } in attributes {
        if let Some(text) = searchable_text(value) {
            tokens.push_str(&attribute_token(key, &text));
            tokens.push(' ');
        }
        if let AnyValue::String(text) = value {
            tokens.push_str(&prefix_token(key, text));
            tokens.push(' ');
        }
    }
    tokens
}
