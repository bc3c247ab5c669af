//! A full disk, for real: the database lives on a tmpfs of a few MiB that
//! this test mounts (CI runs as root; elsewhere the test says it cannot
//! mount and fails), filled to the last byte by a file beside it. A batch
//! whose commit cannot grow the files is answered 503, so the sender keeps
//! it, and its spans are counted lost at the store as `write_failed`, once
//! however often they are sent again; the process stays up and answers.
//! Once there is room, the batches sent again are stored and are no loss.

use crate::support::ledger::{self, Batch, Outcome};
use crate::support::process::{ServeProcess, blocking};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SERVICE: &str = "disk-full";
/// Spans per batch, each with `NOISE` bytes that do not compress.
const SPANS: usize = 50;
const NOISE: usize = 4096;

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs needs root (as CI has): {status}"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system has no byte left.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("create the filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // The last chunk may have been cut: fill what is left byte by byte.
        while file.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A batch of one trace whose spans each carry incompressible noise, so
/// its commit needs new pages.
fn big_batch(seed: u64) -> Batch {
    let mut batch = ledger::batch(SERVICE, SPANS);
    let mut request =
        ExportTraceServiceRequest::decode(&batch.body[..]).expect("the ledger's own batch");
    let mut state = seed | 1;
    for span in request
        .resource_spans
        .iter_mut()
        .flat_map(|rs| &mut rs.scope_spans)
        .flat_map(|ss| &mut ss.spans)
    {
        let noise: String = (0..NOISE / 2)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                format!("{:02x}", (state >> 56) as u8)
            })
            .collect();
        span.attributes.push(KeyValue {
            key: "noise".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(noise)),
            }),
            ..KeyValue::default()
        });
    }
    batch.body = request.encode_to_vec();
    batch
}

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

    let first = big_batch(1);
    assert!(
        matches!(
            ledger::post(&client, &url, first.body.clone()).await,
            Outcome::Acked
        ),
        "a batch is stored while there is room"
    );
    let filler = disk.fill();

    // Send distinct batches until the disk refuses three in a row: what the
    // WAL's free pages still took is stored, the rest refused.
    let (mut acked, mut refused) = (vec![first], Vec::new());
    let mut seed = 2;
    while refused.len() < 3 {
        assert!(seed < 200, "the full disk never refused a batch");
        let batch = big_batch(seed);
        seed += 1;
        match ledger::post(&client, &url, batch.body.clone()).await {
            Outcome::Acked => {
                assert!(
                    refused.is_empty(),
                    "a batch stored after a refusal on a full disk"
                );
                acked.push(batch);
            }
            Outcome::Refused { status: 503, .. } => refused.push(batch),
            other => panic!("a full disk answered {other:?}"),
        }
    }
    let stored = (acked.len() * SPANS) as u64;
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
