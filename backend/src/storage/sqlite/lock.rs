//! One server per database file. `otelite serve` holds an exclusive lock
//! on `<db>.lock` for as long as its writer runs, so a second server on the
//! same file refuses to start (naming the first one's pid) instead of
//! failing every write. A file of its own, because SQLite's POSIX locks on
//! the database itself vanish whenever the process closes any descriptor
//! of that file (a reader connection, say). Readers never take it: the
//! reading commands work beside a running server.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Held while it lives; the kernel releases it when the process ends, even
/// killed, so a crash leaves no stale lock.
#[derive(Debug)]
pub struct DbLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{} is in use by another otelite serve{}: stop that one first, or give this one another --db",
        db.display(),
        pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse { db: PathBuf, pid: Option<u32> },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The lock file beside `db`: `otelite.db` → `otelite.db.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

/// Takes the lock of `db` without waiting, and writes this process's pid
/// into it for the message another server would print.
pub fn lock(db: &Path) -> Result<DbLock, LockError> {
    let path = lock_path(db);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(LockError::InUse {
                db: db.to_owned(),
                pid: holder(&mut file),
            });
        }
        Err(TryLockError::Error(error)) => return Err(io(error)),
    }
    // Only a courtesy for that message: a failure here changes nothing.
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(DbLock { _file: file })
}

/// The pid the holder wrote, if it has yet.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("otelite.db");
        let first = lock(&db).expect("the first lock");
        match lock(&db) {
            Err(LockError::InUse { db: named, pid }) => {
                assert_eq!(named, db);
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        lock(&db).expect("free again once the first is dropped");
    }

    #[test]
    fn the_message_names_the_file_and_the_pid() {
        let error = LockError::InUse {
            db: PathBuf::from("/data/otelite.db"),
            pid: Some(42),
        };
        let text = error.to_string();
        assert!(
            text.contains("/data/otelite.db") && text.contains("pid 42"),
            "{text}"
        );
    }
}
