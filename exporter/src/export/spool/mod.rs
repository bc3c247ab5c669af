//! An optional on-disk queue of encoded requests, so that spans outlive a
//! backend outage and an app restart. One file per request (see `name`),
//! written privately and durably (see `files`); files are sent oldest first
//! and their bodies decoded before they are sent (see `content`). The
//! traces are bounded by `max_bytes`: a request that does not fit is refused
//! (its spans are then counted as failed, with `error.type = spool_full`).
//! Counter reports have their own small room beside it, so the report that
//! tells of that loss still fits. Several `Spool`s (providers, processes)
//! may share a directory: each writes under its own instance name, a file
//! is sent only by whoever holds its lock, and only by a run of the service
//! that wrote it (its owner), so the spans it delivers count for that
//! service.

mod content;
mod files;
mod name;

pub use content::Unreadable;
pub use files::DirError;
pub(crate) use name::owner_of;

use super::config::Compression;
use name::Name;
use std::fs::{self, File, TryLockError};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Where the spool lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// The spooled traces never exceed this many bytes in all.
    pub max_bytes: u64,
}

/// Default bound when only the directory is configured.
pub const DEFAULT_SPOOL_BYTES: u64 = 64 * 1024 * 1024;

/// Room for counter reports, beside `max_bytes`: a report is well under
/// 1 KiB gzip'd, so this holds the reports of hundreds of runs.
pub const REPORT_ROOM_BYTES: u64 = 256 * 1024;

/// What a spooled request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `ExportTraceServiceRequest`, for `/v1/traces`.
    Traces,
    /// A counter report, for `/v1/metrics`.
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
    instance: String,
    owner: String,
    pub kind: Kind,
    /// The span count in the file name (what the writer meant to keep).
    pub spans: u64,
    pub compression: Compression,
    len: u64,
}

impl Entry {
    /// Oldest first: by sequence, then by instance for a stable order.
    fn order(&self) -> (u64, &str) {
        (self.seq, &self.instance)
    }

    /// Whether a run of `owner` sends it (names of earlier versions have
    /// no owner: anyone does).
    fn is_for(&self, owner: &str) -> bool {
        self.owner.is_empty() || self.owner == owner
    }
}

/// A spooled request this `Spool` holds the lock of, with its body: no
/// other `Spool` sends it while this lives.
#[derive(Debug)]
pub struct Claimed {
    pub entry: Entry,
    pub body: Vec<u8>,
    _lock: File,
}

impl Claimed {
    /// The spans the body really holds (0 for a report that decodes).
    pub fn spans(&self) -> Result<u64, Unreadable> {
        content::spans_in(self.entry.kind, self.entry.compression, &self.body)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({used} of {max} bytes used, {needed} more needed)")]
    Full { used: u64, max: u64, needed: u64 },
    #[error("the spool directory is refused: {0}")]
    Refused(#[from] DirError),
    #[error("spool I/O: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    /// Part of every file name this `Spool` writes.
    instance: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Oldest first.
    entries: Vec<Entry>,
    next_seq: u64,
    trace_bytes: u64,
    report_bytes: u64,
}

impl State {
    fn bytes_mut(&mut self, kind: Kind) -> &mut u64 {
        match kind {
            Kind::Traces => &mut self.trace_bytes,
            Kind::Metrics => &mut self.report_bytes,
        }
    }
}

impl Spool {
    /// Opens (creating, 0700) the directory, refusing one another user owns
    /// or may write, and lists what earlier runs left; temporary files no
    /// writer holds any more are removed.
    pub fn open(config: SpoolConfig) -> Result<Self, SpoolError> {
        files::secure_dir(&config.dir)?;
        let mut state = State::default();
        for file in fs::read_dir(&config.dir)? {
            // Another spool sharing the directory may remove a file while
            // this one lists it: a file that is gone is not an error.
            let Ok(path) = file.map(|f| f.path()) else {
                continue;
            };
            if path.extension().is_some_and(|e| e == name::TEMPORARY) {
                remove_if_abandoned(&path);
                continue;
            }
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(Name::parse)
            else {
                continue;
            };
            let Ok(len) = fs::symlink_metadata(&path).map(|m| m.len()) else {
                continue;
            };
            *state.bytes_mut(name.kind) += len;
            state.entries.push(entry(path, name, len));
        }
        state.entries.sort_by(|a, b| a.order().cmp(&b.order()));
        state.next_seq = state.entries.last().map_or(0, |e| e.seq + 1);
        Ok(Self {
            config,
            instance: name::new_instance(),
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_empty(&self) -> bool {
        self.state().entries.is_empty()
    }

    /// Whether requests for `owner` wait here (new ones queue behind them).
    pub fn holds_any_for(&self, owner: &str) -> bool {
        self.state().entries.iter().any(|e| e.is_for(owner))
    }

    /// Bytes of traces spooled now (reports have their own room).
    pub fn bytes(&self) -> u64 {
        self.state().trace_bytes
    }

    /// The oldest request a run of `owner` sends, if any.
    pub fn oldest_for(&self, owner: &str) -> Option<Entry> {
        self.state()
            .entries
            .iter()
            .find(|e| e.is_for(owner))
            .cloned()
    }

    /// Writes `body` durably as the newest request of `owner`, unless it
    /// would not fit.
    pub fn push(
        &self,
        owner: &str,
        kind: Kind,
        spans: u64,
        compression: Compression,
        body: &[u8],
    ) -> Result<Entry, SpoolError> {
        let len = body.len() as u64;
        let max = match kind {
            Kind::Traces => self.config.max_bytes,
            Kind::Metrics => REPORT_ROOM_BYTES,
        };
        let seq = {
            let mut state = self.state();
            let used = *state.bytes_mut(kind);
            if used + len > max {
                return Err(SpoolError::Full {
                    used,
                    max,
                    needed: len,
                });
            }
            // Reserve the bytes now so concurrent pushes cannot overshoot.
            *state.bytes_mut(kind) += len;
            state.next_seq += 1;
            state.next_seq - 1
        };
        let name = Name {
            seq,
            instance: self.instance.clone(),
            owner: owner.to_owned(),
            kind,
            spans,
            compression,
        };
        let path = self.config.dir.join(name.render());
        let temporary =
            self.config
                .dir
                .join(format!(".{}-{seq}.{}", self.instance, name::TEMPORARY));
        if let Err(error) = files::write_new(&temporary, &path, body) {
            *self.state().bytes_mut(kind) -= len;
            return Err(error.into());
        }
        let entry = entry(path, name, len);
        let mut state = self.state();
        let at = state.entries.partition_point(|e| e.order() < entry.order());
        state.entries.insert(at, entry.clone());
        Ok(entry)
    }

    /// Locks a listed request and reads it. `None` when another `Spool`
    /// holds it or has already delivered it: it is then forgotten here.
    pub fn claim(&self, entry: &Entry) -> io::Result<Option<Claimed>> {
        let mut file = match files::open_existing(&entry.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.forget(entry);
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                self.forget(entry);
                return Ok(None);
            }
            // A file system without locks (some NFS setups): send it all the
            // same; only spools sharing such a directory could send it twice.
            Err(TryLockError::Error(error)) => {
                tracing::debug!(%error, "otelite-exporter: cannot lock a spooled request");
            }
        }
        if !files::still_at(&file, &entry.path)? {
            self.forget(entry);
            return Ok(None);
        }
        let mut body = Vec::new();
        file.read_to_end(&mut body)?;
        Ok(Some(Claimed {
            entry: entry.clone(),
            body,
            _lock: file,
        }))
    }

    /// Forgets a request that was delivered (or can never be), and deletes it.
    pub fn remove(&self, entry: &Entry) -> io::Result<()> {
        self.forget(entry);
        match fs::remove_file(&entry.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Moves a request whose body does not decode out of the queue, under
    /// its name plus `.unreadable`, for whoever wants to look at it.
    pub fn set_aside(&self, entry: &Entry) -> io::Result<PathBuf> {
        self.forget(entry);
        let mut aside = entry.path.clone().into_os_string();
        aside.push(".");
        aside.push(name::UNREADABLE);
        let aside = PathBuf::from(aside);
        fs::rename(&entry.path, &aside)?;
        Ok(aside)
    }

    /// Drops a request from this `Spool`'s list, leaving the disk alone.
    fn forget(&self, entry: &Entry) {
        let mut state = self.state();
        if let Some(at) = state.entries.iter().position(|e| e.path == entry.path) {
            let gone = state.entries.remove(at);
            *state.bytes_mut(gone.kind) -= gone.len;
        }
    }
}

fn entry(path: PathBuf, name: Name, len: u64) -> Entry {
    Entry {
        path,
        seq: name.seq,
        instance: name.instance,
        owner: name.owner,
        kind: name.kind,
        spans: name.spans,
        compression: name.compression,
        len,
    }
}

/// Removes a temporary file unless its writer (still alive) holds its lock.
fn remove_if_abandoned(path: &Path) {
    let Ok(file) = files::open_existing(path) else {
        return;
    };
    if file.try_lock().is_ok() {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "0a0b0c0d";

    fn spool(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        Spool::open(SpoolConfig {
            dir: dir.to_owned(),
            max_bytes,
        })
    }

    fn temp_dir(tag: &str) -> io::Result<PathBuf> {
        Ok(std::env::temp_dir().join(format!(
            "otelite-spool-{tag}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        )))
    }

    /// What a test reads back of a request: kind, named spans, encoding, body.
    type Taken = (Kind, u64, Compression, Vec<u8>);

    /// Claims and removes everything, oldest first.
    fn take_all(spool: &Spool) -> Result<Vec<Taken>, SpoolError> {
        let mut seen = Vec::new();
        while let Some(entry) = spool.oldest_for(OWNER) {
            if let Some(claimed) = spool.claim(&entry)? {
                spool.remove(&entry)?;
                seen.push((entry.kind, entry.spans, entry.compression, claimed.body));
            }
        }
        Ok(seen)
    }

    #[test]
    fn requests_come_back_oldest_first_across_a_reopen() -> Result<(), SpoolError> {
        let dir = temp_dir("order")?;
        let first = spool(&dir, 1 << 20)?;
        first.push(OWNER, Kind::Traces, 3, Compression::Gzip, b"one")?;
        first.push(OWNER, Kind::Metrics, 0, Compression::None, b"two")?;
        first.push(OWNER, Kind::Traces, 5, Compression::None, b"three")?;
        drop(first);
        // A crash mid-write leaves a temporary file: it is not a request.
        fs::write(dir.join(".dead-99.tmp"), b"half")?;

        let again = spool(&dir, 1 << 20)?;
        assert_eq!(again.bytes(), 8, "traces only: one + three");
        assert_eq!(
            take_all(&again)?,
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
        let next = again.push(OWNER, Kind::Traces, 1, Compression::Gzip, b"x")?;
        assert!(next.seq > 2, "{next:?}");
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_request_that_does_not_fit_is_refused_and_nothing_is_written() -> Result<(), SpoolError> {
        let dir = temp_dir("full")?;
        let spool = spool(&dir, 10)?;
        spool.push(OWNER, Kind::Traces, 1, Compression::Gzip, b"12345678")?;
        let refused = spool.push(OWNER, Kind::Traces, 1, Compression::Gzip, b"abc");
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
        let oldest = spool
            .oldest_for(OWNER)
            .ok_or(io::Error::other("an entry"))?;
        spool.remove(&oldest)?;
        spool.push(OWNER, Kind::Traces, 1, Compression::Gzip, b"abc")?;
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_spool_full_of_spans_still_takes_the_report_of_the_loss() -> Result<(), SpoolError> {
        let dir = temp_dir("report")?;
        let spool = spool(&dir, 10)?;
        spool.push(OWNER, Kind::Traces, 1, Compression::Gzip, b"1234567890")?;
        assert!(matches!(
            spool.push(OWNER, Kind::Traces, 1, Compression::Gzip, b"x"),
            Err(SpoolError::Full { .. })
        ));
        spool.push(OWNER, Kind::Metrics, 0, Compression::Gzip, &[0; 1000])?;
        let big = vec![0; REPORT_ROOM_BYTES as usize];
        assert!(matches!(
            spool.push(OWNER, Kind::Metrics, 0, Compression::Gzip, &big),
            Err(SpoolError::Full { .. })
        ));
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn spools_sharing_a_directory_neither_overwrite_nor_send_each_others_files()
    -> Result<(), SpoolError> {
        let dir = temp_dir("shared")?;
        let (a, b) = (spool(&dir, 1 << 20)?, spool(&dir, 1 << 20)?);
        // Both start numbering at 0: the names still differ.
        a.push(OWNER, Kind::Traces, 1, Compression::None, b"a0")?;
        b.push(OWNER, Kind::Traces, 1, Compression::None, b"b0")?;
        a.push(OWNER, Kind::Metrics, 0, Compression::None, b"a-report")?;
        b.push(OWNER, Kind::Metrics, 0, Compression::None, b"b-report")?;
        assert_eq!(fs::read_dir(&dir)?.count(), 4);
        drop((a, b));

        // Two later spools list the same four files; each is sent once.
        let (c, d) = (spool(&dir, 1 << 20)?, spool(&dir, 1 << 20)?);
        let held = c.oldest_for(OWNER).ok_or(io::Error::other("an entry"))?;
        let claimed = c.claim(&held)?.ok_or(io::Error::other("claimed"))?;
        assert!(d.claim(&held)?.is_none(), "locked by the other spool");
        c.remove(&held)?;
        let mut bodies = vec![claimed.body];
        bodies.extend(take_all(&c)?.into_iter().map(|t| t.3));
        assert!(take_all(&d)?.is_empty(), "all sent by the first");
        bodies.sort();
        assert_eq!(
            bodies,
            [&b"a-report"[..], b"a0", b"b-report", b"b0"].map(<[u8]>::to_vec)
        );
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn a_run_sends_its_own_service_requests_and_those_of_earlier_versions() -> Result<(), SpoolError>
    {
        let dir = temp_dir("owners")?;
        let spool = spool(&dir, 1 << 20)?;
        spool.push("0000000b", Kind::Traces, 1, Compression::None, b"b")?;
        spool.push(OWNER, Kind::Traces, 1, Compression::None, b"mine")?;
        fs::write(dir.join("00000000000000000099-traces-1.pb"), b"old")?;
        let again = self::spool(&dir, 1 << 20)?;
        assert!(again.holds_any_for(OWNER) && again.holds_any_for("0000000b"));
        let bodies: Vec<Vec<u8>> = take_all(&again)?.into_iter().map(|t| t.3).collect();
        assert_eq!(bodies, [b"mine".to_vec(), b"old".to_vec()]);
        assert!(
            !again.holds_any_for(OWNER),
            "the other service's file waits"
        );
        assert_eq!(again.oldest_for("0000000b").map(|e| e.spans), Some(1));
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    #[test]
    fn an_unreadable_request_is_set_aside() -> Result<(), SpoolError> {
        let dir = temp_dir("aside")?;
        let spool = spool(&dir, 1 << 20)?;
        let entry = spool.push(OWNER, Kind::Traces, 3, Compression::None, b"")?;
        let claimed = spool.claim(&entry)?.ok_or(io::Error::other("claimed"))?;
        assert_eq!(claimed.spans(), Err(Unreadable::Empty));
        let aside = spool.set_aside(&entry)?;
        assert!(spool.is_empty() && aside.exists() && !entry.path.exists());
        drop(claimed);
        // Not a request for a later run either.
        assert!(self::spool(&dir, 1 << 20)?.is_empty());
        fs::remove_dir_all(dir)?;
        Ok(())
    }
}
