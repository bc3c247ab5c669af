//! Keeps the database's files bounded, from the writer thread right after
//! each commit (and each retention job), where no other write can slip in:
//!
//! - The WAL: past its limit (a quarter of the database file, within
//!   4–64 MiB, and at most a tenth of `--max-db-size`) the writer
//!   checkpoints it and truncates it to zero. The checkpoint thread has
//!   copied most frames already (passive checkpoints, see `checkpoint`), so
//!   this costs one short wait. A reader on an old snapshot can hold it
//!   back: the writer then tries again after its next commit, waiting
//!   longer once the WAL is twice its limit. Before, nothing truncated the
//!   WAL while ingest ran, and it grew to 491 MB beside a 167 MB database.
//! - With `--max-db-size`: the data (pages in use) is measured after each
//!   commit; past the data's room retention is woken at once instead of
//!   at its next minute, and past the last line, where a full WAL would
//!   push the files over the cap, span writes are refused (503, counted as
//!   lost at the store) until retention has made room.
//!
//! The files' peak size lands in an atomic, for `/metrics`.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const MIB: u64 = 1024 * 1024;
const WAL_MIN: u64 = 4 * MIB;
const WAL_MAX: u64 = 64 * MIB;
/// How long a truncation waits for a reader or a passive checkpoint, and
/// how long once the WAL is twice its limit.
const PATIENCE: Duration = Duration::from_millis(50);
const LAST_PATIENCE: Duration = Duration::from_secs(5);
/// The writer's usual busy timeout, given back after a truncation.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the writer measured, shared with retention and `/metrics`.
#[derive(Debug, Default)]
pub struct Files {
    /// `--max-db-size` in bytes; 0 is none.
    cap: AtomicU64,
    /// Span writes are refused until retention makes room.
    refusing: AtomicBool,
    /// Wakes retention when the data passes its room.
    pressure: Notify,
    /// The most bytes database, WAL and shared memory took at once.
    peak: AtomicU64,
}

impl Files {
    /// Applies `--max-db-size` (0: none) from now on.
    pub fn set_cap(&self, cap: u64) {
        self.cap.store(cap, Ordering::Relaxed);
    }

    pub fn cap(&self) -> u64 {
        self.cap.load(Ordering::Relaxed)
    }

    pub fn refusing(&self) -> bool {
        self.refusing.load(Ordering::Relaxed)
    }

    /// Resolves when the writer finds the data past its room.
    pub async fn pressure(&self) {
        self.pressure.notified().await;
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    fn record(&self, bytes: u64) {
        self.peak.fetch_max(bytes, Ordering::Relaxed);
    }
}

/// The WAL's limit for a database file of `db` bytes under `cap` (0: none).
pub fn wal_limit(db: u64, cap: u64) -> u64 {
    let limit = (db / 4).clamp(WAL_MIN, WAL_MAX);
    if cap == 0 { limit } else { limit.min(cap / 10) }
}

/// The bytes of pages in use the data may take under `cap`: room is left
/// for the WAL at its limit and for one more group commit.
pub fn room(cap: u64, db: u64) -> u64 {
    cap.saturating_sub(2 * wal_limit(db, cap))
}

/// Run by the writer after each commit: bounds the WAL, measures the
/// files, and checks the data against the cap.
pub fn after_commit(conn: &Connection, db: &Path, files: &Files) {
    let db_len = len(db);
    let wal = len(&super::wal_path(db));
    let cap = files.cap();
    // Measured before truncating: the peak is the files' real high point.
    files.record(db_len + wal + len(&shm_path(db)));
    let limit = wal_limit(db_len, cap);
    if wal > limit {
        let patience = if wal > 2 * limit {
            LAST_PATIENCE
        } else {
            PATIENCE
        };
        match truncate(conn, patience) {
            Ok(true) => {}
            Ok(false) => tracing::debug!(wal, limit, "a reader held the WAL; truncating later"),
            Err(error) => tracing::warn!(%error, "WAL truncation failed"),
        }
    }
    if cap > 0 {
        check_cap(conn, files, cap, db_len);
    }
}

/// Wakes retention past the data's room; refuses span writes while the
/// database file itself leaves less than a WAL's limit under the cap.
fn check_cap(conn: &Connection, files: &Files, cap: u64, db_len: u64) {
    let used = match super::retention::used_bytes(conn) {
        Ok(used) => used,
        Err(error) => {
            tracing::warn!(%error, "cannot measure the database's pages in use");
            return;
        }
    };
    let room = room(cap, db_len);
    if used > room {
        files.pressure.notify_one();
    }
    let refusing = db_len.max(used) + wal_limit(db_len, cap) > cap && used > room;
    if files.refusing.swap(refusing, Ordering::Relaxed) != refusing {
        if refusing {
            tracing::warn!(
                used,
                cap,
                "the database is at --max-db-size: refusing spans until retention makes room"
            );
        } else {
            tracing::info!(used, cap, "retention made room: taking spans again");
        }
    }
}

/// Checkpoints the whole WAL and truncates it to zero bytes, waiting at
/// most `patience` for readers and the checkpoint thread; false when they
/// kept it from completing.
fn truncate(conn: &Connection, patience: Duration) -> rusqlite::Result<bool> {
    conn.busy_timeout(patience)?;
    // Columns: busy flag, WAL frames, frames checkpointed.
    let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(busy? == 0)
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The shared-memory index next to a database file.
pub(super) fn shm_path(db: &Path) -> PathBuf {
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    PathBuf::from(shm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_limit_follows_the_database_within_bounds_and_the_cap() {
        assert_eq!(wal_limit(0, 0), WAL_MIN);
        assert_eq!(wal_limit(100 * MIB, 0), 25 * MIB);
        assert_eq!(wal_limit(10_000 * MIB, 0), WAL_MAX);
        assert_eq!(wal_limit(100 * MIB, 80 * MIB), 8 * MIB);
        assert_eq!(wal_limit(0, 20 * MIB), 2 * MIB);
        assert_eq!(room(80 * MIB, 100 * MIB), 64 * MIB);
    }
}
