//! The SQLite store's reader: a small pool of read-only connections to the
//! database file, answering the seam's questions off the async threads. The
//! server's store reads through one; the reading commands open one on a file
//! no server needs to hold (`SqliteReader::open`), which checks first that it
//! is an otelite database of this version.
//!
//! Every read has a time limit and stops when its caller goes away: SQLite's
//! progress handler, called every few thousand steps, interrupts the query
//! once the limit has passed or the read's future has been dropped (an
//! abandoned HTTP request), so no query burns CPU for nobody.

use super::unwritten::Unwritten;
use super::{dependencies, operations, orphans, search_page, services, stage_counts, trace_page};
use crate::storage::{
    Dependency, Orphans, Page, PageRequest, RateRow, StoreError, StoreFuture, TracePage,
    TraceQuery, TraceReader,
};
use otelite_model::{SpanKind, TraceId};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle connections kept for the next read; more are opened when needed.
const IDLE_CONNECTIONS: usize = 8;
/// How long one read may run unless told otherwise.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// SQLite virtual-machine steps between two checks of the limit.
const STEPS_PER_CHECK: i32 = 10_000;

/// A handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct SqliteReader(Arc<ReaderPool>);

impl SqliteReader {
    /// The reader of a store this process has opened (and migrated).
    pub(super) fn new(path: &Path) -> Self {
        Self(Arc::new(ReaderPool {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            unwritten: None,
        }))
    }

    /// The same reader, adding to the stage counts it reads those the
    /// writer of this process has not written yet.
    pub(super) fn with_unwritten(self, unwritten: Arc<Unwritten>) -> Self {
        Self(Arc::new(ReaderPool {
            path: self.0.path.clone(),
            idle: Mutex::new(Vec::new()),
            query_timeout: self.0.query_timeout,
            unwritten: Some(unwritten),
        }))
    }

    /// A reader of the same file whose reads stop after `timeout`.
    pub fn with_query_timeout(&self, timeout: Duration) -> Self {
        Self(Arc::new(ReaderPool {
            path: self.0.path.clone(),
            idle: Mutex::new(Vec::new()),
            query_timeout: timeout,
            unwritten: self.0.unwritten.clone(),
        }))
    }

    /// A reader of an existing database file, read-only, with no writer:
    /// an error for a file that is missing, is not an otelite database, or
    /// has another schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let checked = super::open_read_only(path)?;
        let reader = Self::new(path);
        reader.0.give_back(checked);
        Ok(reader)
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Runs `query` on a read-only connection, off the async threads,
    /// within the time limit; dropping the future stops the query.
    pub async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.0.clone();
        let abandoned = Abandoned::default();
        let flag = abandoned.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.take()?;
            let limit = pool.query_timeout;
            let timed_out = Arc::new(AtomicBool::new(false));
            let check = Limit {
                deadline: Instant::now() + limit,
                abandoned: flag,
                timed_out: timed_out.clone(),
            };
            let in_handler = check.clone();
            conn.progress_handler(STEPS_PER_CHECK, Some(move || in_handler.reached()))?;
            CURRENT.with(|current| *current.borrow_mut() = Some(check));
            let result = query(&conn);
            CURRENT.with(|current| current.borrow_mut().take());
            conn.progress_handler(0, None::<fn() -> bool>)?;
            pool.give_back(conn);
            match result {
                Err(_) if timed_out.load(Ordering::Relaxed) => Err(StoreError::QueryTimeout(limit)),
                result => result,
            }
        })
        .await
        .map_err(|e| StoreError::WriteFailed(format!("query task failed: {e}")))?
    }

    fn answer<T, F>(&self, query: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = self.clone();
        Box::pin(async move { reader.read(query).await })
    }
}

impl TraceReader for SqliteReader {
    fn services(&self) -> StoreFuture<Vec<String>> {
        self.answer(services)
    }

    fn operations(
        &self,
        service: String,
        kind: Option<SpanKind>,
    ) -> StoreFuture<Vec<(String, SpanKind)>> {
        self.answer(move |conn| operations(conn, &service, kind))
    }

    fn trace_page(&self, trace_id: TraceId, page: PageRequest) -> StoreFuture<Option<TracePage>> {
        self.answer(move |conn| trace_page(conn, &trace_id, page))
    }

    fn search_page(&self, query: TraceQuery) -> StoreFuture<Page> {
        self.answer(move |conn| search_page(conn, &query))
    }

    fn dependencies(&self, start_ns: u64, end_ns: u64) -> StoreFuture<Vec<Dependency>> {
        self.answer(move |conn| dependencies(conn, start_ns, end_ns))
    }

    fn stage_counts(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
    ) -> StoreFuture<Vec<RateRow>> {
        let unwritten = self.0.unwritten.clone();
        self.answer(move |conn| {
            let service = service.as_deref();
            let read = || stage_counts(conn, service, start_minute, end_minute);
            match unwritten {
                Some(unwritten) => unwritten.add_to(service, (start_minute, end_minute), read),
                None => read(),
            }
        })
    }

    fn orphans(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
        grace: Duration,
    ) -> StoreFuture<Vec<Orphans>> {
        let now = i64::try_from(crate::stage::now_ns()).unwrap_or(i64::MAX);
        self.answer(move |conn| {
            orphans(
                conn,
                service.as_deref(),
                start_minute,
                end_minute,
                now,
                grace,
            )
        })
    }
}

/// A read's limit: its deadline and whether its caller has gone.
#[derive(Clone)]
struct Limit {
    deadline: Instant,
    abandoned: Arc<AtomicBool>,
    timed_out: Arc<AtomicBool>,
}

impl Limit {
    /// Whether the read must stop now (noting a timeout as such).
    fn reached(&self) -> bool {
        let late = Instant::now() >= self.deadline;
        self.timed_out.store(late, Ordering::Relaxed);
        late || self.abandoned.load(Ordering::Relaxed)
    }
}

thread_local! {
    /// The limit of the read running on this blocking thread.
    static CURRENT: std::cell::RefCell<Option<Limit>> = const { std::cell::RefCell::new(None) };
}

/// For reads that do work of their own between SQLite's steps (decoding
/// blocks, checking spans): an error once the running read's time is up or
/// its caller has gone, as the progress handler interrupts SQLite's own
/// steps. Ok outside a read.
pub fn check_limit() -> Result<(), StoreError> {
    let reached = CURRENT.with(|current| current.borrow().as_ref().is_some_and(Limit::reached));
    if reached {
        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
            Some("interrupted: query_timeout or the client went away".into()),
        )));
    }
    Ok(())
}

/// Set when the read's future is dropped: the progress handler then
/// interrupts the query.
#[derive(Default)]
struct Abandoned(Arc<AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    query_timeout: Duration,
    /// The writer's counts not in the file yet (a full disk); none for a
    /// reader of a file no writer of this process holds.
    unwritten: Option<Arc<Unwritten>>,
}

impl ReaderPool {
    /// An idle connection, or a new one. New ones open the file read-write
    /// but `query_only` (see `read::open_without_writer`), also beside this
    /// process's writer: whichever connection closes last at shutdown, a
    /// reader's included, may then remove the `-wal` and `-shm` files.
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        super::read::open_without_writer(&self.path)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::QueueLimits;
    use crate::storage::sqlite::SqliteStore;

    /// Counts far past anything that ends in a test's lifetime.
    const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                           SELECT count(*) FROM c";

    fn store(dir: &Path) -> Result<(SqliteStore, super::super::WriterThread), StoreError> {
        SqliteStore::open(
            &dir.join("t.db"),
            QueueLimits {
                requests: 4,
                spans: 100,
            },
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_query_past_its_limit_is_stopped() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (store, writer) = store(dir.path())?;
        let limit = Duration::from_millis(100);
        let store = store.with_query_timeout(limit);
        let answer = store
            .read(|conn| Ok(conn.query_row(ENDLESS, [], |row| row.get::<_, i64>(0))?))
            .await;
        assert!(
            matches!(answer, Err(StoreError::QueryTimeout(l)) if l == limit),
            "{answer:?}"
        );
        drop(store);
        writer.join();
        Ok(())
    }

    /// A read whose future is dropped stops: its query returns (interrupted)
    /// although its time limit is an hour away.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_abandoned_query_stops() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (store, writer) = store(dir.path())?;
        let store = store.with_query_timeout(Duration::from_secs(3600));
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (ended, has_ended) = std::sync::mpsc::channel();
        let reader = store.clone();
        let read = tokio::spawn(async move {
            reader
                .read(move |conn| {
                    let _ = started.send(());
                    let answer = conn.query_row(ENDLESS, [], |row| row.get::<_, i64>(0));
                    let _ = ended.send(answer.is_err());
                    Ok(())
                })
                .await
        });
        has_started.await?;
        read.abort();
        let interrupted =
            tokio::task::spawn_blocking(move || has_ended.recv_timeout(Duration::from_secs(60)))
                .await?;
        assert_eq!(interrupted, Ok(true), "the abandoned query must stop");
        drop(store);
        writer.join();
        Ok(())
    }
}
