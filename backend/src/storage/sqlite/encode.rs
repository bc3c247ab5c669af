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
/// ASCII bytes (lowercase letters and digits): kept as bytes so that
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

/// 32 of the symbols a token may hold (see `tokenizer`): digits and
/// lowercase letters.
const BASE32: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// Digits of a 64-bit hash in base 32, five bits each: 13 symbols where
/// hex takes 16, written with shifts alone.
const HASH_SYMBOLS: usize = 13;

/// Bytes of a token `push_hashed` writes: a tag letter and the hash.
pub const HASHED_TOKEN_BYTES: usize = 1 + HASH_SYMBOLS;

/// Writes a tag letter and a 64-bit hash in base 32: one word for FTS5's
/// tokenizer whatever the hashed text holds.
fn push_hashed(out: &mut Vec<u8>, tag: u8, hash: i64) {
    out.push(tag);
    push_hash(out, hash);
}

/// A 64-bit hash as `HASH_SYMBOLS` base-32 digits, most significant first.
fn push_hash(out: &mut Vec<u8>, hash: i64) {
    let bits = hash as u64;
    let mut digits = [0u8; HASH_SYMBOLS];
    for (i, digit) in digits.iter_mut().enumerate() {
        let shift = 5 * (HASH_SYMBOLS - 1 - i);
        *digit = BASE32[(bits >> shift & 0x1f) as usize];
    }
    out.extend_from_slice(&digits);
}

/// How each byte of a string value is written into its token, so that the
/// token stays one word of the symbols FTS5 keeps as they are: lowercase
/// letters but `z` and digits as themselves, and every other byte behind
/// a `z`, an upper-case letter as its lower-case one and the common
/// punctuation of paths, hosts and statements as a digit, the rest as `z8`
/// and two hex digits. No code is the start of another, so the code of a
/// value starts with the code of any of its prefixes (prefix search) and
/// reads back one way only; `z9` starts no byte's code, which leaves it to
/// mark the end of a long value's head (`push_string_token`).
const VALUE_CODES: [([u8; 4], u8); 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const PUNCTUATION: &[u8; 8] = b"z /.-_:=";
    let mut codes = [([0u8; 4], 0u8); 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        codes[byte] = if (b.is_ascii_lowercase() && b != b'z') || b.is_ascii_digit() {
            ([b, 0, 0, 0], 1)
        } else if b.is_ascii_uppercase() {
            ([b'z', b.to_ascii_lowercase(), 0, 0], 2)
        } else {
            let mut code = ([b'z', b'8', HEX[byte >> 4], HEX[byte & 0xf]], 4);
            let mut i = 0;
            while i < PUNCTUATION.len() {
                if PUNCTUATION[i] == b {
                    code = ([b'z', b'0' + i as u8, 0, 0], 2);
                }
                i += 1;
            }
            code
        };
        byte += 1;
    }
    codes
};

/// Writes `bytes` through `VALUE_CODES`.
fn push_value_code(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(2 * bytes.len());
    for &byte in bytes {
        let (code, len) = &VALUE_CODES[usize::from(byte)];
        out.extend_from_slice(&code[..usize::from(*len)]);
    }
}

/// Bytes of a string value that its token holds as they are; a longer
/// value's token holds these, then `z9` and a hash of the whole value.
/// Prefix search matches on these and checks longer prefixes on the span.
pub const HEAD_BYTES: usize = 16;

/// The one search token of a string attribute: `p`, the key's hash, then
/// the value itself (`VALUE_CODES`) when it is at most `HEAD_BYTES` long,
/// or its first `HEAD_BYTES` and a hash of all of it when longer. One
/// token finds the value exactly and by any prefix, so a value that never
/// repeats (an id, a path with an id) costs the index one term.
fn push_string_token(out: &mut Vec<u8>, key: &str, value: &str) {
    push_hashed(out, b'p', stable_hash(&[key.as_bytes()]));
    if value.len() <= HEAD_BYTES {
        push_value_code(out, value.as_bytes());
    } else {
        push_value_code(out, &value.as_bytes()[..HEAD_BYTES]);
        out.extend_from_slice(b"z9");
        push_hash(out, stable_hash(&[key.as_bytes(), value.as_bytes()]));
    }
}

/// The search token of a string attribute `key = value`.
pub fn string_token(key: &str, value: &str) -> String {
    token(
        HASHED_TOKEN_BYTES + 2 * HEAD_BYTES + 2 + HASH_SYMBOLS,
        |out| push_string_token(out, key, value),
    )
}

/// The search token of a number or boolean `key = value` (`value` as
/// `searchable_text` writes it): the pair's hash behind `a`.
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

/// The search token of a number or boolean `key = value`.
pub fn attribute_token(key: &str, value: &str) -> String {
    token(HASHED_TOKEN_BYTES, |out| {
        push_attribute_token(out, key, value)
    })
}

/// An FTS5 query term matching every string value of `key` that starts
/// with `prefix` (a superset when the prefix is longer than `HEAD_BYTES`).
pub fn prefix_query(key: &str, prefix: &str) -> String {
    let mut term = Vec::with_capacity(HASHED_TOKEN_BYTES + 2 * HEAD_BYTES + 1);
    push_hashed(&mut term, b'p', stable_hash(&[key.as_bytes()]));
    push_value_code(
        &mut term,
        &prefix.as_bytes()[..prefix.len().min(HEAD_BYTES)],
    );
    term.push(b'*');
    ascii_text(term)
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
    let mut tokens = SearchTokens::with_capacity(span.attributes.len() + 2);
    add_attribute_tokens(&mut tokens, &span.attributes);
    tokens.push(|out| push_operation_token(out, &span.name));
    tokens.push(|out| push_kind_token(out, span.kind.as_i32()));
    tokens
}

/// The search tokens of a list of attributes: one per searchable pair.
pub fn attribute_tokens(attributes: &[KeyValue]) -> SearchTokens {
    let mut tokens = SearchTokens::with_capacity(attributes.len());
    add_attribute_tokens(&mut tokens, attributes);
    tokens
}

fn add_attribute_tokens(tokens: &mut SearchTokens, attributes: &[KeyValue]) {
    for KeyValue { key, value } in attributes {
        match value {
            AnyValue::String(text) => tokens.push(|out| push_string_token(out, key, text)),
            _ => {
                if let Some(text) = searchable_text(value) {
                    tokens.push(|out| push_attribute_token(out, key, &text));
                }
            }
        }
    }
}

/// The FTS5 expression for spans with `key = value`, `value` as
/// `searchable_text` writes it: the text may be a string's or a number's,
/// so both tokens are asked for.
pub fn attribute_match(key: &str, value: &str) -> String {
    format!(
        "({} OR {})",
        attribute_token(key, value),
        string_token(key, value)
    )
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
            string_token("http.route", "/orders/{id}"),
            attribute_token("retries", "3"),
        ];
        assert_eq!(tokens.to_text(), expected.join(" "));
        assert_eq!(texts, expected.map(String::into_bytes));
        assert!(
            string_token("http.route", "/orders/{id}")
                .starts_with(prefix_query("http.route", "/ord").trim_end_matches('*'))
        );
        // Equal texts hash equally, which is what merging relies on.
        let again = attribute_tokens(&attributes[..1]);
        assert_eq!(again.iter().next(), tokens.iter().next());
        assert_ne!(tokens.iter().next(), tokens.iter().nth(1));
    }

    /// Tokens are written as files of schema v10 hold them on disk (in
    /// `group_terms`), so those files are still searched correctly. The
    /// expected tokens are literals, computed once by a separate script
    /// (FNV-1a, base 32 and the value code written out again in Python): a
    /// change to any of them needs a migration that rewrites the stored
    /// tokens, not a new literal.
    #[test]
    fn tokens_keep_the_stored_format() {
        for (key, value, string, pair) in [
            ("k", "v", "p0hfe90uqm3befv", "a3c6bhqk2i4mdc"),
            (
                "http.route",
                "/a/very/long/route/indeed",
                // The key's hash, the value's first 16 bytes, `z9` and the pair's hash.
                "pa2tufkikl7eb7z2az2veryz2longz2rouz9a4rmitn8u90v4",
                "aa4rmitn8u90v4",
            ),
            ("", "", "paup3i9i305qre", "a0l6e90urfchr3"),
            (
                "db.statement",
                "SELECT * FROM t WHERE id=1",
                "pehohii65epic9zszezlzezcztz1z82az1zfzrzozmz1tz1z94hmkkida1gci6",
                "a4hmkkida1gci6",
            ),
            // `z` itself, and a byte outside ASCII.
            ("name", "Zoë", "pavdlcvvp6fbkrzzoz8c3z8ab", "abhqrpgl4lu0cv"),
        ] {
            assert_eq!(string_token(key, value), string, "{key:?} {value:?}");
            assert_eq!(attribute_token(key, value), pair, "{key:?} {value:?}");
        }
        assert_eq!(operation_token("GET /"), "obg8fbvn0h7b0d");
        assert_eq!(service_token("shop"), "s09t3nj4b3802m");
        assert_eq!(kind_token(2), "k2");
        assert_eq!(prefix_query("http.route", "/ord"), "pa2tufkikl7eb7z2ord*");
        assert_eq!(
            attribute_match("retries", "3"),
            "(ab55f814hqs2ro OR p5nar7c4f4s2nu3)"
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

    /// Every byte's code is one word of the tokenizer's symbols, and no
    /// code starts another, nor `z9`: so codes read back one way, and a
    /// value's code starts with a prefix's code exactly when the value
    /// starts with that prefix.
    #[test]
    fn value_codes_are_words_and_prefix_free() {
        let codes: Vec<&[u8]> = VALUE_CODES
            .iter()
            .map(|(code, len)| &code[..usize::from(*len)])
            .collect();
        for (byte, code) in codes.iter().enumerate() {
            assert!(
                code.iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "byte {byte}: {code:?}"
            );
            assert!(!code.starts_with(b"z9"), "byte {byte}: {code:?}");
            for (other, other_code) in codes.iter().enumerate() {
                assert!(
                    byte == other || !other_code.starts_with(code),
                    "byte {byte}'s code {code:?} starts byte {other}'s {other_code:?}"
                );
            }
        }
        let value = "/Users/Zoë_42: a=b";
        let mut whole = Vec::new();
        push_value_code(&mut whole, value.as_bytes());
        for end in 0..=value.len() {
            let mut head = Vec::new();
            push_value_code(&mut head, &value.as_bytes()[..end]);
            assert!(whole.starts_with(&head), "{end}");
        }
        let mut other = Vec::new();
        push_value_code(&mut other, b"/users/zo");
        assert!(!whole.starts_with(&other), "case is kept");
    }

    /// A string has one token, whatever its length: a value longer than
    /// `HEAD_BYTES` is told apart by the hash of all of it, and still found
    /// by any prefix of its head.
    #[test]
    fn a_long_string_has_one_token_told_apart_by_its_hash() {
        let head = "x".repeat(HEAD_BYTES);
        let (exact, longer, other) = (head.clone(), format!("{head}a"), format!("{head}b"));
        let tokens: Vec<String> = [&exact, &longer, &other]
            .map(|value| string_token("k", value))
            .into();
        assert_ne!(tokens[0], tokens[1]);
        assert_ne!(tokens[1], tokens[2]);
        let prefix = prefix_query("k", "xxx");
        for token in &tokens {
            assert!(token.starts_with(prefix.trim_end_matches('*')), "{token}");
        }
        let one = attribute_tokens(&[KeyValue {
            key: "k".into(),
            value: AnyValue::String(longer.clone()),
        }]);
        assert_eq!(one.to_text(), tokens[1]);
        // A prefix past the head asks for the head: a superset, checked on the span.
        assert_eq!(prefix_query("k", &longer), prefix_query("k", &head));
    }
}
