//! The ClickHouse store: the same API as SQLite's, for users who outgrow one
//! file. Several `otelite serve --store clickhouse` processes can share one
//! ClickHouse (or a cluster's Distributed tables): they keep no state that
//! queries need, only caches (see "Across processes" below).
//!
//! - `http`: the HTTP interface through hyper; `rowbinary`: the data format.
//! - `migrations`: the versioned schema (`schema-18.16.sql` and the
//!   `migrate-N.sql` after it), on every ClickHouse version.
//! - `encode` (on the receiver's blocking thread) and `write`: batches in.
//! - `read` and `search`: the query API's answers.
//! - `retention`: whole day partitions dropped past `--retention`.
//! - `deadline`: each read held to `query_timeout`, killed when abandoned.
//!
//! Writes are bounded like SQLite's queue: at most `write_queue` inserts in
//! flight and `max_queued_spans` spans in them; past that, `Overloaded`
//! (503) at once. One task writes the spans, whatever has queued in one
//! INSERT, so a client that hangs up does not cut an insert short.
//!
//! Across processes: service edges come from the store (`edges`: the
//! halves of a call may reach different receivers), and every read takes
//! a span once. A retried batch whose copies two receivers stored at the
//! same moment (the "already stored?" check cannot see a copy being
//! inserted elsewhere; within one process the single span writer rules it
//! out) is found by the writers' look after their INSERT (`copies`), and
//! the stage counts take the extra copies back.
//! The last values of exporter counters are per process.

mod copies;
mod deadline;
mod edges;
mod encode;
mod failed;
mod granules;
pub mod http;
mod migrations;
mod minutes;
mod orphans;
mod read;
mod reader;
mod rebuild;
mod replicated;
pub mod retention;
mod rowbinary;
mod search;
mod waiting;
mod write;

pub use encode::Rows;
pub use http::{ClickHouseError, Client};
pub use migrations::{CURRENT_VERSION, MigrationError};
pub use reader::ClickHouseReader;

use super::{Background, Ingest, ReadsThrough, StoreFuture, TraceStore};
use crate::storage::retention::{Policy, Totals};
use crate::storage::{CounterPoint, QueueLimits, StoreError, Stored, WriteHealth};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// How long `/readyz` waits for ClickHouse's `/ping`: an orchestrator
/// probes often and wants a quick no.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A handle to the ClickHouse store, with its reads' time limit; cheap to
/// clone.
#[derive(Clone)]
pub struct ClickHouseStore(Arc<Inner>, std::time::Duration);

struct Inner {
    client: Client,
    inserts: Arc<Semaphore>,
    insert_capacity: usize,
    span_budget: Arc<Semaphore>,
    span_capacity: usize,
    last_write_failed: Arc<AtomicBool>,
    /// To the span writer task (see `writer`); admission is bounded by the
    /// semaphores, so the channel need not be.
    span_writer: mpsc::UnboundedSender<Pending>,
    /// Also serialises counter writes, so increments are computed in order.
    series: tokio::sync::Mutex<write::SeriesMemory>,
}

impl ClickHouseStore {
    /// Connects to `url` (see [`Client::new`]), creating and migrating the
    /// database if needed.
    pub async fn open(url: &str, limits: QueueLimits) -> Result<Self, StoreError> {
        let client = Client::new(url).map_err(StoreError::from)?;
        migrations::migrate(&client).await?;
        let (requests, spans) = (limits.requests.max(1), limits.spans.max(1));
        let last_write_failed = Arc::new(AtomicBool::new(false));
        let (span_writer, queue) = mpsc::unbounded_channel();
        tokio::spawn(writer(client.clone(), queue, last_write_failed.clone()));
        Ok(Self(
            Arc::new(Inner {
                client,
                inserts: Arc::new(Semaphore::new(requests)),
                insert_capacity: requests,
                span_budget: Arc::new(Semaphore::new(spans)),
                span_capacity: spans,
                last_write_failed,
                span_writer,
                series: tokio::sync::Mutex::new(write::SeriesMemory::new()),
            }),
            crate::storage::sqlite::DEFAULT_QUERY_TIMEOUT,
        ))
    }

    /// The same store, whose reads stop after `timeout`.
    pub fn with_query_timeout(self, timeout: std::time::Duration) -> Self {
        Self(self.0, timeout)
    }

    pub fn client(&self) -> &Client {
        &self.0.client
    }

    /// A slot for one insert, or `Overloaded`.
    fn admit(&self, spans: usize) -> Result<[OwnedSemaphorePermit; 2], StoreError> {
        let insert = self
            .0
            .inserts
            .clone()
            .try_acquire_owned()
            .map_err(|_| StoreError::Overloaded)?;
        let wanted = spans.clamp(1, self.0.span_capacity) as u32;
        let spans = self
            .0
            .span_budget
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| StoreError::Overloaded)?;
        Ok([insert, spans])
    }
}

/// A batch waiting for the span writer, holding its share of the limits.
struct Pending {
    rows: Rows,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
    _permits: [OwnedSemaphorePermit; 2],
}

/// Spans taken into one INSERT at most.
const GROUP_SPANS: usize = 50_000;

/// How often the writer, idle, tries again to write the failures it could
/// not write (ClickHouse down), so they show without new traffic.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The span writer: takes whatever batches have queued up (group commit, as
/// the SQLite writer does), writes them in one INSERT and answers each.
/// One writer also makes "already stored?" and the insert one step, so two
/// copies of a retried batch are never both stored. The spans of a group
/// that fails are booked as lost at the store (see `failed`), written now
/// or, while ClickHouse is down, every [`FLUSH_EVERY`] until it answers.
/// It ends when every store handle is gone and the queue is empty.
async fn writer(
    client: Client,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    failed: Arc<AtomicBool>,
) {
    let mut failures = failed::Failures::default();
    loop {
        let first = if failures.has_pending() {
            match tokio::time::timeout(FLUSH_EVERY, queue.recv()).await {
                Ok(first) => first,
                Err(_) => {
                    flush(&client, &mut failures).await;
                    continue;
                }
            }
        } else {
            queue.recv().await
        };
        let Some(first) = first else { break };
        let mut spans = first.rows.len();
        let mut group = vec![first];
        while spans < GROUP_SPANS {
            let Ok(next) = queue.try_recv() else { break };
            spans += next.rows.len();
            group.push(next);
        }
        let rows: Vec<&Rows> = group.iter().map(|p| &p.rows).collect();
        let written = write::spans(&client, &mut failures, &rows).await;
        failed.store(written.is_err(), Ordering::Relaxed);
        // Before answering: a client that hears 503 and asks for the rates
        // sees the loss as soon as ClickHouse can take it.
        flush(&client, &mut failures).await;
        match written {
            Ok(results) => {
                for (pending, stored) in group.into_iter().zip(results) {
                    // A requester that gave up no longer listens.
                    drop(pending.reply.send(Ok(stored)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ClickHouse: span insert failed");
                for pending in group {
                    drop(pending.reply.send(Err(StoreError::ClickHouse(e.clone()))));
                }
            }
        }
    }
    if failures.has_pending() && write::flush_failures(&client, &mut failures).await.is_err() {
        tracing::error!(
            pending = ?failures.take_pending(),
            "ClickHouse: stopping with failed writes not recorded (ClickHouse does not answer); \
             these stage counts and losses are lost"
        );
    }
}

/// Writes the booked failures, if any; kept for later when ClickHouse
/// does not take them.
async fn flush(client: &Client, failures: &mut failed::Failures) {
    if let Err(error) = write::flush_failures(client, failures).await {
        tracing::warn!(%error, "ClickHouse: failed writes kept in memory until ClickHouse answers");
    }
}

/// The task's answer, or `Closed` when the runtime dropped it.
async fn joined<T>(task: tokio::task::JoinHandle<Result<T, StoreError>>) -> Result<T, StoreError> {
    task.await.map_err(|_| StoreError::Closed)?
}

impl ReadsThrough for ClickHouseStore {
    type Reader = ClickHouseReader;

    /// The reads of this database: a client clone held to the limit.
    fn reader(&self) -> ClickHouseReader {
        ClickHouseReader(self.0.client.with_query_timeout(self.1))
    }
}

impl TraceStore for ClickHouseStore {
    fn try_write_spans(&self, ingest: Ingest) -> Result<StoreFuture<Stored>, StoreError> {
        let permits = self.admit(ingest.spans.len())?;
        let rows = Rows::new(ingest);
        let (reply, written) = oneshot::channel();
        self.0
            .span_writer
            .send(Pending {
                rows,
                reply,
                _permits: permits,
            })
            .map_err(|_| StoreError::Closed)?;
        Ok(Box::pin(async move {
            written.await.map_err(|_| StoreError::Closed)?
        }))
    }

    fn try_write_counters(&self, points: Vec<CounterPoint>) -> Result<StoreFuture<()>, StoreError> {
        let permits = self.admit(0)?;
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut memory = store.0.series.lock().await;
            let written = write::counters(&store.0.client, &mut memory, &points).await;
            if written.is_err() {
                // Unknown which readings were recorded: read them back next time.
                memory.clear();
            }
            drop(permits);
            written.map_err(StoreError::from)
        });
        Ok(Box::pin(joined(task)))
    }

    fn health(&self) -> WriteHealth {
        let inner = &self.0;
        WriteHealth {
            writer_alive: true,
            last_write_failed: inner.last_write_failed.load(Ordering::Relaxed),
            queued_requests: inner.insert_capacity - inner.inserts.available_permits(),
            request_capacity: inner.insert_capacity,
            queued_spans: inner.span_capacity - inner.span_budget.available_permits(),
            span_capacity: inner.span_capacity,
        }
    }

    fn ping(&self) -> StoreFuture<()> {
        self.reader()
            .answer(|client| async move { client.ping(PING_TIMEOUT).await })
    }

    fn size_on_disk(&self) -> StoreFuture<u64> {
        self.reader()
            .answer(|client| async move { read::size_on_disk(&client).await })
    }

    fn retention_totals(&self) -> Totals {
        Totals::default()
    }

    fn retention(&self, policy: Policy, stop: tokio::sync::watch::Receiver<bool>) -> Background {
        Box::pin(retention::run(self.0.client.clone(), policy, stop))
    }
}
