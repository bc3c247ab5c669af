//! What a body held, read without otelite's code: the OTLP request decoded
//! straight into the `opentelemetry-proto` types (prost or serde_json), and
//! each span cut down to what storage must keep as sent, so that the checks
//! compare what was stored with what was sent rather than otelite's
//! conversion with itself.

use crate::receive::Format;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue as PbValue, KeyValue as PbKeyValue};
use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use otelite_model as model;
use std::collections::{BTreeMap, BTreeSet};

/// The spans of an OTLP trace export body; `None` when it is not one.
pub fn sent_spans(format: Format, body: &[u8]) -> Option<Vec<SpanView>> {
    let request: ExportTraceServiceRequest = match format {
        Format::Protobuf => prost::Message::decode(body).ok()?,
        Format::Json => serde_json::from_slice(body).ok()?,
    };
    let spans = request
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans);
    Some(spans.flat_map(|s| s.spans).map(SpanView::of_otlp).collect())
}

/// An attribute value, comparable (a double by its bits, so NaN is itself).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Empty,
    String(String),
    Bool(bool),
    Int(i64),
    Double(u64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    KvList(Attributes),
}

/// Key-value pairs in the order sent.
pub type Attributes = Vec<(String, Value)>;

/// What of a span a store must give back as it was sent: ids, name,
/// times, attributes, events and links (their ids and attributes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpanView {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    /// Empty for a root: an all-zero parent id means "no parent" too.
    pub parent_span_id: Vec<u8>,
    pub name: String,
    pub times: (u64, u64),
    pub attributes: Attributes,
    /// (name, time, attributes).
    pub events: Vec<(String, u64, Attributes)>,
    /// (trace id, span id, attributes).
    pub links: Vec<(Vec<u8>, Vec<u8>, Attributes)>,
}

impl SpanView {
    pub fn of_otlp(span: PbSpan) -> Self {
        let parent = span.parent_span_id;
        Self {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: if parent.iter().all(|b| *b == 0) {
                Vec::new()
            } else {
                parent
            },
            name: span.name,
            times: (span.start_time_unix_nano, span.end_time_unix_nano),
            attributes: otlp_attributes(span.attributes),
            events: (span.events.into_iter())
                .map(|e| (e.name, e.time_unix_nano, otlp_attributes(e.attributes)))
                .collect(),
            links: (span.links.into_iter())
                .map(|l| (l.trace_id, l.span_id, otlp_attributes(l.attributes)))
                .collect(),
        }
    }

    pub fn of_model(span: &model::Span) -> Self {
        Self {
            trace_id: span.trace_id.0.to_vec(),
            span_id: span.span_id.0.to_vec(),
            parent_span_id: span
                .parent_span_id
                .map(|p| p.0.to_vec())
                .unwrap_or_default(),
            name: span.name.clone(),
            times: (span.start_time_unix_nano, span.end_time_unix_nano),
            attributes: model_attributes(&span.attributes),
            events: (span.events.iter())
                .map(|e| {
                    (
                        e.name.clone(),
                        e.time_unix_nano,
                        model_attributes(&e.attributes),
                    )
                })
                .collect(),
            links: (span.links.iter())
                .map(|l| {
                    let ids = (l.trace_id.0.to_vec(), l.span_id.0.to_vec());
                    (ids.0, ids.1, model_attributes(&l.attributes))
                })
                .collect(),
        }
    }
}

fn otlp_attributes(attributes: Vec<PbKeyValue>) -> Attributes {
    (attributes.into_iter())
        .map(|kv| (kv.key, kv.value.map_or(Value::Empty, otlp_value)))
        .collect()
}

fn otlp_value(value: PbValue) -> Value {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    match value.value {
        // String-table indexes belong to the profiles signal, not to traces.
        None | Some(V::StringValueStrindex(_)) => Value::Empty,
        Some(V::StringValue(s)) => Value::String(s),
        Some(V::BoolValue(b)) => Value::Bool(b),
        Some(V::IntValue(i)) => Value::Int(i),
        Some(V::DoubleValue(d)) => Value::Double(d.to_bits()),
        Some(V::BytesValue(b)) => Value::Bytes(b),
        Some(V::ArrayValue(a)) => Value::Array(a.values.into_iter().map(otlp_value).collect()),
        Some(V::KvlistValue(l)) => Value::KvList(otlp_attributes(l.values)),
    }
}

fn model_attributes(attributes: &[model::KeyValue]) -> Attributes {
    (attributes.iter())
        .map(|kv| (kv.key.clone(), model_value(&kv.value)))
        .collect()
}

fn model_value(value: &model::AnyValue) -> Value {
    use model::AnyValue as V;
    match value {
        V::Empty => Value::Empty,
        V::String(s) => Value::String(s.clone()),
        V::Bool(b) => Value::Bool(*b),
        V::Int(i) => Value::Int(*i),
        V::Double(d) => Value::Double(d.to_bits()),
        V::Bytes(b) => Value::Bytes(b.clone()),
        V::Array(values) => Value::Array(values.iter().map(model_value).collect()),
        V::KvList(values) => Value::KvList(model_attributes(values)),
    }
}

impl SpanView {
    /// What a store knows a span by: its trace and span id.
    fn ids(&self) -> (&[u8], &[u8]) {
        (&self.trace_id, &self.span_id)
    }
}

/// Panics unless `stored` is `sent` less `rejected` of its spans (in any
/// order): nothing invented, changed or lost.
pub fn assert_stored_as_sent(stored: &[SpanView], rejected: usize, sent: &[SpanView]) {
    assert_eq!(
        stored.len() + rejected,
        sent.len(),
        "spans stored ({}) and refused ({rejected}) are not the spans sent",
        stored.len()
    );
    assert_all_sent(stored, sent);
}

/// Panics unless each of `stored` is one of `sent`, as sent.
fn assert_all_sent(stored: &[SpanView], sent: &[SpanView]) {
    let mut left = counts(sent);
    for span in stored {
        match left.get_mut(span) {
            Some(n) if *n > 0 => *n -= 1,
            _ => panic!("stored a span that was not sent as such: {span:?}"),
        }
    }
}

/// Panics unless a store that keeps the first copy of each span (by ids;
/// a retry is not stored twice) went from `before` to `after` by taking
/// the spans `sent` in one request, of which it refused `rejected`.
/// `before` and `after` hold at least the traces of `sent`.
pub fn assert_store_took(
    before: &[SpanView],
    after: &[SpanView],
    rejected: usize,
    sent: &[SpanView],
) {
    let added = added(before, after);
    let mut known: BTreeSet<_> = before.iter().map(SpanView::ids).collect();
    let mut retried = 0;
    for span in sent {
        retried += usize::from(!known.insert(span.ids()));
    }
    if retried == 0 {
        assert_stored_as_sent(&added, rejected, sent);
    } else {
        assert_all_sent(&added, sent);
        let now: BTreeSet<_> = after.iter().map(SpanView::ids).collect();
        let missing = sent.iter().filter(|s| !now.contains(&s.ids())).count();
        assert!(missing <= rejected, "{missing} spans sent are not stored");
    }
    let mut known: BTreeSet<_> = before.iter().map(SpanView::ids).collect();
    for span in &added {
        assert!(known.insert(span.ids()), "stored a span twice: {span:?}");
    }
}

/// `after` less `before`, as multisets: what a request added to a store.
fn added(before: &[SpanView], after: &[SpanView]) -> Vec<SpanView> {
    let mut old = counts(before);
    let mut new = Vec::new();
    for span in after {
        match old.get_mut(span) {
            Some(n) if *n > 0 => *n -= 1,
            _ => new.push(span.clone()),
        }
    }
    assert!(
        old.values().all(|n| *n == 0),
        "a request took stored spans away"
    );
    new
}

fn counts(spans: &[SpanView]) -> BTreeMap<&SpanView, usize> {
    let mut counts = BTreeMap::new();
    for span in spans {
        *counts.entry(span).or_default() += 1;
    }
    counts
}
