//! What the backend's unit tests share: model spans come from
//! `otelite_model::fixtures` (re-exported here), and this turns them into
//! what the receiver hands a store, analyzed and counted per service at
//! process and analyze, and writes them.

pub use otelite_model::fixtures::*;

use crate::analyze;
use crate::process;
use crate::stage::Stage;
use crate::storage::sqlite::{SpanRow, SqliteStore};
use crate::storage::{Ingest, StoreError, Stored, TraceStore};
use otelite_model::Span;

/// `spans` as the receiver passes them on when they arrive at
/// `received_ns`: analyzed, and each service's spans counted at process
/// and analyze.
pub fn ingest(spans: Vec<Span>, received_ns: u64) -> Ingest {
    let counted = process::count_by_service(&spans)
        .into_iter()
        .flat_map(|(service, n)| {
            [
                (service.clone(), Stage::Process, n),
                (service, Stage::Analyze, n),
            ]
        })
        .collect();
    Ingest {
        spans: analyze::analyze(spans),
        counted,
        received_ns,
    }
}

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
