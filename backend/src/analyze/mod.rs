//! Trace analysis, between process and store: per span its duration, whether
//! it is a root and whether it failed; per trace what this batch adds to its
//! summary; across batches, the service-to-service edges (see `edges`);
//! and which spans the configured rules keep (see `policy`).
//! Pure functions over model types: no I/O, no clock.

mod edges;
pub mod policy;

pub use edges::{Edge, EdgeResolver};
pub use policy::Policy;

use foldhash::{HashMap, HashMapExt};
use otelite_model::{Resource, Span, SpanId, StatusCode, TraceId};
use std::sync::Arc;

/// What analysis learnt about a span: the facts that summaries, edges and
/// the store's index columns need, apart from the span itself.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanFacts {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub resource: Arc<Resource>,
    pub name: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub duration_ns: u64,
    pub is_root: bool,
    pub is_error: bool,
}

impl SpanFacts {
    pub fn service(&self) -> &str {
        &self.resource.service_name
    }
}

/// A span with what analysis learnt about it.
#[derive(Debug, Clone)]
pub struct AnalyzedSpan {
    pub facts: SpanFacts,
    pub span: Span,
}

pub fn analyze(spans: Vec<Span>) -> Vec<AnalyzedSpan> {
    spans
        .into_iter()
        .map(|span| AnalyzedSpan {
            facts: SpanFacts {
                trace_id: span.trace_id,
                span_id: span.span_id,
                parent_span_id: span.parent_span_id,
                resource: span.resource.clone(),
                name: span.name.clone(),
                start_ns: span.start_time_unix_nano,
                end_ns: span.end_time_unix_nano,
                duration_ns: span.duration_nanos(),
                is_root: span.parent_span_id.is_none(),
                is_error: span.status.code == StatusCode::Error,
            },
            span,
        })
        .collect()
}

/// Spans a policy kept, and how many it dropped per (service, rule), in
/// first-seen order.
#[derive(Debug, Default)]
pub struct Kept {
    pub spans: Vec<Span>,
    pub dropped: Vec<(String, String, u64)>,
}

/// Splits `spans` by `policy`: what is kept goes on to be stored.
pub fn keep(policy: &Policy, spans: Vec<Span>) -> Kept {
    if policy.is_empty() {
        return Kept {
            spans,
            dropped: Vec::new(),
        };
    }
    let mut kept = Kept::default();
    for span in spans {
        let Some(rule) = policy.dropped_by(&span) else {
            kept.spans.push(span);
            continue;
        };
        let service = span.service_name();
        match kept
            .dropped
            .iter_mut()
            .find(|(s, r, _)| s == service && r == rule)
        {
            Some(known) => known.2 += 1,
            None => kept.dropped.push((service.to_owned(), rule.to_owned(), 1)),
        }
    }
    kept
}

/// What a set of spans adds to their trace's summary row.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceDelta {
    pub start_ns: u64,
    pub end_ns: u64,
    pub span_count: u64,
    pub error_count: u64,
    /// Service and operation of the root span, when it is among these spans.
    pub root: Option<(String, String)>,
}

impl TraceDelta {
    fn new(span: &SpanFacts) -> Self {
        Self {
            start_ns: span.start_ns,
            end_ns: span.end_ns,
            span_count: 0,
            error_count: 0,
            root: None,
        }
    }

    pub fn add(&mut self, span: &SpanFacts) {
        self.start_ns = self.start_ns.min(span.start_ns);
        self.end_ns = self.end_ns.max(span.end_ns);
        self.span_count += 1;
        self.error_count += u64::from(span.is_error);
        if span.is_root {
            self.root = Some((span.service().to_owned(), span.name.clone()));
        }
    }
}

/// Per-trace summaries of the given spans (the store passes only the spans it
/// actually inserted, so a retried batch adds nothing).
pub fn summarize<'a>(
    spans: impl IntoIterator<Item = &'a SpanFacts>,
) -> HashMap<TraceId, TraceDelta> {
    let mut traces: HashMap<TraceId, TraceDelta> = HashMap::new();
    for span in spans {
        traces
            .entry(span.trace_id)
            .or_insert_with(|| TraceDelta::new(span))
            .add(span);
    }
    traces
}

#[cfg(test)]
mod tests;
