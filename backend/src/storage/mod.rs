//! The storage seam: what ingest, the query APIs, `/metrics` and the
//! reading commands need from a store, and the vocabulary every store
//! speaks. Two traits: [`TraceReader`] (the questions, answered by the
//! SQLite file, ClickHouse and a running otelite over HTTP) and
//! [`TraceStore`] (a reader that also takes writes: SQLite, the default, and
//! ClickHouse, for users who outgrow one file). `otelite serve` holds a
//! [`Storage`], a cheap handle to whichever store it opened.
//!
//! A write is one call, [`TraceStore::try_write_spans`], made on a blocking
//! thread: it encodes for its own store, then either refuses at once
//! (`StoreError::Overloaded`, answered 503) or returns a future that
//! resolves only once the store has committed the spans (answered 200).
//!
//! - `sqlite/` and `clickhouse/`: the two stores; `remote`: a running
//!   otelite asked over HTTP, read-only.
//! - `error`, `search`, `counts`, `dependency`, `write`, `retention`: the
//!   shared vocabulary.

pub mod clickhouse;
pub mod remote;
pub mod sqlite;

mod counts;
mod dependency;
mod error;
pub mod retention;
mod search;
mod trace_page;
mod write;

pub use counts::{CounterPoint, Lost, Orphans, RateRow};
pub use dependency::Dependency;
pub use error::StoreError;
pub use search::{Cursor, Page, ServiceCount, TraceQuery, TraceSummary};
pub use trace_page::{PageRequest, Pager, SpanKey, TracePage, page_of};
pub use write::{QueueLimits, Stored, WriteHealth};

use crate::analyze::AnalyzedSpan;
use crate::stage::Stage;
use futures_util::future::join_all;
use otelite_model::{SpanKind, TraceId};
use retention::{Policy, Totals};
use sqlite::SqliteStore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A store's answer to come: a boxed future that owns what it needs, so the
/// traits stay object-safe and callers can hold it past the call.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// Spans after process and analyze, as every store takes them.
#[derive(Debug)]
pub struct Ingest {
    pub spans: Vec<AnalyzedSpan>,
    /// Spans counted at process and analyze, per service.
    pub counted: Vec<(String, Stage, u64)>,
    /// Spans of the request lost at process (invalid), by reason: the
    /// store keeps their count with the others.
    pub lost: Vec<Lost>,
    /// When the batch arrived, unix nanoseconds (the minute its counts go to).
    pub received_ns: u64,
}

/// The questions every reader answers: the SQLite file (read-only), the
/// ClickHouse database, and a running otelite over its HTTP API. The query
/// APIs and the reading commands ask through it and never name a store.
/// Every read owns its arguments so the futures are `'static`.
pub trait TraceReader: Send + Sync + 'static {
    /// Names of the services that sent spans, sorted.
    fn services(&self) -> StoreFuture<Vec<String>>;
    /// Operation names of a service with their span kinds, sorted.
    fn operations(
        &self,
        service: String,
        kind: Option<SpanKind>,
    ) -> StoreFuture<Vec<(String, SpanKind)>>;
    /// One page of a trace's stored spans, by start time then span id;
    /// `None` when there are none.
    fn trace_page(&self, trace_id: TraceId, page: PageRequest) -> StoreFuture<Option<TracePage>>;
    /// The first page of each of these traces (at most `limit` spans), in
    /// the order asked. By default each trace's own read, all at once; a
    /// store may answer them together.
    fn first_pages(&self, ids: Vec<TraceId>, limit: usize) -> StoreFuture<Vec<Option<TracePage>>> {
        let reads: Vec<_> = ids
            .into_iter()
            .map(|id| self.trace_page(id, PageRequest::first(limit)))
            .collect();
        Box::pin(async move { join_all(reads).await.into_iter().collect() })
    }
    /// Newest traces first, one page.
    fn search_page(&self, query: TraceQuery) -> StoreFuture<Page>;
    /// The service graph between two times (unix ns).
    fn dependencies(&self, start_ns: u64, end_ns: u64) -> StoreFuture<Vec<Dependency>>;
    /// Stage counts summed over the minutes in `[start_minute, end_minute]`.
    fn stage_counts(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
    ) -> StoreFuture<Vec<RateRow>>;
    /// Spans whose parent is not stored, per service and for all (one row
    /// with `service: None`), among those that arrived in the minutes
    /// `[start_minute, end_minute]` at least `grace` ago. A reader of a
    /// running otelite answers with the server's own grace period.
    fn orphans(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
        grace: Duration,
    ) -> StoreFuture<Vec<Orphans>>;
}

/// A store that answers the reads through a reader of its own: it is a
/// [`TraceReader`] by that alone (below), so each store writes its reads once.
pub trait ReadsThrough: Send + Sync + 'static {
    type Reader: TraceReader;
    /// The reader; cheap (a handle clone).
    fn reader(&self) -> Self::Reader;
}

impl<T: ReadsThrough> TraceReader for T {
    fn services(&self) -> StoreFuture<Vec<String>> {
        self.reader().services()
    }

    fn operations(
        &self,
        service: String,
        kind: Option<SpanKind>,
    ) -> StoreFuture<Vec<(String, SpanKind)>> {
        self.reader().operations(service, kind)
    }

    fn trace_page(&self, trace_id: TraceId, page: PageRequest) -> StoreFuture<Option<TracePage>> {
        self.reader().trace_page(trace_id, page)
    }

    fn first_pages(&self, ids: Vec<TraceId>, limit: usize) -> StoreFuture<Vec<Option<TracePage>>> {
        self.reader().first_pages(ids, limit)
    }

    fn search_page(&self, query: TraceQuery) -> StoreFuture<Page> {
        self.reader().search_page(query)
    }

    fn dependencies(&self, start_ns: u64, end_ns: u64) -> StoreFuture<Vec<Dependency>> {
        self.reader().dependencies(start_ns, end_ns)
    }

    fn stage_counts(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
    ) -> StoreFuture<Vec<RateRow>> {
        self.reader()
            .stage_counts(service, start_minute, end_minute)
    }

    fn orphans(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
        grace: Duration,
    ) -> StoreFuture<Vec<Orphans>> {
        self.reader()
            .orphans(service, start_minute, end_minute, grace)
    }
}

/// One store behind `otelite serve`: it answers the reads and takes the
/// writes.
pub trait TraceStore: TraceReader {
    /// Encodes `ingest` for this store and queues it: CPU work, so call it
    /// off the async threads. `Overloaded` at once when the store cannot
    /// take more; otherwise a future that resolves once the spans are
    /// committed (the receiver answers 200 only then).
    fn try_write_spans(&self, ingest: Ingest) -> Result<StoreFuture<Stored>, StoreError>;
    fn try_write_counters(&self, points: Vec<CounterPoint>) -> Result<StoreFuture<()>, StoreError>;

    /// The write path's state, for readiness and metrics; cheap.
    fn health(&self) -> WriteHealth;
    /// `Ok` when the store answers now, for `/readyz`; quick even when it
    /// does not (a store in another process may be down or unreachable).
    fn ping(&self) -> StoreFuture<()>;
    /// Bytes the store's data takes on disk.
    fn size_on_disk(&self) -> StoreFuture<u64>;
    /// The most bytes its files took at once since start, where the store
    /// tracks it (SQLite's files do: they grow with the WAL under load).
    fn size_peak(&self) -> Option<u64> {
        None
    }
    /// What retention has deleted since start.
    fn retention_totals(&self) -> Totals;
    /// The background task that applies `policy` until `stop` turns true
    /// (at once done when the policy is off).
    fn retention(&self, policy: Policy, stop: watch::Receiver<bool>) -> Background;
}

/// A background task's future, for `tokio::spawn`.
pub type Background = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Traces [`Storage::traces`] reads at once.
const TRACES_AT_ONCE: usize = 4;

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

    /// The first pages of these traces, in the given order, within
    /// `budget` spans in all: each trace gets at most what the budget has
    /// left, and once it is spent the remaining ids are not read. Traces
    /// are read [`TRACES_AT_ONCE`] at a time (a Jaeger search's 20 traces
    /// took 20 round trips to ClickHouse in a row), each with what
    /// the budget had left before them, then cut to what the ones before it
    /// left; so at most that many budgets of spans are held at once. On
    /// ClickHouse the traces of a chunk are one query (`first_pages`).
    pub async fn traces(&self, ids: Vec<TraceId>, budget: usize) -> Result<Traces, StoreError> {
        let mut out = Traces::default();
        let mut left = budget;
        for chunk in ids.chunks(TRACES_AT_ONCE) {
            if left == 0 {
                out.not_read.extend_from_slice(chunk);
                continue;
            }
            let pages = self.first_pages(chunk.to_vec(), left).await?;
            for (id, page) in chunk.iter().zip(pages) {
                if left == 0 {
                    out.not_read.push(*id);
                    continue;
                }
                match page {
                    Some(mut page) => {
                        page.cut_to(left);
                        left = left.saturating_sub(page.spans.len());
                        out.found.push(page);
                    }
                    None => out.missing.push(*id),
                }
            }
        }
        Ok(out)
    }

    /// The first pages of the traces a search finds, newest trace first,
    /// within `budget` spans in all (see [`Storage::traces`]).
    pub async fn search_traces(
        &self,
        query: TraceQuery,
        budget: usize,
    ) -> Result<Traces, StoreError> {
        let ids = self
            .search(query)
            .await?
            .iter()
            .filter_map(|summary| TraceId::from_hex(&summary.trace_id))
            .collect();
        self.traces(ids, budget).await
    }
}

/// What [`Storage::traces`] found.
#[derive(Debug, Default)]
pub struct Traces {
    /// The first page of each trace found, in the order asked.
    pub found: Vec<TracePage>,
    /// Ids with no stored spans.
    pub missing: Vec<TraceId>,
    /// Ids left unread because the budget was spent.
    pub not_read: Vec<TraceId>,
}

impl std::ops::Deref for Storage {
    type Target = dyn TraceStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl From<SqliteStore> for Storage {
    fn from(store: SqliteStore) -> Self {
        Self::new(store)
    }
}

impl From<&SqliteStore> for Storage {
    fn from(store: &SqliteStore) -> Self {
        Self::new(store.clone())
    }
}

impl From<&Storage> for Storage {
    fn from(storage: &Storage) -> Self {
        storage.clone()
    }
}
