//! Graceful shutdown under load (issue 5): SIGTERM or SIGINT while senders
//! are posting. The real `otelite serve` must exit 0 within a bound (a hang
//! detector, not a speed test), every span it acknowledged must be in the
//! file, and the senders must end at a refused or closed connection rather
//! than with a 2xx whose spans were then lost.

use crate::support::ledger::{self, Load, LoadSpec};
use crate::support::process::{ServeProcess, blocking};
use std::time::Duration;

const SERVICE: &str = "shutdown-load";
/// Generous: only a hang should exceed it.
const EXIT_LIMIT: Duration = Duration::from_secs(30);
const SENDERS: usize = 4;

async fn shutdown_under_load(signal: &'static str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("otelite.db");
    let start_db = db.clone();
    let mut backend = blocking(move || ServeProcess::start(&start_db, &[])).await;
    let load = Load::start(
        &backend.otlp_url(),
        &LoadSpec {
            service: SERVICE.to_owned(),
            senders: SENDERS,
            spans_per_batch: 100,
            batches_per_sender: None,
            stop_on_connection_error: true,
        },
    );
    load.wait_acked(20).await;
    backend.signal(signal);
    let (backend, status) = blocking(move || {
        let status = backend.wait_exit(EXIT_LIMIT);
        (backend, status)
    })
    .await;
    // Each sender goes on posting until the backend is gone.
    let ledger = load.join().await;
    assert!(
        status.is_some_and(|s| s.code() == Some(0)),
        "SIG{signal}: exit status {status:?} (None: still running after {EXIT_LIMIT:?})\nstderr:\n{}",
        backend.stderr()
    );
    assert!(
        backend.stdout().contains("otelite: stopped"),
        "stdout: {}",
        backend.stdout()
    );
    ledger.assert_no_problems();
    assert_eq!(
        ledger.count(0),
        SENDERS as u64,
        "every sender ends at a refused or closed connection: {:?}",
        ledger.statuses
    );
    let stored = blocking(move || ledger::check_database(&db, &ledger, SERVICE)).await;
    assert!(stored.spans >= 20 * 100, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_exits_0_and_keeps_every_acknowledged_span() {
    shutdown_under_load("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigint_under_load_exits_0_and_keeps_every_acknowledged_span() {
    shutdown_under_load("INT").await;
}
