//! An optional on-disk queue of encoded requests, so that spans outlive a
//! backend outage and an app restart. One file per request, named
//! `{seq}-{kind}-{spans}.{encoding}`, written to a temporary name, synced,
//! then renamed: a crash leaves either the whole file or none. Files are
//! sent oldest first; the spool is bounded in bytes, and a request that
//! does not fit is refused (its spans are then counted as failed, with
//! `error.type = spool_full`).

use super::config::Compression;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Where the spool lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// The bodies on disk never exceed this many bytes in all.
    pub max_bytes: u64,
}

/// Default bound when only the directory is configured.
pub const DEFAULT_SPOOL_BYTES: u64 = 64 * 1024 * 1024;

/// What a spooled request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `ExportTraceServiceRequest` of `spans` spans, for `/v1/traces`.
    Traces,
    /// A final counter report, for `/v1/metrics`.
    Metrics,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Traces => "traces",
            Kind::Metrics => "metrics",
        }
    }
}

/// One spooled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    seq: u64,
    pub kind: Kind,
    pub spans: u64,
    pub compression: Compression,
    len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({used} of {max} bytes used, {needed} more needed)")]
    Full { used: u64, max: u64, needed: u64 },
    #[error("spool I/O: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Oldest first.
    entries: Vec<Entry>,
    next_seq: u64,
    bytes: u64,
}

impl Spool {
    /// Opens (creating) the directory and lists what an earlier run left;
    /// half-written temporary files are removed.
    pub fn open(config: SpoolConfig) -> io::Result<Self> {
        fs::create_dir_all(&config.dir)?;
        let mut entries = Vec::new();
        for file in fs::read_dir(&config.dir)? {
            let file = file?;
            let path = file.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path)?;
                continue;
            }
            if let Some(entry) = parse_name(&path, file.metadata()?.len()) {
                entries.push(entry);
            }
        }
        entries.sort_by_key(|e| e.seq);
        let state = State {
            next_seq: entries.last().map_or(0, |e| e.seq + 1),
            bytes: entries.iter().map(|e| e.len).sum(),
            entries,
        };
        Ok(Self {
            config,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_empty(&self) -> bool {
        self.state().entries.is_empty()
    }

    /// Bytes spooled now.
    pub fn bytes(&self) -> u64 {
        self.state().bytes
    }

    /// The oldest request, if any.
    pub fn oldest(&self) -> Option<Entry> {
        self.state().entries.first().cloned()
    }

    /// Writes `body` durably as the newest request, unless it would not fit.
    pub fn push(
        &self,
        kind: Kind,
        spans: u64,
        compression: Compression,
        body: &[u8],
    ) -> Result<Entry, SpoolError> {
        let len = body.len() as u64;
        let seq = {
            let mut state = self.state();
            if state.bytes + len > self.config.max_bytes {
                return Err(SpoolError::Full {
                    used: state.bytes,
                    max: self.config.max_bytes,
                    needed: len,
                });
            }
            // Reserve the bytes now so concurrent pushes cannot overshoot.
            state.bytes += len;
            state.next_seq += 1;
            state.next_seq - 1
        };
        let entry = Entry {
            path: self
                .config
                .dir
                .join(file_name(seq, kind, spans, compression)),
            seq,
            kind,
            spans,
            compression,
            len,
        };
        if let Err(error) = write_durably(&entry.path, body) {
            self.state().bytes -= len;
            return Err(error.into());
        }
        let mut state = self.state();
        let at = state.entries.partition_point(|e| e.seq < seq);
        state.entries.insert(at, entry.clone());
        Ok(entry)
    }

    /// The body of a spooled request.
    pub fn read(&self, entry: &Entry) -> io::Result<Vec<u8>> {
        fs::read(&entry.path)
    }

    /// Forgets a request that was delivered (or can never be).
    pub fn remove(&self, entry: &Entry) -> io::Result<()> {
        let mut state = self.state();
        if let Some(at) = state.entries.iter().position(|e| e.seq == entry.seq) {
            state.entries.remove(at);
            state.bytes -= entry.len;
        }
        drop(state);
        match fs::remove_file(&entry.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

fn file_name(seq: u64, kind: Kind, spans: u64, compression: Compression) -> String {
    let encoding = match compression {
        Compression::Gzip => "pb.gz",
        Compression::None => "pb",
    };
    format!("{seq:020}-{}-{spans}.{encoding}", kind.as_str())
}

/// The inverse of `file_name`; other files in the directory are ignored.
fn parse_name(path: &Path, len: u64) -> Option<Entry> {
    let name = path.file_name()?.to_str()?;
    let (stem, compression) = if let Some(stem) = name.strip_suffix(".pb.gz") {
        (stem, Compression::Gzip)
    } else {
        (name.strip_suffix(".pb")?, Compression::None)
    };
    let mut parts = stem.splitn(3, '-');
    let seq = parts.next()?.parse().ok()?;
    let kind = match parts.next()? {
        "traces" => Kind::Traces,
        "metrics" => Kind::Metrics,
        _ => return None,
    };
    let spans = parts.next()?.parse().ok()?;
    Some(Entry {
        path: path.to_owned(),
        seq,
        kind,
        spans,
        compression,
        len,
    })
}

/// Temporary file, fsync, rename, fsync of the directory: after a crash the
/// file is there whole or not at all.
fn write_durably(path: &Path, body: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = fs::File::create(&temporary)?;
    file.write_all(body)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        Spool::open(SpoolConfig {
            dir: dir.to_owned(),
            max_bytes,
        })
    }

    fn temp_dir(tag: &str) -> io::Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!(
            "otelite-spool-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    #[test]
    fn requests_come_back_oldest_first_across_a_reopen() -> Result<(), SpoolError> {
        let dir = temp_dir("order")?;
        let first = spool(&dir, 1 << 20)?;
        first.push(Kind::Traces, 3, Compression::Gzip, b"one")?;
        first.push(Kind::Metrics, 0, Compression::None, b"two")?;
        first.push(Kind::Traces, 5, Compression::None, b"three")?;
        drop(first);
        // A crash mid-write leaves a temporary file: it is not a request.
        fs::write(dir.join("00000000000000000099-traces-1.tmp"), b"half")?;

        let again = spool(&dir, 1 << 20)?;
        assert_eq!(again.bytes(), 11);
        let mut seen = Vec::new();
        while let Some(entry) = again.oldest() {
            seen.push((
                entry.kind,
                entry.spans,
                entry.compression,
                again.read(&entry)?,
            ));
            again.remove(&entry)?;
        }
        assert_eq!(
            seen,
            [
                (Kind::Traces, 3, Compression::Gzip, b"one".to_vec()),
                (Kind::Metrics, 0, Compression::None, b"two".to_vec()),
                (Kind::Traces, 5, Compression::None, b"three".to_vec()),
            ]
        );
        assert!(again.is_empty());
        assert_eq!(
            fs::read_dir(&dir)?.count(),
            0,
            "files and leftovers are gone"
        );
        // Numbering continues after what is still on disk, never reusing a name.
        let next = again.push(Kind::Traces, 1, Compression::Gzip, b"x")?;
        assert!(next.seq > 2, "{next:?}");
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_request_that_does_not_fit_is_refused_and_nothing_is_written() -> Result<(), SpoolError> {
        let dir = temp_dir("full")?;
        let spool = spool(&dir, 10)?;
        spool.push(Kind::Traces, 1, Compression::Gzip, b"12345678")?;
        let refused = spool.push(Kind::Traces, 1, Compression::Gzip, b"abc");
        assert!(matches!(
            refused,
            Err(SpoolError::Full {
                used: 8,
                max: 10,
                needed: 3
            })
        ));
        assert_eq!(fs::read_dir(&dir)?.count(), 1);
        // Freed space is usable again.
        let oldest = spool.oldest().ok_or(io::Error::other("an entry"))?;
        spool.remove(&oldest)?;
        spool.push(Kind::Traces, 1, Compression::Gzip, b"abc")?;
        fs::remove_dir_all(dir)?;
        Ok(())
    }
}
