//! WAL checkpoints off the writer's path. By default SQLite checkpoints
//! inside the commit that crosses 1000 WAL pages, and a checkpoint fsyncs
//! the database file: that stalls the commits it falls in, and with them the
//! writer thread, the ingest bottleneck (see BENCHMARKS.md).
//! The writer's connection turns automatic checkpoints off and this thread
//! runs passive ones (which never block the writer) on its own connection,
//! often enough that few frames are left to copy when the writer truncates
//! the WAL at its limit (see `files`, which bounds it).

use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const INTERVAL: Duration = Duration::from_millis(100);

/// Stops the checkpoint thread when dropped, after a last checkpoint.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: PathBuf) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("otelite-checkpoint".into())
            .spawn(move || run(&path, &stopping))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(path: &PathBuf, stop: &AtomicBool) {
    let conn = match Connection::open(path) {
        Ok(conn) => conn,
        Err(error) => {
            tracing::error!(%error, "checkpoint connection failed; the WAL will not be checkpointed");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(INTERVAL);
        if let Err(error) = checkpoint(&conn) {
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
