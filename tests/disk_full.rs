//! A full disk, for real: the database lives on a tmpfs of a few MiB that
//! this test mounts (CI runs as root; elsewhere the test says it cannot
//! mount and fails), filled to the last byte by a file beside it. A batch
//! whose commit cannot grow the files is answered 503, so the sender keeps
//! it, and its spans are counted lost at the store as `write_failed`, once
//! however often they are sent again; the process stays up and answers.
//! Once there is room, the batches sent again are stored and are no loss.

use crate::support::ledger::{self, Outcome};
use crate::support::process::{ServeProcess, blocking};
use crate::support::small_disk::{SPANS, SmallDisk, big_batch, send_until_refused};
use serde_json::Value;
use std::time::Duration;

const SERVICE: &str = "disk-full";

/// The store stage of `SERVICE`: (n, lost, reasons).
async fn store_stage(backend: &ServeProcess) -> (u64, u64, Value) {
    let url = backend.query_url(&format!("/api/rates?service={SERVICE}"));
    let rates: Value = reqwest::get(&url)
        .await
        .expect("rates answer")
        .json()
        .await
        .expect("rates JSON");
    let stage = rates["services"][0]["stages"]
        .as_array()
        .and_then(|stages| stages.iter().find(|s| s["stage"] == "store"))
        .cloned()
        .unwrap_or_else(|| panic!("a store stage in {rates}"));
    let count = |field: &str| stage[field].as_u64().unwrap_or(0);
    (count("n"), count("lost"), stage["reasons"].clone())
}

async fn stage_n(backend: &ServeProcess, name: &str) -> Option<u64> {
    let url = backend.query_url(&format!("/api/rates?service={SERVICE}"));
    let rates: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
    rates["services"][0]["stages"]
        .as_array()?
        .iter()
        .find(|s| s["stage"] == name)?["n"]
        .as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_spans_at_the_store_once_and_a_retry_after_room_stores_them() {
    let disk = SmallDisk::mount("8m");
    let db = disk.path().join("otelite.db");
    let at = db.clone();
    let backend = blocking(move || ServeProcess::start(&at, &[])).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", backend.otlp_url());

    let first = big_batch(SERVICE, 1);
    assert!(
        matches!(
            ledger::post(&client, &url, first.body.clone()).await,
            Outcome::Acked
        ),
        "a batch is stored while there is room"
    );
    let filler = disk.fill();

    // What the WAL's free pages still took is stored, the rest refused.
    let (more, refused) = send_until_refused(&client, &url, SERVICE).await;
    let acked = 1 + more.len();
    let stored = (acked * SPANS) as u64;
    let lost = (refused.len() * SPANS) as u64;
    let expected_reasons = serde_json::json!({ "write_failed": lost });
    assert_eq!(
        store_stage(&backend).await,
        (stored, lost, expected_reasons.clone()),
        "the refused spans are lost at the store, with the cause"
    );

    // The sender retries while the disk is still full: nothing counts twice.
    for batch in &refused {
        let outcome = ledger::post(&client, &url, batch.body.clone()).await;
        assert!(
            matches!(outcome, Outcome::Refused { status: 503, .. }),
            "still full: {outcome:?}"
        );
    }
    assert_eq!(
        store_stage(&backend).await,
        (stored, lost, expected_reasons),
        "a batch refused twice is lost once"
    );
    let health = reqwest::get(backend.query_url("/healthz"))
        .await
        .expect("up");
    assert!(
        health.status().is_success(),
        "the process stays up and answers"
    );

    // Room again: the retried batches are stored and no longer a loss.
    std::fs::remove_file(&filler).expect("remove the filler");
    for batch in &refused {
        let mut tries = 0;
        while !matches!(
            ledger::post(&client, &url, batch.body.clone()).await,
            Outcome::Acked
        ) {
            tries += 1;
            assert!(tries < 50, "a retried batch is stored once there is room");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let all = stored + lost;
    let (n, lost_now, _) = store_stage(&backend).await;
    assert_eq!((n, lost_now), (all, 0), "every span stored, none lost");
    for stage in ["process", "analyze"] {
        assert_eq!(
            stage_n(&backend, stage).await,
            Some(all),
            "{stage} counts each span once, however often it was sent"
        );
    }
    drop(backend);
}
