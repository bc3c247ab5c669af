//! Retention: a background task that keeps the database within an age
//! (`--retention`) and a size (`--max-db-size`). Once a minute, and at once
//! when the writer finds the data past its room under the size cap (see
//! `files`), it deletes
//! the oldest traces in batches of a few thousand spans, each batch one
//! short transaction on the writer thread between two groups of ingest
//! writes (so ingest waits for at most one batch, and no second writer
//! ever contends for SQLite's lock), then hands the freed pages back to the
//! file system with `incremental_vacuum` in small steps, so the file really
//! shrinks, and truncates the WAL those writes grew. What is deleted and
//! kept: see `delete`.

mod delete;

pub use delete::{BATCH_SPANS, Deleted, VACUUM_PAGES, used_bytes, vacuum_step};

use super::{SqliteStore, StoreError, files};
use crate::storage::retention::{Policy, Totals};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Pause between two batches of a run, so that ingest keeps most of the
/// writer's time even when a run has much to delete.
const PAUSE: Duration = Duration::from_millis(5);
/// Spans deleted per batch while the data is past its room under the
/// size cap: as many as the writer commits in one group.
const SIZE_BATCH_SPANS: usize = super::writer::MAX_GROUP_SPANS;
const TRUNCATE_TRIES: usize = 20;
const TRUNCATE_RETRY: Duration = Duration::from_millis(100);

/// Totals since start, for `/metrics`; updated once per batch.
#[derive(Debug, Default)]
pub struct Counters {
    deleted_spans: AtomicU64,
    deleted_traces: AtomicU64,
    batches: AtomicU64,
    runs: AtomicU64,
}

impl Counters {
    fn batch(&self, deleted: Deleted) {
        self.deleted_spans
            .fetch_add(deleted.spans, Ordering::Relaxed);
        self.deleted_traces
            .fetch_add(deleted.traces, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn totals(&self) -> Totals {
        Totals {
            deleted_spans: self.deleted_spans.load(Ordering::Relaxed),
            deleted_traces: self.deleted_traces.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            runs: self.runs.load(Ordering::Relaxed),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    pub deleted_spans: u64,
    pub deleted_traces: u64,
    pub batches: u64,
    /// Pages in use plus the WAL, before and after the run.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Report {
    fn add(&mut self, deleted: Deleted) {
        self.deleted_spans += deleted.spans;
        self.deleted_traces += deleted.traces;
        self.batches += 1;
    }
}

/// Runs `policy` every `interval` (the first run at once) until `stop`
/// turns true; returns at once when the policy is off.
pub async fn run(
    store: SqliteStore,
    policy: Policy,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if policy.is_off() {
        return;
    }
    tracing::info!(?policy, "retention enabled");
    store.files.set_cap(policy.max_bytes.unwrap_or(0));
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = ticks.tick() => {}
            _ = store.files.pressure() => tracing::debug!("the data passed its room: retention runs now"),
        }
        let started = Instant::now();
        // SQLite's integers are i64: a present past 2262 is its largest.
        let now = i64::try_from(crate::stage::now_ns()).unwrap_or(i64::MAX);
        match run_once(&store, &policy, now, &stop).await {
            Ok(report) if report.deleted_spans > 0 || report.deleted_traces > 0 => tracing::info!(
                deleted_spans = report.deleted_spans,
                deleted_traces = report.deleted_traces,
                batches = report.batches,
                bytes_before = report.bytes_before,
                bytes_after = report.bytes_after,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "retention run"
            ),
            Ok(_) => tracing::debug!("retention run: nothing to delete"),
            Err(StoreError::Closed) => return,
            Err(error) => tracing::warn!(%error, "retention run failed; next try in one interval"),
        }
    }
}

/// One run: by age, then by size, then vacuum. `now_ns` is the present in
/// unix nanoseconds; a true `stop` ends the run between two batches.
pub async fn run_once(
    store: &SqliteStore,
    policy: &Policy,
    now_ns: i64,
    stop: &watch::Receiver<bool>,
) -> Result<Report, StoreError> {
    let mut report = Report {
        bytes_before: size(store).await?,
        ..Report::default()
    };
    if let Some(age) = policy.max_age {
        let cutoff = now_ns.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
        delete_older(store, cutoff, &mut report, stop).await?;
        store
            .run_job(move |conn| delete::delete_edges(conn, cutoff))
            .await??;
    }
    if let Some(limit) = policy.max_bytes {
        shrink_to(store, limit, &mut report, stop).await?;
    }
    if report.deleted_spans > 0 || report.deleted_traces > 0 {
        let forgotten = store
            .run_job(|conn| delete::forget_operations(conn))
            .await??;
        tracing::debug!(forgotten, "operations without spans forgotten");
        vacuum(store, stop).await?;
        truncate_wal(store).await?;
    }
    store.retention.runs.fetch_add(1, Ordering::Relaxed);
    report.bytes_after = size(store).await?;
    Ok(report)
}

/// Deletes every trace that started before `cutoff`.
async fn delete_older(
    store: &SqliteStore,
    cutoff: i64,
    report: &mut Report,
    stop: &watch::Receiver<bool>,
) -> Result<(), StoreError> {
    while !*stop.borrow() {
        let deleted = store
            .run_job(move |conn| delete::delete_batch(conn, cutoff, BATCH_SPANS))
            .await??;
        tracing::debug!(?deleted, cutoff, "retention batch (age)");
        if deleted == Deleted::default() {
            break;
        }
        report.add(deleted);
        store.retention.batch(deleted);
        tokio::time::sleep(PAUSE).await;
    }
    Ok(())
}

/// With the data (pages in use) past its room under `limit` (the cap less
/// the WAL's bound, see `files::room`), deletes the oldest traces until the
/// data is under 95 % of that room: only what deleting frees is measured,
/// never the WAL, which the writer keeps bounded apart (counting it here
/// once deleted every trace while a large WAL waited for a checkpoint).
async fn shrink_to(
    store: &SqliteStore,
    limit: u64,
    report: &mut Report,
    stop: &watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let mut used = store.run_job(|conn| delete::used_bytes(conn)).await??;
    let room = files::room(limit, file_bytes(store.path()));
    if used <= room {
        return Ok(());
    }
    let target = room - room / 20;
    tracing::info!(
        used,
        room,
        limit,
        "database over its size limit: deleting the oldest traces"
    );
    while used > target && !*stop.borrow() {
        // Ingest writes up to a group commit between two of these batches:
        // batches as large keep deletion abreast of ingest at full speed,
        // where `BATCH_SPANS` fell behind and the cap's last resort
        // refused most writes.
        let (deleted, now_used) = store
            .run_job(|conn| {
                let deleted = delete::delete_batch(conn, i64::MAX, SIZE_BATCH_SPANS)?;
                Ok::<_, rusqlite::Error>((deleted, delete::used_bytes(conn)?))
            })
            .await??;
        used = now_used;
        tracing::debug!(?deleted, used, target, "retention batch (size)");
        if deleted == Deleted::default() {
            break;
        }
        report.add(deleted);
        store.retention.batch(deleted);
        tokio::time::sleep(PAUSE).await;
    }
    // Edges of minutes before the oldest trace left have no spans any more.
    store
        .run_job(|conn| match delete::oldest_start(conn)? {
            Some(oldest) => delete::delete_edges(conn, oldest),
            None => Ok(0),
        })
        .await??;
    Ok(())
}

/// Hands free pages back in steps of `VACUUM_PAGES`, each its own
/// transaction, until none are left.
async fn vacuum(store: &SqliteStore, stop: &watch::Receiver<bool>) -> Result<(), StoreError> {
    while !*stop.borrow() {
        let left = store.run_job(|conn| delete::vacuum_step(conn)).await??;
        tracing::debug!(left, "vacuum step");
        if left == 0 {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    Ok(())
}

/// Pages in use plus the WAL.
/// Truncates the WAL, trying again a few times: the checkpoint thread or a
/// reader can hold it for a moment, and an untruncated WAL counts against
/// the size limit until the next run.
async fn truncate_wal(store: &SqliteStore) -> Result<(), StoreError> {
    for _ in 0..TRUNCATE_TRIES {
        if store.run_job(|conn| delete::truncate_wal(conn)).await?? {
            return Ok(());
        }
        tokio::time::sleep(TRUNCATE_RETRY).await;
    }
    tracing::debug!("readers kept the WAL from being truncated");
    Ok(())
}

/// The database file's length (the WAL apart).
fn file_bytes(db: &std::path::Path) -> u64 {
    std::fs::metadata(db).map_or(0, |m| m.len())
}

async fn size(store: &SqliteStore) -> Result<u64, StoreError> {
    let wal = delete::wal_bytes(store.path());
    Ok(store.run_job(|conn| delete::used_bytes(conn)).await?? + wal)
}

#[cfg(test)]
mod tests;
