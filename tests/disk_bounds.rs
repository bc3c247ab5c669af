//! The real `otelite serve` holds its bounds under load, measured from
//! outside: the database's files (database, WAL, shared memory) sampled
//! while the load runs, the process's peak memory from `/proc/PID/status`,
//! and the database read back after a clean stop.
//!
//! - `--max-db-size` keeps the newest traces that fit, whole, the oldest
//!   gone, and the files within the cap plus the README's margin throughout.
//! - Without a cap, the WAL stays bounded during sustained ingest: the
//!   files stay within 1.5× their size at rest, or 8 MiB over it.
//! - The byte budget (`max_inflight_bytes`) keeps peak memory under 200 MB
//!   under a flood of big gzip'd batches, and every acknowledged span is
//!   stored.

use crate::support::ledger::{self, Ledger, Load, LoadSpec, Outcome};
use crate::support::process::{ServeProcess, blocking};
use otelite_model::TraceId;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// Database, WAL and shared-memory files' bytes now.
fn files_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            std::fs::metadata(PathBuf::from(path)).map_or(0, |m| m.len())
        })
        .sum()
}

/// Samples `files_bytes` every 2 ms on a thread of its own until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(db: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let db = db.to_owned();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !stopping.load(Ordering::Relaxed) {
                peak = peak.max(files_bytes(&db));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        });
        Self { stop, thread }
    }

    /// The largest size seen.
    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler did not panic")
    }
}

/// One sample from `/metrics`, by its full series name.
async fn metric(backend: &ServeProcess, series: &str) -> u64 {
    crate::support::metric_sample(backend.query_url("/metrics"), series)
        .await
        .map(|value| value as u64)
        .unwrap_or_else(|| panic!("/metrics has no sample {series}"))
}

/// Stops the backend with SIGTERM and waits for its clean exit (the last
/// checkpoint truncates the WAL).
async fn stop(mut backend: ServeProcess) {
    backend.signal("TERM");
    let exited = blocking(move || backend.wait_exit(Duration::from_secs(30))).await;
    assert!(
        exited.is_some_and(|status| status.success()),
        "a clean exit: {exited:?}"
    );
}

fn read_only(db: &Path) -> Connection {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

/// The stored spans of a trace (0 when it is gone).
fn stored_spans(conn: &Connection, trace_id: [u8; 16]) -> usize {
    otelite_backend::storage::sqlite::trace(conn, &TraceId(trace_id))
        .expect("read a trace")
        .map_or(0, |spans| spans.len())
}

/// The cap of the size test, and the margin the README states for it:
/// the WAL's limit (a tenth of the cap) plus one transaction's WAL, about
/// 1 MiB with one sender of 1 000-span batches.
const CAP: u64 = 1_000_000;
const CAP_MARGIN: u64 = CAP / 10 + MIB;
const CAP_SPANS_PER_BATCH: usize = 1_000;
const CAP_BATCHES: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_cap_keeps_the_newest_whole_traces_and_the_files_within_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("capped.db");
    let at = db.clone();
    let cap = CAP.to_string();
    let backend = blocking(move || ServeProcess::start(&at, &["--max-db-size", &cap])).await;
    let sampler = Sampler::start(&db);
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", backend.otlp_url());
    // One sender, each batch one trace, sent again until acknowledged: the
    // traces are stored in the order they were sent, oldest first.
    let mut sent = Vec::new();
    let mut refused = 0;
    for _ in 0..CAP_BATCHES {
        let batch = ledger::batch("capped", CAP_SPANS_PER_BATCH);
        loop {
            match ledger::post(&client, &url, batch.body.clone()).await {
                Outcome::Acked => break,
                Outcome::Refused { .. } => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("unexpected answer: {other:?}"),
            }
        }
        sent.push(batch.keys[0].0);
    }
    // Retention is woken by the writer; wait for the files to fit at rest.
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_bytes(&db) > CAP || metric(&backend, "otelite_retention_runs_total").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the files stay at {} bytes, over the cap",
            files_bytes(&db)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deleted = metric(&backend, "otelite_retention_deleted_spans_total").await;
    stop(backend).await;
    let peak = sampler.peak();
    let rest = files_bytes(&db);
    println!(
        "size cap {CAP}: peak {peak} B during ingest, {rest} B at rest; {deleted} spans deleted; {refused} refusals"
    );
    assert!(
        peak <= CAP + CAP_MARGIN,
        "the files reached {peak} B, past the cap {CAP} B and its margin {CAP_MARGIN} B"
    );
    assert!(rest <= CAP, "{rest} B at rest, over the cap {CAP} B");
    assert!(
        rest >= CAP / 2,
        "only {rest} B kept under a cap of {CAP} B: the newest data that fits must stay"
    );
    let conn = read_only(&db);
    let kept: Vec<usize> = sent.iter().map(|t| stored_spans(&conn, *t)).collect();
    assert!(
        kept.iter().all(|&n| n == 0 || n == CAP_SPANS_PER_BATCH),
        "every trace kept whole or gone: {kept:?}"
    );
    let first_kept = kept
        .iter()
        .position(|&n| n > 0)
        .expect("the newest traces are kept");
    assert!(first_kept > 0, "the oldest trace is gone: {kept:?}");
    assert!(
        kept[first_kept..].iter().all(|&n| n > 0),
        "the traces kept are the newest, with none missing among them: {kept:?}"
    );
}

/// What `README.md` promises for the WAL: during ingest the files stay
/// within 1.5× their size at rest, or within 8 MiB of it.
fn wal_bound(rest: u64) -> u64 {
    (rest * 3 / 2).max(rest + 8 * MIB)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_during_sustained_ingest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sustained.db");
    let at = db.clone();
    let backend = blocking(move || ServeProcess::start(&at, &[])).await;
    let sampler = Sampler::start(&db);
    let load = Load::start(
        &backend.otlp_url(),
        &LoadSpec {
            service: "sustained".to_owned(),
            senders: 4,
            spans_per_batch: 1_000,
            batches_per_sender: Some(10),
            stop_on_connection_error: false,
        },
    );
    let ledger = load.join().await;
    let reported_peak = metric(&backend, "otelite_database_size_peak_bytes").await;
    stop(backend).await;
    let peak = sampler.peak();
    let rest = files_bytes(&db);
    println!(
        "sustained ingest: files peaked at {peak} B ({reported_peak} B in /metrics), {rest} B at rest; {:?}",
        ledger.statuses
    );
    ledger.assert_no_problems();
    assert!(
        peak <= wal_bound(rest) && reported_peak <= wal_bound(rest),
        "the files reached {peak} B ({reported_peak} B reported), past {} B for {rest} B at rest",
        wal_bound(rest)
    );
    assert!(reported_peak >= rest, "the reported peak is a peak");
    let stored = blocking(move || ledger::check_database(&db, &ledger, "sustained")).await;
    assert!(stored.spans > 0);
}

/// What `README.md` promises for memory with the default byte budget.
const PEAK_RSS_BOUND: u64 = 200 * 1_000_000;
const FLOOD_SENDERS: usize = 32;
const FLOOD_SPANS_PER_BATCH: usize = 5_000;
const FLOOD_BATCHES: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_byte_budget_bounds_memory_under_a_flood_of_big_gzip_batches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("flood.db");
    let at = db.clone();
    let backend = blocking(move || ServeProcess::start(&at, &[])).await;
    let url = format!("{}/v1/traces", backend.otlp_url());
    let senders: Vec<_> = (0..FLOOD_SENDERS)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut ledger = Ledger::default();
                for _ in 0..FLOOD_BATCHES {
                    let batch = ledger::batch("flood", FLOOD_SPANS_PER_BATCH);
                    let outcome = ledger::post_gzip(&client, &url, &batch.body).await;
                    ledger.record(batch, outcome);
                }
                ledger
            })
        })
        .collect();
    let mut ledger = Ledger::default();
    for sender in senders {
        ledger.merge(sender.await.expect("a sender did not panic"));
    }
    let peak = backend.peak_rss_bytes();
    let inflight_peak = metric(&backend, "otelite_inflight_bytes_peak").await;
    let capacity = metric(&backend, "otelite_inflight_bytes_capacity").await;
    println!(
        "flood: peak RSS {} MB; bytes in flight peaked at {inflight_peak} of {capacity}; {:?}",
        peak / 1_000_000,
        ledger.statuses
    );
    ledger.assert_no_problems();
    assert_eq!(ledger.count(0), 0, "no broken connection");
    assert!(ledger.count(200) > 0, "some batches stored");
    assert!(
        ledger.count(503) > 0,
        "the flood passed the budget: {:?}",
        ledger.statuses
    );
    assert!(
        peak < PEAK_RSS_BOUND,
        "peak RSS {peak} B, over {PEAK_RSS_BOUND} B"
    );
    assert!(inflight_peak <= capacity && inflight_peak > 0);
    stop(backend).await;
    let stored = blocking(move || ledger::check_database(&db, &ledger, "flood")).await;
    assert!(stored.spans > 0);
}
