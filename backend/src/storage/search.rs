//! A trace search as every store takes it, and its answer: trace summaries
//! newest first, one page at a time.

use otelite_model::{SpanKind, StatusCode, TraceId};
use serde::{Deserialize, Serialize};

/// A trace search; every filter is optional, and all given must hold on one
/// span of the trace.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub kind: Option<SpanKind>,
    /// Attributes `(key, value)` of the span or of its resource, values as
    /// `searchable_text` writes them.
    pub attributes: Vec<(String, String)>,
    /// String attributes `(key, prefix)` whose value starts with `prefix`,
    /// of the span or of its resource.
    pub attribute_prefixes: Vec<(String, String)>,
    pub error_only: bool,
    /// A span with this status code (Jaeger's `otel.status_code` tag).
    pub status: Option<StatusCode>,
    pub min_duration_ns: Option<u64>,
    pub max_duration_ns: Option<u64>,
    /// The time window, unix nanoseconds: with span filters a matching span
    /// must start in it; without, the trace must overlap it.
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    pub limit: usize,
    /// Continue after this point of an earlier page.
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCount {
    pub name: String,
    pub span_count: u64,
    pub error_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    pub trace_id: String,
    pub root_service: Option<String>,
    pub root_name: Option<String>,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub duration_nanos: u64,
    pub span_count: u64,
    pub error_count: u64,
    /// Spans whose parent is not (yet) stored.
    pub orphan_span_count: u64,
    pub services: Vec<ServiceCount>,
}

/// One page of search results, and where the next one starts when this
/// one is full.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub traces: Vec<TraceSummary>,
    pub next: Option<Cursor>,
}

/// Where a page of results continues: after this sort key and trace id.
/// Written as `{key}-{trace id hex}` in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub trace_id: TraceId,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.key, self.trace_id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (key, trace_id) = text.split_once('-').ok_or(())?;
        Ok(Self {
            key: key.parse().map_err(|_| ())?,
            trace_id: TraceId::from_hex(trace_id).ok_or(())?,
        })
    }
}
