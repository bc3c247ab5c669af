//! Graceful shutdown under load (issue 5): SIGTERM or SIGINT while senders
//! are posting. The real `otelite serve` must exit 0 within a bound (a hang
//! detector, not a speed test), every span it acknowledged must be in the
//! file, and the senders must end at a refused or closed connection rather
//! than with a 2xx whose spans were then lost. On both stores: on ClickHouse
//! the last writes must have reached it before the exit.

use crate::support::ledger::{Load, LoadSpec};
use crate::support::process::blocking;
use crate::support::stores::StoreAt;
use crate::support::{Store, for_each_store};
use std::time::Duration;

const SERVICE: &str = "shutdown-load";
/// Generous: only a hang should exceed it.
const EXIT_LIMIT: Duration = Duration::from_secs(30);
const SENDERS: usize = 4;

async fn shutdown_under_load(store: Store, signal: &'static str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let at = StoreAt::new(store, dir.path(), "shutdown").await;
    let mut backend = at.serve(&[]).await;
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
    let (_, stored) = at.check(ledger, SERVICE).await;
    assert!(stored.spans >= 20 * 100, "{stored:?}");
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    sigterm_under_load_exits_0_and_keeps_every_acknowledged_span
);
async fn sigterm_under_load_exits_0_and_keeps_every_acknowledged_span(store: Store) {
    shutdown_under_load(store, "TERM").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    sigint_under_load_exits_0_and_keeps_every_acknowledged_span
);
async fn sigint_under_load_exits_0_and_keeps_every_acknowledged_span(store: Store) {
    shutdown_under_load(store, "INT").await;
}
