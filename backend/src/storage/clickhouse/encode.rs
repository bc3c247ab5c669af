//! A batch of analyzed spans → the RowBinary rows of `spans_in`, done on
//! the receiver's blocking thread so that writing is only I/O. Resources and
//! scopes are encoded once per batch (the spans of one request share them).

use super::rowbinary::Writer;
use crate::analyze::{AnalyzedSpan, SpanFacts};
use crate::stage::{Stage, minute_of};
use crate::storage::{Ingest, Lost};
use otelite_model::otlp;
use otelite_model::{AnyValue, KeyValue, Resource, Scope, SpanId, TraceId};
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;

/// The columns `SpanRows::row` writes, in its order. `received_day` and
/// `received_minute` (when the batch arrived) are what the stage counts of
/// the span go to, within the same INSERT (`stage_counts_mv`).
pub const SPAN_COLUMNS: &str = "day, trace_id, span_id, parent_span_id, service, name, kind, \
    start_ns, end_ns, duration_ns, status_code, is_root, attr_keys, attr_values, \
    resource_attr_keys, resource_attr_values, resource, scope, body, \
    received_day, received_minute, attr_strings, resource_attr_strings, parent_in_request";

/// A batch ready for the ClickHouse writer.
#[derive(Debug)]
pub struct Rows {
    pub spans: Vec<EncodedSpan>,
    resources: Vec<EncodedResource>,
    scopes: Vec<Vec<u8>>,
    pub counted: Vec<(String, Stage, u64)>,
    /// Spans of the request lost before the store (invalid, or dropped by
    /// a rule), by reason: they go to `stage_losses`.
    pub lost: Vec<Lost>,
    pub received_ns: u64,
}

#[derive(Debug)]
pub struct EncodedSpan {
    pub facts: SpanFacts,
    /// Where its parent is among the request's spans: such a span is stored
    /// by the same INSERT as its parent, never an orphan (`migrate-9.sql`),
    /// and its service edge is decided from the request alone (`edges`).
    parent_in_request: Option<usize>,
    kind: u8,
    status_code: u8,
    attributes: Searchable,
    resource: usize,
    scope: usize,
    body: Vec<u8>,
}

#[derive(Debug)]
struct EncodedResource {
    body: Vec<u8>,
    attributes: Searchable,
}

/// Attributes as parallel arrays: keys, values as text, and whether each
/// value is a string (only those match a prefix, as on SQLite).
#[derive(Debug, Default)]
struct Searchable {
    keys: Vec<String>,
    values: Vec<String>,
    strings: Vec<u8>,
}

impl Rows {
    pub fn new(ingest: Ingest) -> Self {
        let mut resources: HashMap<*const Resource, usize> = HashMap::new();
        let mut scopes: HashMap<*const Scope, usize> = HashMap::new();
        let mut rows = Rows {
            spans: Vec::with_capacity(ingest.spans.len()),
            resources: Vec::new(),
            scopes: Vec::new(),
            counted: ingest.counted,
            lost: ingest.lost,
            received_ns: ingest.received_ns,
        };
        let index: HashMap<(TraceId, SpanId), usize> = ingest
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.facts.trace_id, s.facts.span_id), i))
            .collect();
        for AnalyzedSpan { facts, span } in ingest.spans {
            let resource = *resources
                .entry(Arc::as_ptr(&span.resource))
                .or_insert_with(|| {
                    rows.resources.push(EncodedResource {
                        body: otlp::resource_to_otlp(&span.resource).encode_to_vec(),
                        attributes: searchable(&span.resource.attributes),
                    });
                    rows.resources.len() - 1
                });
            let scope = *scopes.entry(Arc::as_ptr(&span.scope)).or_insert_with(|| {
                rows.scopes
                    .push(otlp::scope_to_otlp(&span.scope).encode_to_vec());
                rows.scopes.len() - 1
            });
            let parent_in_request = facts
                .parent_span_id
                .and_then(|parent| index.get(&(facts.trace_id, parent)).copied());
            rows.spans.push(EncodedSpan {
                parent_in_request,
                kind: span.kind.as_i32().clamp(0, 255) as u8,
                status_code: span.status.code.as_i32().clamp(0, 255) as u8,
                attributes: searchable(&span.attributes),
                body: otlp::span_to_otlp(&span).encode_to_vec(),
                resource,
                scope,
                facts,
            });
        }
        rows
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The span's parent when it came in the same request.
    pub fn parent_in_request(&self, span: &EncodedSpan) -> Option<&EncodedSpan> {
        span.parent_in_request.and_then(|i| self.spans.get(i))
    }

    /// Appends one span's row, in `SPAN_COLUMNS` order.
    pub fn row(&self, out: &mut Writer, span: &EncodedSpan) {
        let facts = &span.facts;
        let resource = &self.resources[span.resource];
        out.u16(day_of(facts.start_ns));
        out.fixed(&facts.trace_id.0);
        out.fixed(&facts.span_id.0);
        out.fixed(&facts.parent_span_id.map_or([0; 8], |p| p.0));
        out.str(facts.service());
        out.str(&facts.name);
        out.u8(span.kind);
        out.u64(facts.start_ns);
        out.u64(facts.end_ns);
        out.u64(facts.duration_ns);
        out.u8(span.status_code);
        out.u8(u8::from(facts.is_root));
        pairs(out, &span.attributes);
        pairs(out, &resource.attributes);
        out.bytes(&resource.body);
        out.bytes(&self.scopes[span.scope]);
        out.bytes(&span.body);
        let minute = minute_of(self.received_ns);
        out.u16(day_of_minute(minute));
        out.i64(minute);
        out.u8_array(&span.attributes.strings);
        out.u8_array(&resource.attributes.strings);
        out.u8(u8::from(span.parent_in_request.is_some()));
    }
}

fn pairs(out: &mut Writer, attributes: &Searchable) {
    out.strings(attributes.keys.iter().map(String::as_str));
    out.strings(attributes.values.iter().map(String::as_str));
}

/// The last day 18.16 handles as a `Date`, 2105-12-31: past it, dates
/// print (and parse) as 1970 or zero, and a partition of day 65535 takes
/// the id of 1970-01-01's (ClickHouse then refuses an insert holding both
/// with "Partition value mismatch"). Later times are kept in this day.
pub const LAST_DAY: u16 = 49_672;

/// Days since 1970 of a unix-nanosecond time, as ClickHouse's `Date`,
/// at most [`LAST_DAY`].
pub fn day_of(unix_nanos: u64) -> u16 {
    (unix_nanos / 86_400_000_000_000).min(u64::from(LAST_DAY)) as u16
}

/// The day of a minute (unix seconds), at most [`LAST_DAY`].
pub fn day_of_minute(minute: i64) -> u16 {
    (minute.max(0) / 86_400).min(i64::from(LAST_DAY)) as u16
}

/// Attributes as search matches them (the same text the SQLite store
/// indexes): strings as they are, numbers and booleans as written in JSON;
/// arrays, maps and bytes are not searchable and left out.
fn searchable(attributes: &[KeyValue]) -> Searchable {
    let mut out = Searchable::default();
    for KeyValue { key, value } in attributes {
        let (text, string) = match value {
            AnyValue::String(s) => (s.clone(), true),
            AnyValue::Bool(b) => (b.to_string(), false),
            AnyValue::Int(i) => (i.to_string(), false),
            AnyValue::Double(d) => (d.to_string(), false),
            _ => continue,
        };
        out.keys.push(key.clone());
        out.values.push(text);
        out.strings.push(u8::from(string));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{LAST_DAY, day_of, day_of_minute};

    #[test]
    fn days_stop_at_the_last_date_clickhouse_handles() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(1_764_115_200_000_000_000), 20_418); // 2025-11-26
        assert_eq!(day_of(u64::MAX), LAST_DAY);
        assert_eq!(day_of_minute(-60), 0);
        assert_eq!(day_of_minute(i64::MAX), LAST_DAY);
    }
}
