//! The SQLite store behind the seam: reads go to its reader's pool, writes
//! through its writer thread.

use super::{SpanBatch, SpanRow, SqliteReader, SqliteStore, retention};
use crate::storage::retention::{INTERVAL, Policy, Totals};
use crate::storage::{
    Background, CounterPoint, Ingest, ReadsThrough, StoreError, StoreFuture, Stored, TraceStore,
    WriteHealth,
};
use std::sync::Arc;

/// The SQLite writer's batch: each span encoded into its row.
pub(crate) fn span_batch(ingest: Ingest) -> SpanBatch {
    SpanBatch::new(
        ingest.spans.into_iter().map(SpanRow::new).collect(),
        ingest.counted,
        ingest.lost,
        ingest.received_ns,
    )
}

impl ReadsThrough for SqliteStore {
    type Reader = SqliteReader;

    fn reader(&self) -> SqliteReader {
        self.reader.clone()
    }
}

impl TraceStore for SqliteStore {
    fn try_write_spans(&self, ingest: Ingest) -> Result<StoreFuture<Stored>, StoreError> {
        let permit = self.admit(ingest.spans.len())?;
        let batch = Arc::new(span_batch(ingest));
        let committed = self.queue_spans(Arc::clone(&batch), permit)?;
        Ok(Box::pin(async move {
            let stored = committed.await;
            // The writer has let go of it: the spans are freed here, off
            // the writer thread.
            drop(batch);
            stored.map_err(|_| StoreError::Closed)?
        }))
    }

    fn try_write_counters(&self, points: Vec<CounterPoint>) -> Result<StoreFuture<()>, StoreError> {
        let committed = SqliteStore::try_write_counters(self, points)?;
        Ok(Box::pin(async move {
            committed.await.map_err(|_| StoreError::Closed)?
        }))
    }

    fn health(&self) -> WriteHealth {
        SqliteStore::health(self)
    }

    /// The file is in this process: `health` already says all.
    fn ping(&self) -> StoreFuture<()> {
        Box::pin(async { Ok(()) })
    }

    fn size_peak(&self) -> Option<u64> {
        Some(SqliteStore::size_peak(self))
    }

    fn size_on_disk(&self) -> StoreFuture<u64> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.size_on_disk())
                .await
                .map_err(|e| StoreError::WriteFailed(format!("size task failed: {e}")))
        })
    }

    fn retention_totals(&self) -> Totals {
        SqliteStore::retention_totals(self)
    }

    fn retention(&self, policy: Policy, stop: tokio::sync::watch::Receiver<bool>) -> Background {
        Box::pin(retention::run(self.clone(), policy, INTERVAL, stop))
    }
}
