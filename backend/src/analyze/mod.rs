//! Trace analysis, between process and store: per span its duration, whether
//! it is a root and whether it failed; per trace what this batch adds to its
//! summary; across batches, the service-to-service edges (see `edges`).
//! Pure functions over model types: no I/O, no clock.

mod edges;

pub use edges::{Edge, EdgeResolver};

use otelite_exporter::model::{Span, StatusCode, TraceId};
use std::collections::HashMap;

/// A span with what analysis learnt about it.
#[derive(Debug, Clone)]
pub struct AnalyzedSpan {
    pub span: Span,
    pub duration_ns: u64,
    pub is_root: bool,
    pub is_error: bool,
}

pub fn analyze(spans: Vec<Span>) -> Vec<AnalyzedSpan> {
    spans
        .into_iter()
        .map(|span| AnalyzedSpan {
            duration_ns: span.duration_nanos(),
            is_root: span.parent_span_id.is_none(),
            is_error: span.status.code == StatusCode::Error,
            span,
        })
        .collect()
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
    fn new(span: &AnalyzedSpan) -> Self {
        Self {
            start_ns: span.span.start_time_unix_nano,
            end_ns: span.span.end_time_unix_nano,
            span_count: 0,
            error_count: 0,
            root: None,
        }
    }

    pub fn add(&mut self, span: &AnalyzedSpan) {
        self.start_ns = self.start_ns.min(span.span.start_time_unix_nano);
        self.end_ns = self.end_ns.max(span.span.end_time_unix_nano);
        self.span_count += 1;
        self.error_count += u64::from(span.is_error);
        if span.is_root {
            self.root = Some((span.span.service_name().to_owned(), span.span.name.clone()));
        }
    }
}

/// Per-trace summaries of the given spans (the store passes only the spans it
/// actually inserted, so a retried batch adds nothing).
pub fn summarize<'a>(
    spans: impl IntoIterator<Item = &'a AnalyzedSpan>,
) -> HashMap<TraceId, TraceDelta> {
    let mut traces: HashMap<TraceId, TraceDelta> = HashMap::new();
    for span in spans {
        traces
            .entry(span.span.trace_id)
            .or_insert_with(|| TraceDelta::new(span))
            .add(span);
    }
    traces
}

#[cfg(test)]
mod tests;
