//! How model values become stored bytes: a span as its OTLP protobuf
//! encoding, resources and scopes as OTLP messages keyed by a stable hash,
//! and attributes as search tokens. Reading goes back through
//! `otelite_model::otlp::from_otlp`, the one OTLP → model path.

use crate::analyze::{AnalyzedSpan, SpanFacts};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PbSpan};
use otelite_model::otlp;
use otelite_model::{AnyValue, KeyValue, Resource, Scope, Span};
use std::borrow::Cow;
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
    pub tokens: SearchTokens,
}

impl SpanRow {
    pub fn new(analyzed: AnalyzedSpan) -> Self {
        let AnalyzedSpan { facts, span } = analyzed;
        Self {
            scope: span.scope.clone(),
            kind: span.kind.as_i32(),
            status_code: span.status.code.as_i32(),
            // Stored without its ids, which the group's row holds (see `bare`).
            body: super::bare::strip_ids(&span_body(&span)),
            tokens: span_tokens(&span),
            facts,
        }
    }

    /// The stored body read back as a read of its group does it: decoded,
    /// with the ids the group's row holds put back (the fuzz oracle's view).
    pub fn read_back(&self) -> Result<PbSpan, prost::DecodeError> {
        let mut span = PbSpan::decode(&self.body[..])?;
        let parent = self.facts.parent_span_id.map_or([0; 8], |id| id.0);
        super::bare::restore_ids(
            std::slice::from_mut(&mut span),
            &self.facts.trace_id,
            &self.facts.span_id.0,
            &parent,
        )
        .expect("one span, one span id");
        Ok(span)
    }
}
use prost::Message;

/// Written straight from the model (no OTLP copy of the span is built).
pub fn span_body(span: &Span) -> Vec<u8> {
    let mut body = Vec::new();
    otelite_model::encode::encode_span(span, &mut body);
    body
}

/// A resource (with its schema URL) as an empty `ResourceSpans`.
pub fn resource_body(resource: &Resource) -> Vec<u8> {
    otlp::resource_to_otlp(resource).encode_to_vec()
}

/// A scope (with its schema URL) as an empty `ScopeSpans`.
pub fn scope_body(scope: &Scope) -> Vec<u8> {
    otlp::scope_to_otlp(scope).encode_to_vec()
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

/// Search tokens, space-separated, each with a hash of its text, so that the
/// writer merges a group's tokens by sorting integers instead of comparing
/// strings. Written on the request's thread, straight into one buffer of
/// ASCII bytes (tag letters, hex and decimal digits): kept as bytes so that
/// no token is checked for UTF-8 on its own; a document is checked once.
#[derive(Debug, Default, Clone)]
pub struct SearchTokens {
    text: Vec<u8>,
    /// (hash of the token's text, its start and end in `text`).
    marks: Vec<(u64, u32, u32)>,
}

impl SearchTokens {
    fn with_capacity(tokens: usize) -> Self {
        Self {
            text: Vec::with_capacity(40 * tokens),
            marks: Vec::with_capacity(tokens),
        }
    }

    /// Appends one token written by `write`.
    fn push(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if !self.text.is_empty() {
            self.text.push(b' ');
        }
        let start = self.text.len();
        write(&mut self.text);
        let end = self.text.len();
        let hash = token_hash(&self.text[start..end]);
        self.marks.push((hash, start as u32, end as u32));
    }

    /// Each token with its hash.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.marks
            .iter()
            .map(|&(hash, start, end)| (hash, &self.text[start as usize..end as usize]))
    }

    pub fn len(&self) -> usize {
        self.marks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// The tokens as one text, as FTS5 is given them.
    pub fn to_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.text)
    }
}

/// A fast in-memory hash of a token (never persisted, so not `stable_hash`).
fn token_hash(token: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(token)
}

/// Every byte as its two lowercase hex digits: one lookup per byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [HEX[byte >> 4], HEX[byte & 0xf]];
        byte += 1;
    }
    pairs
};

/// `bytes` as lowercase hex, two digits each.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(2 * bytes.len());
    for &byte in bytes {
        out.extend_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
}

/// Bytes of a token `push_hashed` writes: a tag letter and 16 hex digits.
pub const HASHED_TOKEN_BYTES: usize = 17;

/// Writes a tag letter and a 64-bit hash in hex: one word for FTS5's
/// tokenizer whatever the hashed text holds.
fn push_hashed(out: &mut Vec<u8>, tag: u8, hash: i64) {
    out.push(tag);
    push_hex(out, &hash.to_be_bytes());
}

fn push_attribute_token(out: &mut Vec<u8>, key: &str, value: &str) {
    push_hashed(out, b'a', stable_hash(&[key.as_bytes(), value.as_bytes()]));
}

/// A token written by `push` as a `String`, for queries.
fn token(capacity: usize, push: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut token = Vec::with_capacity(capacity);
    push(&mut token);
    ascii_text(token)
}

/// Tokens as text: they are ASCII, so this checks them in one pass and
/// neither copies nor replaces anything.
pub fn ascii_text(tokens: Vec<u8>) -> String {
    String::from_utf8(tokens)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// The search token of one `key = value` pair: the pair's hash in hex behind
/// a letter.
pub fn attribute_token(key: &str, value: &str) -> String {
    token(HASHED_TOKEN_BYTES, |out| {
        push_attribute_token(out, key, value)
    })
}

/// Bytes of a string value that its prefix token keeps: longer prefixes
/// are matched on these and then checked against the span itself.
pub const PREFIX_BYTES: usize = 16;

/// The prefix token of a string attribute: the key's hash, then the
/// value's first bytes in hex, so that the token of a value starts with the
/// hex of any of its prefixes and an FTS5 prefix query (`token*`) finds it.
fn push_prefix_token(out: &mut Vec<u8>, key: &str, value: &str) {
    let head = &value.as_bytes()[..value.len().min(PREFIX_BYTES)];
    push_hashed(out, b'p', stable_hash(&[key.as_bytes()]));
    push_hex(out, head);
}

pub fn prefix_token(key: &str, value: &str) -> String {
    token(HASHED_TOKEN_BYTES + 2 * PREFIX_BYTES, |out| {
        push_prefix_token(out, key, value)
    })
}

/// An FTS5 query term matching every string value of `key` that starts
/// with `prefix` (a superset when the prefix is longer than `PREFIX_BYTES`).
pub fn prefix_query(key: &str, prefix: &str) -> String {
    let mut term = prefix_token(key, prefix);
    term.push('*');
    term
}

fn push_operation_token(out: &mut Vec<u8>, name: &str) {
    push_hashed(out, b'o', stable_hash(&[b"operation", name.as_bytes()]));
}

pub fn operation_token(name: &str) -> String {
    token(HASHED_TOKEN_BYTES, |out| push_operation_token(out, name))
}

fn push_kind_token(out: &mut Vec<u8>, kind: i32) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "k{kind}");
}

pub fn kind_token(kind: i32) -> String {
    token(3, |out| push_kind_token(out, kind))
}

pub fn push_service_token(out: &mut Vec<u8>, service: &str) {
    push_hashed(out, b's', stable_hash(&[b"service", service.as_bytes()]));
}

pub fn service_token(service: &str) -> String {
    token(HASHED_TOKEN_BYTES, |out| push_service_token(out, service))
}

/// The text a search matches an attribute value against: strings as they
/// are, numbers and booleans as written in JSON. Arrays, maps and bytes are
/// not searchable.
pub fn searchable_text(value: &AnyValue) -> Option<Cow<'_, str>> {
    match value {
        AnyValue::String(s) => Some(Cow::Borrowed(s)),
        AnyValue::Bool(b) => Some(Cow::Owned(b.to_string())),
        AnyValue::Int(i) => Some(Cow::Owned(i.to_string())),
        AnyValue::Double(d) => Some(Cow::Owned(d.to_string())),
        _ => None,
    }
}

/// All search tokens of a span: its name, kind and own attributes.
pub fn span_tokens(span: &Span) -> SearchTokens {
    let mut tokens = SearchTokens::with_capacity(2 * span.attributes.len() + 2);
    add_attribute_tokens(&mut tokens, &span.attributes);
    tokens.push(|out| push_operation_token(out, &span.name));
    tokens.push(|out| push_kind_token(out, span.kind.as_i32()));
    tokens
}

/// The search tokens of a list of attributes: one per searchable pair, and
/// a prefix token per string.
pub fn attribute_tokens(attributes: &[KeyValue]) -> SearchTokens {
    let mut tokens = SearchTokens::with_capacity(2 * attributes.len());
    add_attribute_tokens(&mut tokens, attributes);
    tokens
}

fn add_attribute_tokens(tokens: &mut SearchTokens, attributes: &[KeyValue]) {
    for KeyValue { key, value } in attributes {
        match value {
            // A short string's prefix token holds all of it, so it is the
            // string's exact token too: one FTS5 token instead of two,
            // and FTS5 is the writer's largest cost (see `attribute_match`).
            AnyValue::String(text) if prefix_holds_all(text) => {
                tokens.push(|out| push_prefix_token(out, key, text));
            }
            AnyValue::String(text) => {
                tokens.push(|out| push_attribute_token(out, key, text));
                tokens.push(|out| push_prefix_token(out, key, text));
            }
            _ => {
                if let Some(text) = searchable_text(value) {
                    tokens.push(|out| push_attribute_token(out, key, &text));
                }
            }
        }
    }
}

/// Whether a string's prefix token holds the whole string, and no longer
/// string's token equals it: a string of `PREFIX_BYTES` or more has a token
/// of exactly that many bytes, so one that long is not whole in it.
fn prefix_holds_all(text: &str) -> bool {
    text.len() < PREFIX_BYTES
}

/// The FTS5 expression for spans with `key = value`, `value` as
/// `searchable_text` writes it. A number or boolean, and a string too long
/// for its prefix token, have their exact token; a string short enough is
/// found by its whole prefix token, as a term rather than a prefix query.
/// Text that could be either asks for both.
pub fn attribute_match(key: &str, value: &str) -> String {
    if prefix_holds_all(value) {
        format!(
            "({} OR {})",
            attribute_token(key, value),
            prefix_token(key, value)
        )
    } else {
        attribute_token(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens written for storage are the very terms search asks for.
    #[test]
    fn stored_tokens_are_the_query_terms() {
        let attributes = vec![
            KeyValue {
                key: "http.route".into(),
                value: AnyValue::String("/orders/{id}".into()),
            },
            KeyValue {
                key: "retries".into(),
                value: AnyValue::Int(3),
            },
            KeyValue {
                key: "payload".into(),
                value: AnyValue::Bytes(vec![1, 2]),
            },
        ];
        let tokens = attribute_tokens(&attributes);
        let texts: Vec<&[u8]> = tokens.iter().map(|(_, text)| text).collect();
        let expected = [
            prefix_token("http.route", "/orders/{id}"),
            attribute_token("retries", "3"),
        ];
        assert_eq!(tokens.to_text(), expected.join(" "));
        assert_eq!(texts, expected.map(String::into_bytes));
        assert!(
            prefix_token("http.route", "/orders/{id}")
                .starts_with(prefix_query("http.route", "/ord").trim_end_matches('*'))
        );
        // Equal texts hash equally, which is what merging relies on.
        let again = attribute_tokens(&attributes[..1]);
        assert_eq!(again.iter().next(), tokens.iter().next());
        assert_ne!(tokens.iter().next(), tokens.iter().nth(1));
    }

    /// Tokens are written as files of schema v6 hold them on disk (in
    /// `group_terms`), so those files are still searched correctly. The
    /// expected tokens are literals, computed once: a change to any of them
    /// needs a migration that rewrites the stored tokens, not a new literal.
    #[test]
    fn tokens_keep_the_stored_format() {
        for (key, value, prefix, pair) in [
            ("k", "v", "p08bdc907b561adcf76", "a361971d5052259ac"),
            (
                "http.route",
                "/a/very/long/route/indeed",
                // The key's hash, then the value's first 16 bytes in hex.
                "pa177cfa4a953b9672f612f766572792f6c6f6e672f726f75",
                "aa26ed2edd1e483e4",
            ),
            ("", "", "paf64724c8602eb6e", "a0a99c907b6f64763"),
        ] {
            assert_eq!(prefix_token(key, value), prefix, "{key:?} {value:?}");
            assert_eq!(attribute_token(key, value), pair, "{key:?} {value:?}");
        }
        assert_eq!(operation_token("GET /"), "ob821ebfdc113ac0d");
        assert_eq!(service_token("shop"), "s04f4779916340056");
        assert_eq!(kind_token(2), "k2");
        assert_eq!(
            prefix_query("http.route", "/ord"),
            "pa177cfa4a953b9672f6f7264*"
        );
        assert_eq!(
            attribute_match("retries", "3"),
            "(ab295e80923ae0b78 OR p5bab67611e4e0afe33)"
        );
    }

    /// `stable_hash` keys the stored resources and scopes (their `hash`
    /// column) and is inside every hashed token: files of schema v6 hold
    /// these values, so a change to it needs a migration. Literals computed
    /// once.
    #[test]
    fn stable_hash_keeps_its_stored_values() {
        // Nothing hashed is FNV-1a's offset basis.
        assert_eq!(stable_hash(&[]), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(stable_hash(&[b""]), -5_808_391_946_409_677_970);
        assert_eq!(stable_hash(&[b"abc"]), -281_434_827_657_836_836);
        // Where one part ends counts: ("ab", "c") is not ("a", "bc").
        assert_eq!(stable_hash(&[b"ab", b"c"]), 2_358_367_985_974_424_609);
        assert_eq!(stable_hash(&[b"a", b"bc"]), -6_871_556_058_050_395_989);
    }

    /// A string longer than a prefix token keeps its exact token as well.
    #[test]
    fn long_strings_keep_an_exact_token() {
        // As long as a prefix token holds: a longer string's token would be the same.
        let long = "x".repeat(PREFIX_BYTES);
        let tokens = attribute_tokens(&[KeyValue {
            key: "k".into(),
            value: AnyValue::String(long.clone()),
        }]);
        let texts: Vec<&[u8]> = tokens.iter().map(|(_, text)| text).collect();
        let expected = [attribute_token("k", &long), prefix_token("k", &long)];
        assert_eq!(texts, expected.map(String::into_bytes));
        assert_eq!(attribute_match("k", &long), attribute_token("k", &long));
        assert!(attribute_match("k", "short").contains(" OR "));
    }
}
