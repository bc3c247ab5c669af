//! The SQLite store's reader: a small pool of read-only connections to the
//! database file, answering the seam's questions off the async threads. The
//! server's store reads through one; the reading commands open one on a file
//! no server needs to hold (`SqliteReader::open`), which checks first that it
//! is an otelite database of this version.

use super::{dependencies, operations, plans, search_page, services, stage_counts, trace};
use crate::storage::{Dependency, Page, RateRow, StoreError, StoreFuture, TraceQuery, TraceReader};
use otelite_model::{Span, SpanKind, TraceId};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Idle connections kept for the next read; more are opened when needed.
const IDLE_CONNECTIONS: usize = 8;

/// A handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct SqliteReader(Arc<ReaderPool>);

impl SqliteReader {
    /// The reader of a store this process has opened (and migrated).
    pub(super) fn new(path: &Path) -> Self {
        Self::with_access(path, Access::BesideWriter)
    }

    fn with_access(path: &Path, access: Access) -> Self {
        Self(Arc::new(ReaderPool {
            path: path.to_owned(),
            access,
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// A reader of an existing database file, read-only, with no writer:
    /// an error for a file that is missing, is not an otelite database, or
    /// has another schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let checked = super::open_read_only(path)?;
        let reader = Self::with_access(path, Access::Alone);
        reader.0.give_back(checked);
        Ok(reader)
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Runs `query` on a read-only connection, off the async threads.
    pub async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = query(&conn);
            pool.give_back(conn);
            result
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

    fn trace(&self, trace_id: TraceId) -> StoreFuture<Option<Vec<Span>>> {
        self.answer(move |conn| trace(conn, &trace_id))
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
        self.answer(move |conn| stage_counts(conn, service.as_deref(), start_minute, end_minute))
    }
}

struct ReaderPool {
    path: PathBuf,
    access: Access,
    idle: Mutex<Vec<Connection>>,
}

/// How the pool's connections open the file.
#[derive(Clone, Copy)]
enum Access {
    /// Beside this process's writer, which owns the `-wal` file.
    BesideWriter,
    /// With no writer in this process: see `read::open_without_writer`.
    Alone,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        if let Access::Alone = self.access {
            return super::read::open_without_writer(&self.path);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: self.path.clone(),
            source,
        })?;
        plans::keep_plans(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA query_only = 1;")?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
    }
}
