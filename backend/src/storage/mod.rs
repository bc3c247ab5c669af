//! The store seam: what ingest, the query APIs and `/metrics` need from a
//! store, as one trait ([`TraceStore`]) with two implementations: SQLite
//! (`sqlite`, the default, delegating to [`crate::storage::sqlite`]) and ClickHouse
//! ([`clickhouse`], for users who outgrow one file). Callers hold a
//! [`Storage`], a cheap handle to whichever `otelite serve` opened.
//!
//! Writes come in two steps so that both keep the receiver's promises:
//! [`TraceStore::prepare`] does the CPU work (encoding) on a blocking thread,
//! then [`TraceStore::try_write_spans`] either refuses at once
//! (`StoreError::Overloaded`, answered 503) or returns a future that
//! resolves only once the store has accepted the insert (answered 200).

pub mod clickhouse;
pub mod sqlite;

mod counts;
mod dependency;
mod error;
pub mod retention;
mod search;
mod write;

pub use counts::{CounterPoint, RateRow};
pub use dependency::Dependency;
pub use error::StoreError;
pub use search::{Cursor, Page, ServiceCount, TraceQuery, TraceSummary};
pub use write::{QueueLimits, Stored, WriteHealth};

use crate::analyze::AnalyzedSpan;
use crate::stage::Stage;
use otelite_model::{Span, SpanKind, TraceId};
use retention::{Policy, Totals};
use sqlite::{SpanBatch, Store};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// A boxed future that owns what it needs: the trait stays object-safe.
pub type Reply<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// Spans after process and analyze, in the form both stores take.
#[derive(Debug)]
pub struct Ingest {
    pub spans: Vec<AnalyzedSpan>,
    /// Spans counted at process and analyze, per service.
    pub counted: Vec<(String, Stage, u64)>,
    /// When the batch arrived, unix nanoseconds (the minute its counts go to).
    pub received_ns: u64,
}

/// A batch encoded for one store's writer; only that store can write it.
#[derive(Debug)]
pub struct Prepared(pub(crate) Encoded);

#[derive(Debug)]
pub(crate) enum Encoded {
    Sqlite(SpanBatch),
    ClickHouse(clickhouse::Rows),
}

impl Prepared {
    /// Spans in the batch.
    pub fn len(&self) -> usize {
        match &self.0 {
            Encoded::Sqlite(batch) => batch.spans().len(),
            Encoded::ClickHouse(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One store behind `otelite serve`. Every read owns its arguments so the
/// futures are `'static`.
pub trait TraceStore: Send + Sync + 'static {
    /// Encodes a batch for this store: CPU work, call it off the async threads.
    fn prepare(&self, ingest: Ingest) -> Prepared;
    /// `Overloaded` at once when the store cannot take more; otherwise a
    /// future that resolves after the insert is accepted (committed).
    fn try_write_spans(&self, batch: Prepared) -> Result<Reply<Stored>, StoreError>;
    fn try_write_counters(&self, points: Vec<CounterPoint>) -> Result<Reply<()>, StoreError>;

    /// Names of the services that sent spans, sorted.
    fn services(&self) -> Reply<Vec<String>>;
    /// Operation names of a service with their span kinds, sorted.
    fn operations(&self, service: String, kind: Option<SpanKind>)
    -> Reply<Vec<(String, SpanKind)>>;
    /// All stored spans of a trace by start time; `None` when there are none.
    fn trace(&self, trace_id: TraceId) -> Reply<Option<Vec<Span>>>;
    /// Newest traces first, one page.
    fn search_page(&self, query: TraceQuery) -> Reply<Page>;
    /// The service graph between two times (unix ns).
    fn dependencies(&self, start_ns: u64, end_ns: u64) -> Reply<Vec<Dependency>>;
    /// Stage counts summed over the minutes in `[start_minute, end_minute]`.
    fn stage_counts(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
    ) -> Reply<Vec<RateRow>>;

    /// The write path's state, for readiness and metrics; cheap.
    fn health(&self) -> WriteHealth;
    /// `Ok` when the store answers now, for `/readyz`; quick even when it
    /// does not (a store in another process may be down or unreachable).
    fn ping(&self) -> Reply<()>;
    /// Bytes the store's data takes on disk.
    fn size_on_disk(&self) -> Reply<u64>;
    /// What retention has deleted since start.
    fn retention_totals(&self) -> Totals;
    /// The background task that applies `policy` until `stop` turns true
    /// (at once done when the policy is off).
    fn retention(&self, policy: Policy, stop: watch::Receiver<bool>) -> Background;
}

/// A background task's future, for `tokio::spawn`.
pub type Background = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A handle to the store `otelite serve` opened; cheap to clone.
#[derive(Clone)]
pub struct Storage(Arc<dyn TraceStore>);

impl Storage {
    pub fn new(store: impl TraceStore) -> Self {
        Self(Arc::new(store))
    }

    /// The first page of a search.
    pub async fn search(&self, query: TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        Ok(self.search_page(query).await?.traces)
    }

    /// The spans of each of these traces that has any, in the given order.
    pub async fn traces(&self, ids: Vec<TraceId>) -> Result<Vec<Vec<Span>>, StoreError> {
        let mut traces = Vec::with_capacity(ids.len());
        for id in ids {
            traces.extend(self.trace(id).await?);
        }
        Ok(traces)
    }

    /// The spans of each trace a search finds, newest trace first.
    pub async fn search_traces(&self, query: TraceQuery) -> Result<Vec<Vec<Span>>, StoreError> {
        let ids = self
            .search(query)
            .await?
            .iter()
            .filter_map(|summary| TraceId::from_hex(&summary.trace_id))
            .collect();
        self.traces(ids).await
    }
}

impl std::ops::Deref for Storage {
    type Target = dyn TraceStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl From<Store> for Storage {
    fn from(store: Store) -> Self {
        Self::new(store)
    }
}

impl From<&Store> for Storage {
    fn from(store: &Store) -> Self {
        Self::new(store.clone())
    }
}

impl From<&Storage> for Storage {
    fn from(storage: &Storage) -> Self {
        storage.clone()
    }
}
