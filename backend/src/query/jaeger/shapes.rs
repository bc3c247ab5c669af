//! Jaeger's JSON shapes (the `model/json` types its v1 API and Grafana's
//! Jaeger data source read) and model spans → those shapes, the way Jaeger's
//! OTLP translator does it: kind, status and scope become tags, the parent
//! a `CHILD_OF` reference, links `FOLLOWS_FROM`, events logs.

use super::params::kind_name;
use otelite_model::{AnyValue, KeyValue, Resource, Span, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<JaegerSpan>,
    pub processes: BTreeMap<String, Process>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// Jaeger omits zero flags.
    #[serde(skip_serializing_if = "is_zero")]
    pub flags: u32,
    pub operation_name: String,
    pub references: Vec<Reference>,
    /// Microseconds since the epoch.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    pub tags: Vec<Tag>,
    pub logs: Vec<Log>,
    #[serde(rename = "processID")]
    pub process_id: String,
    pub warnings: Option<Vec<String>>,
}

fn is_zero(flags: &u32) -> bool {
    *flags == 0
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub ref_type: &'static str,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Tag {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: Value,
}

#[derive(Debug, Serialize)]
pub struct Log {
    /// Microseconds since the epoch.
    pub timestamp: u64,
    pub fields: Vec<Tag>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<Tag>,
}

/// One trace's spans (all with the same trace id) in Jaeger's shape; each
/// distinct resource becomes a process `p1`, `p2`, … in order of appearance.
pub fn trace(spans: &[Span]) -> Trace {
    let mut processes: Vec<Process> = Vec::new();
    let mut out = Vec::with_capacity(spans.len());
    for span in spans {
        let process = process(&span.resource);
        let index = match processes.iter().position(|p| *p == process) {
            Some(index) => index,
            None => {
                processes.push(process);
                processes.len() - 1
            }
        };
        out.push(span_of(span, format!("p{}", index + 1)));
    }
    Trace {
        trace_id: spans
            .first()
            .map(|s| s.trace_id.to_hex())
            .unwrap_or_default(),
        spans: out,
        processes: processes
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("p{}", i + 1), p))
            .collect(),
        warnings: None,
    }
}

fn process(resource: &Resource) -> Process {
    Process {
        service_name: resource.service_name.clone(),
        tags: resource
            .attributes
            .iter()
            .filter(|kv| kv.key != "service.name")
            .map(tag)
            .collect(),
    }
}

fn span_of(span: &Span, process_id: String) -> JaegerSpan {
    let trace_id = span.trace_id.to_hex();
    let mut references = Vec::new();
    if let Some(parent) = span.parent_span_id {
        references.push(Reference {
            ref_type: "CHILD_OF",
            trace_id: trace_id.clone(),
            span_id: parent.to_hex(),
        });
    }
    references.extend(span.links.iter().map(|link| Reference {
        ref_type: "FOLLOWS_FROM",
        trace_id: link.trace_id.to_hex(),
        span_id: link.span_id.to_hex(),
    }));
    let logs = span
        .events
        .iter()
        .map(|event| Log {
            timestamp: event.time_unix_nano / 1000,
            fields: std::iter::once(string_tag("event", &event.name))
                .filter(|_| !event.name.is_empty())
                .chain(event.attributes.iter().map(tag))
                .collect(),
        })
        .collect();
    JaegerSpan {
        trace_id,
        span_id: span.span_id.to_hex(),
        flags: span.flags & 0xff,
        operation_name: span.name.clone(),
        references,
        start_time: span.start_time_unix_nano / 1000,
        duration: span.duration_nanos() / 1000,
        tags: span_tags(span),
        logs,
        process_id,
        warnings: None,
    }
}

/// The span's attributes, then what Jaeger's translator adds as tags.
fn span_tags(span: &Span) -> Vec<Tag> {
    let mut tags: Vec<Tag> = span.attributes.iter().map(tag).collect();
    if !span.scope.name.is_empty() {
        tags.push(string_tag("otel.scope.name", &span.scope.name));
    }
    if !span.scope.version.is_empty() {
        tags.push(string_tag("otel.scope.version", &span.scope.version));
    }
    let kind = kind_name(span.kind);
    if !kind.is_empty() {
        tags.push(string_tag("span.kind", kind));
    }
    match span.status.code {
        // A code OTLP does not define has no Jaeger tag.
        StatusCode::Unset | StatusCode::Other(_) => {}
        StatusCode::Ok => tags.push(string_tag("otel.status_code", "OK")),
        StatusCode::Error => {
            tags.push(string_tag("otel.status_code", "ERROR"));
            tags.push(Tag {
                key: "error".into(),
                kind: "bool",
                value: Value::Bool(true),
            });
        }
    }
    if !span.status.message.is_empty() {
        tags.push(string_tag("otel.status_description", &span.status.message));
    }
    if !span.trace_state.is_empty() {
        tags.push(string_tag("w3c.tracestate", &span.trace_state));
    }
    tags
}

fn string_tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_owned(),
        kind: "string",
        value: Value::String(value.to_owned()),
    }
}

/// An attribute as a Jaeger tag; arrays and maps as their JSON text, bytes
/// as base64 (how Go's JSON writes `[]byte`).
pub fn tag(kv: &KeyValue) -> Tag {
    let (kind, value) = match &kv.value {
        AnyValue::String(s) => ("string", Value::String(s.clone())),
        AnyValue::Bool(b) => ("bool", Value::Bool(*b)),
        AnyValue::Int(i) => ("int64", int64(*i)),
        AnyValue::Double(d) => ("float64", json!(d)),
        AnyValue::Bytes(bytes) => ("binary", Value::String(base64(bytes))),
        AnyValue::Empty => ("string", Value::String(String::new())),
        nested @ (AnyValue::Array(_) | AnyValue::KvList(_)) => {
            ("string", Value::String(plain_json(nested).to_string()))
        }
    };
    Tag {
        key: kv.key.clone(),
        kind,
        value,
    }
}

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// An int64 tag's value: a number where the UI's JavaScript reads it
/// exactly, a decimal string beyond (as Jaeger writes it), never rounded.
fn int64(value: i64) -> Value {
    if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&value) {
        json!(value)
    } else {
        Value::String(value.to_string())
    }
}

/// A value as plain JSON, as the collector's `AsString` writes nested values.
fn plain_json(value: &AnyValue) -> Value {
    match value {
        AnyValue::Empty => Value::Null,
        AnyValue::String(s) => Value::String(s.clone()),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Int(i) => json!(i),
        AnyValue::Double(d) => json!(d),
        AnyValue::Bytes(bytes) => Value::String(base64(bytes)),
        AnyValue::Array(items) => Value::Array(items.iter().map(plain_json).collect()),
        AnyValue::KvList(pairs) => Value::Object(
            pairs
                .iter()
                .map(|kv| (kv.key.clone(), plain_json(&kv.value)))
                .collect(),
        ),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past 2^53 a JavaScript number rounds: such an int64 goes out as its
    /// decimal string, still typed `int64`.
    #[test]
    fn int64_tags_beyond_javascripts_exact_range_are_strings() {
        let value = |i: i64| tag(&KeyValue::new("n", AnyValue::Int(i)));
        let exact = value(9_007_199_254_740_991);
        assert_eq!(
            (exact.kind, exact.value),
            ("int64", json!(9_007_199_254_740_991_i64))
        );
        let negative = value(-9_007_199_254_740_991);
        assert_eq!(negative.value, json!(-9_007_199_254_740_991_i64));
        let beyond = value(9_007_199_254_740_993);
        assert_eq!(
            (beyond.kind, beyond.value),
            ("int64", json!("9007199254740993"))
        );
        assert_eq!(value(i64::MIN).value, json!("-9223372036854775808"));
    }

    #[test]
    fn base64_matches_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0x00, 0x10, 0x7f]), "/wAQfw==");
    }
}
