//! What the backend's unit tests share: model spans come from
//! `otelite_model::fixtures` (re-exported here), and this turns them into
//! what the receiver hands a store, analyzed and counted per service at
//! process and analyze, and writes them.

pub use otelite_model::fixtures::*;

use crate::analyze;
use crate::storage::sqlite::{SpanRow, SqliteStore};
use crate::storage::{StoreError, Stored, TraceStore};
use otelite_model::Span;

/// What the receiver hands a store: analyzed, counted per service.
pub(crate) use crate::receive::ingest;

/// `spans` analyzed and encoded into rows, without a batch around them.
pub fn rows(spans: Vec<Span>) -> Vec<SpanRow> {
    analyze::analyze(spans)
        .into_iter()
        .map(SpanRow::new)
        .collect()
}

/// Writes `spans` as one request received at `received_ns` and waits for
/// the commit.
pub async fn write(
    store: &SqliteStore,
    spans: Vec<Span>,
    received_ns: u64,
) -> Result<Stored, StoreError> {
    // The receiver's own path: the store encodes and queues the batch.
    TraceStore::try_write_spans(store, ingest(spans, received_ns))?.await
}
