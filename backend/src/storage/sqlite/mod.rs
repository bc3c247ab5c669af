//! SQLite storage: one writer thread (see `writer`) fed by a bounded queue,
//! and a small pool of read-only connections for queries. WAL mode lets
//! reads run while the writer commits.

mod bare;
mod block;
mod checkpoint;
mod documents;
mod edges;
mod encode;
mod failed;
mod files;
mod groups;
pub mod lock;
mod migrations;
mod orphans;
mod plans;
mod read;
mod reader;
mod repeats;
pub mod retention;
mod seam;
mod search;
mod tokenizer;
mod unwritten;
mod writer;

pub use encode::SpanRow;
pub use migrations::MigrationError;
pub use orphans::orphans;
pub use read::{
    dependencies, open_read_only, operations, services, stage_counts, trace, trace_page,
};
pub use reader::{DEFAULT_QUERY_TIMEOUT, SqliteReader};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use seam::span_batch;
pub use search::{search, search_page};
pub use writer::{SpanBatch, WriteOp};

use crate::storage::{CounterPoint, QueueLimits, StoreError, Stored, WriteHealth};

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use writer::Queued;

/// Creates the database file readable by its owner only, when there is
/// none yet: spans are the user's data. SQLite gives the `-wal` and `-shm`
/// files the database file's mode. An existing file keeps its mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writes: mpsc::Sender<Queued>,
    /// Spans that may wait for the writer: with the queue's length this
    /// bounds the memory that waiting batches hold.
    span_budget: Arc<Semaphore>,
    max_queued_spans: usize,
    reader: SqliteReader,
    /// Set by the writer when its latest transaction failed.
    write_failed: Arc<AtomicBool>,
    /// What retention has deleted since start, for `/metrics`.
    retention: Arc<retention::Counters>,
    /// The files' sizes and the size cap, kept by the writer.
    files: Arc<files::Files>,
}

/// The writer thread; join it after every `SqliteStore` handle is dropped to be
/// sure the last commit is done.
pub struct WriterThread(std::thread::JoinHandle<()>);

impl WriterThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
    }
}

/// The writer's connection to `path`: the file created if missing, another
/// program's file refused before anything in it changes, settings, the
/// fast tokenizer, and the schema brought to the current version.
fn open_writer_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    create_private(path).map_err(|source| StoreError::Create {
        path: path.to_owned(),
        source,
    })?;
    let mut conn = Connection::open(path).map_err(open_error)?;
    // Another program's file is refused before anything in it changes
    // (the journal mode included); a writer elsewhere is waited for.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if migrations::contents(&conn).map_err(open_error)? == migrations::Contents::Foreign {
        return Err(StoreError::NotOtelite(path.to_owned()));
    }
    migrations::configure(&conn).map_err(open_error)?;
    // Before migrating: an FTS5 table keeps the tokenizer it found when
    // first used on a connection, and an upgrade may be that first use.
    if let Err(error) = tokenizer::register(&conn) {
        tracing::warn!(%error, "the fast search tokenizer is not installed; indexing is slower");
    }
    migrations::migrate(&mut conn).map_err(|error| match error {
        MigrationError::Sqlite(source) => open_error(source),
        error => StoreError::Migration(error),
    })?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path` and
    /// starts the writer with room for `limits` waiting requests and spans.
    pub fn open(
        path: &Path,
        limits: QueueLimits,
    ) -> Result<(SqliteStore, WriterThread), StoreError> {
        let QueueLimits {
            requests: queue_capacity,
            spans: max_queued_spans,
        } = limits;
        if path.is_dir() {
            return Err(StoreError::IsDirectory(path.to_owned()));
        }
        // Before anything in the file is read or changed: another server
        // on it would migrate and write beside this one.
        let lock = lock::lock(path)?;
        let conn = open_writer_connection(path)?;
        // Checkpoints run on their own thread (see `checkpoint`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = checkpoint::Checkpointer::start(path.to_owned()).map_err(|e| {
            StoreError::WriteFailed(format!("cannot start the checkpoint thread: {e}"))
        })?;
        let (writes, queue) = mpsc::channel(queue_capacity.max(1));
        let write_failed = Arc::new(AtomicBool::new(false));
        let writer_failed = write_failed.clone();
        let files = Arc::new(files::Files::default());
        let writer_files = files.clone();
        let unwritten = Arc::new(unwritten::Unwritten::default());
        let writer_unwritten = unwritten.clone();
        let db = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("otelite-writer".into())
            .spawn(move || {
                let shared = writer::Shared {
                    db: &db,
                    files: &writer_files,
                    last_failed: &writer_failed,
                    unwritten: &writer_unwritten,
                };
                writer::run(conn, queue, &shared);
                // After the last commit, so the final checkpoint includes it.
                drop(checkpointer);
                // The file is free for another server only now.
                drop(lock);
            })
            .map_err(|e| StoreError::WriteFailed(format!("cannot start the writer thread: {e}")))?;
        let reader = SqliteReader::new(path).with_unwritten(unwritten);
        let store = SqliteStore {
            writes,
            span_budget: Arc::new(Semaphore::new(max_queued_spans.max(1))),
            max_queued_spans: max_queued_spans.max(1),
            reader,
            write_failed,
            retention: Arc::default(),
            files,
        };
        Ok((store, WriterThread(thread)))
    }

    /// Queues a batch; `Overloaded` at once when the queue is full, so the
    /// receiver can answer 503 instead of holding memory.
    pub fn try_write_batch(
        &self,
        batch: impl Into<Arc<SpanBatch>>,
    ) -> Result<oneshot::Receiver<Result<Stored, StoreError>>, StoreError> {
        let batch = batch.into();
        let permit = self.admit(batch.spans().len())?;
        self.queue_spans(batch, permit)
    }

    /// `spans`' share of the queued-span budget, or `Overloaded`: taken
    /// before a batch is encoded, so a full queue costs no encoding.
    pub(super) fn admit(&self, spans: usize) -> Result<OwnedSemaphorePermit, StoreError> {
        // A batch larger than the whole budget waits for an empty queue.
        let wanted = spans.clamp(1, self.max_queued_spans) as u32;
        self.span_budget
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| StoreError::Overloaded)
    }

    /// Queues a batch that holds its budget `permit`.
    pub(super) fn queue_spans(
        &self,
        batch: Arc<SpanBatch>,
        permit: OwnedSemaphorePermit,
    ) -> Result<oneshot::Receiver<Result<Stored, StoreError>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.try_send(WriteOp::Spans(batch, permit, tx))?;
        Ok(rx)
    }

    pub fn try_write_counters(
        &self,
        points: Vec<CounterPoint>,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.try_send(WriteOp::Counters(points, tx))?;
        Ok(rx)
    }

    fn try_send(&self, op: WriteOp) -> Result<(), StoreError> {
        self.writes
            .try_send(Queued::Write(op))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
    }

    /// Runs `job` on the writer thread, between two groups of writes, and
    /// returns its result. It waits for room in the queue rather than
    /// failing: only background work (retention) uses it.
    pub(crate) async fn run_job<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |conn: &mut Connection| drop(tx.send(job(conn))));
        self.writes
            .send(Queued::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    /// The most bytes the files took at once since start (as the writer
    /// measured them after each commit).
    pub fn size_peak(&self) -> u64 {
        self.files.peak().max(self.size_on_disk())
    }

    /// What retention has deleted since start.
    pub fn retention_totals(&self) -> crate::storage::retention::Totals {
        self.retention.totals()
    }

    /// Waiting write requests, for readiness and metrics.
    pub fn queue_depth(&self) -> usize {
        self.writes.max_capacity() - self.writes.capacity()
    }

    /// The write queue's state, for readiness and metrics; cheap (atomics).
    pub fn health(&self) -> WriteHealth {
        WriteHealth {
            writer_alive: !self.writes.is_closed(),
            last_write_failed: self.write_failed.load(Ordering::Relaxed),
            queued_requests: self.queue_depth(),
            request_capacity: self.writes.max_capacity(),
            queued_spans: self.max_queued_spans - self.span_budget.available_permits(),
            span_capacity: self.max_queued_spans,
        }
    }

    /// Bytes on disk: the database file, its WAL and its shared memory.
    pub fn size_on_disk(&self) -> u64 {
        let db = self.reader.path();
        [db.to_owned(), wal_path(db), files::shm_path(db)]
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum()
    }

    /// This store with reads that stop after `timeout`.
    pub fn with_query_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.reader = self.reader.with_query_timeout(timeout);
        self
    }

    /// Runs `query` on a read-only connection, off the async threads.
    pub async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.reader.read(query).await
    }
}

/// The write-ahead log next to a database file.
fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

#[cfg(test)]
mod tests;
