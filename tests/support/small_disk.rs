//! A small file system that can be filled, for tests of a full disk: a
//! tmpfs of a few MiB mounted on a fresh directory (CI runs as root;
//! elsewhere the mount fails and the test says why), and batches whose
//! spans carry bytes that do not compress, so a commit needs new pages.

use super::ledger::{self, Batch, Outcome};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Spans per [`big_batch`], each with `NOISE` bytes that do not compress.
pub const SPANS: usize = 50;
const NOISE: usize = 4096;

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(size: &str) -> Self {
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system has no byte left.
    pub fn fill(&self) -> PathBuf {
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
pub fn big_batch(service: &str, seed: u64) -> Batch {
    let mut batch = ledger::batch(service, SPANS);
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

/// Sends distinct big batches of `service` to `url` (`…/v1/traces`) on a
/// filled disk until it refuses three in a row: returns the batches stored
/// (what free pages still took) and those refused with 503.
pub async fn send_until_refused(
    client: &reqwest::Client,
    url: &str,
    service: &str,
) -> (Vec<Batch>, Vec<Batch>) {
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    let mut seed = 1_000;
    while refused.len() < 3 {
        assert!(seed < 1_200, "the full disk never refused a batch");
        let batch = big_batch(service, seed);
        seed += 1;
        match ledger::post(client, url, batch.body.clone()).await {
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
    (acked, refused)
}
