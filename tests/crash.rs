//! Crash safety: the real `otelite serve` under load is killed with SIGKILL
//! at a random moment, again and again, and restarted on the same file.
//! After every restart each acknowledged span is stored exactly once,
//! nothing refused or never sent is stored, `N_store` equals the rows and
//! `PRAGMA integrity_check` is ok. The batches whose answer the kill cut
//! off are then retried, as an exporter would, and still stored once.
//!
//! On ClickHouse the store is another process and survives the kill: there
//! the same holds of its tables (`ledger::check_clickhouse`), and a
//! restarted otelite answers for every acknowledged span (checked on both).
//!
//! The normal suite kills 3 times; `OTELITE_LONG_TESTS=1` kills 25 times,
//! `OTELITE_CRASH_KILLS=N` any number; `OTELITE_CRASH_SEED` replays the
//! random kill moments of an earlier run (each run prints its seed).

use crate::support::ledger::{self, Ledger, Load, LoadSpec, Outcome};
use crate::support::process::{ServeProcess, blocking, long_tests};
use crate::support::stores::StoreAt;
use crate::support::{Store, WAIT, for_each_store};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SERVICE: &str = "crash-load";

fn kills() -> usize {
    std::env::var("OTELITE_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if long_tests() { 25 } else { 3 })
}

/// xorshift64: enough to spread kill moments, and replayable from a seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = std::env::var("OTELITE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            .max(1);
        println!("crash test seed: OTELITE_CRASH_SEED={seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sends again every batch whose answer was lost, until each is acknowledged;
/// fails the test if one is still refused after [`WAIT`] (a server that
/// always answers 503 must not hang the suite).
async fn retry_unknown(backend: &ServeProcess, ledger: &mut Ledger) {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", backend.otlp_url());
    for batch in std::mem::take(&mut ledger.unknown) {
        let deadline = Instant::now() + WAIT;
        loop {
            match ledger::post(&client, &url, batch.body.clone()).await {
                Outcome::Acked => {
                    ledger.record(batch, Outcome::Acked);
                    break;
                }
                refused @ Outcome::Refused { .. } => {
                    assert!(
                        Instant::now() < deadline,
                        "a batch cut off by a kill was still refused after {WAIT:?} of \
                         retries: {refused:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => panic!("retrying a batch after a restart: {other:?}"),
            }
        }
    }
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    acknowledged_spans_survive_sigkill_exactly_once
);
async fn acknowledged_spans_survive_sigkill_exactly_once(store: Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let at = StoreAt::new(store, dir.path(), "crash").await;
    let mut rng = Rng::seeded();
    let mut ledger = Ledger::default();
    let spec = LoadSpec {
        service: SERVICE.to_owned(),
        senders: 4,
        spans_per_batch: 50,
        batches_per_sender: None,
        stop_on_connection_error: true,
    };
    let kills = kills();
    let mut cut_off = 0;
    for kill in 0..kills {
        let mut backend = at.serve(&[]).await;
        let stored;
        (ledger, stored) = at.check(ledger, SERVICE).await;
        assert!(kill == 0 || stored.spans > 0, "kill {kill}: nothing stored");
        retry_unknown(&backend, &mut ledger).await;

        let load = Load::start(&backend.otlp_url(), &spec);
        load.wait_acked(1 + rng.below(8)).await;
        tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
        backend = blocking(move || {
            backend.kill();
            backend
        })
        .await;
        let part = load.join().await;
        part.assert_no_problems();
        cut_off += part.unknown.len();
        ledger.merge(part);
        drop(backend);
    }
    let mut backend = at.serve(&[]).await;
    (ledger, _) = at.check(ledger, SERVICE).await;
    retry_unknown(&backend, &mut ledger).await;
    ledger::check_api(&backend.query_url(""), &ledger).await;
    backend.signal("TERM");
    let status = blocking(move || backend.wait_exit(Duration::from_secs(30))).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}"
    );
    let (ledger, stored) = at.check(ledger, SERVICE).await;
    assert_eq!(stored.spans, ledger.acked.len() as u64);
    println!(
        "{store:?}: {kills} kills: {} spans acknowledged, {cut_off} batches cut off by a kill and retried, \
         statuses {:?}",
        ledger.acked.len(),
        ledger.statuses
    );
}
