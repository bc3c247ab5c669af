//! The SQLite store behind the seam: every call delegates to the store's
//! functions, reads on its read-only pool, writes through its writer.

use super::retention;
use super::{SpanBatch, SpanRow, Store};
use crate::storage::retention::{Policy, Totals};
use crate::storage::{
    Background, CounterPoint, Dependency, Encoded, Ingest, Page, Prepared, RateRow, Reply,
    StoreError, Stored, TraceQuery, TraceStore, WriteHealth,
};
use otelite_model::{Span, SpanKind, TraceId};
use std::sync::Arc;

/// The SQLite writer's batch: each span encoded into its row.
pub(crate) fn span_batch(ingest: Ingest) -> SpanBatch {
    SpanBatch::new(
        ingest.spans.into_iter().map(SpanRow::new).collect(),
        ingest.counted,
        ingest.received_ns,
    )
}

impl TraceStore for Store {
    fn prepare(&self, ingest: Ingest) -> Prepared {
        Prepared(Encoded::Sqlite(span_batch(ingest)))
    }

    fn try_write_spans(&self, batch: Prepared) -> Result<Reply<Stored>, StoreError> {
        let Encoded::Sqlite(batch) = batch.0 else {
            return Err(StoreError::WriteFailed(
                "a batch prepared for another store".into(),
            ));
        };
        let batch = Arc::new(batch);
        let committed = Store::try_write_spans(self, Arc::clone(&batch))?;
        Ok(Box::pin(async move {
            let stored = committed.await;
            // The writer has let go of it: the spans are freed here, off
            // the writer thread.
            drop(batch);
            stored.map_err(|_| StoreError::Closed)?
        }))
    }

    fn try_write_counters(&self, points: Vec<CounterPoint>) -> Result<Reply<()>, StoreError> {
        let committed = Store::try_write_counters(self, points)?;
        Ok(Box::pin(async move {
            committed.await.map_err(|_| StoreError::Closed)?
        }))
    }

    fn services(&self) -> Reply<Vec<String>> {
        let store = self.clone();
        Box::pin(async move { store.read(super::services).await })
    }

    fn operations(
        &self,
        service: String,
        kind: Option<SpanKind>,
    ) -> Reply<Vec<(String, SpanKind)>> {
        let store = self.clone();
        Box::pin(async move {
            store
                .read(move |conn| super::operations(conn, &service, kind))
                .await
        })
    }

    fn trace(&self, trace_id: TraceId) -> Reply<Option<Vec<Span>>> {
        let store = self.clone();
        Box::pin(async move { store.read(move |conn| super::trace(conn, &trace_id)).await })
    }

    fn search_page(&self, query: TraceQuery) -> Reply<Page> {
        let store = self.clone();
        Box::pin(async move {
            store
                .read(move |conn| super::search_page(conn, &query))
                .await
        })
    }

    fn dependencies(&self, start_ns: u64, end_ns: u64) -> Reply<Vec<Dependency>> {
        let store = self.clone();
        Box::pin(async move {
            store
                .read(move |conn| super::dependencies(conn, start_ns, end_ns))
                .await
        })
    }

    fn stage_counts(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
    ) -> Reply<Vec<RateRow>> {
        let store = self.clone();
        Box::pin(async move {
            store
                .read(move |conn| {
                    super::stage_counts(conn, service.as_deref(), start_minute, end_minute)
                })
                .await
        })
    }

    fn health(&self) -> WriteHealth {
        Store::health(self)
    }

    /// The file is in this process: `health` already says all.
    fn ping(&self) -> Reply<()> {
        Box::pin(async { Ok(()) })
    }

    fn size_on_disk(&self) -> Reply<u64> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.size_on_disk())
                .await
                .map_err(|e| StoreError::WriteFailed(format!("size task failed: {e}")))
        })
    }

    fn retention_totals(&self) -> Totals {
        Store::retention_totals(self)
    }

    fn retention(&self, policy: Policy, stop: tokio::sync::watch::Receiver<bool>) -> Background {
        Box::pin(retention::run(
            self.clone(),
            policy,
            crate::storage::retention::INTERVAL,
            stop,
        ))
    }
}
