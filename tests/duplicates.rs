//! Duplicates: a batch posted again — right after, twice at once, or after
//! a restart, as an exporter retries a request whose answer it never got —
//! is stored once and counted once: no duplicate rows, and `N_process`,
//! `N_analyze` and `N_store` all equal the distinct spans sent. On both
//! stores: ClickHouse has no unique key, so there the span writer's
//! "already stored?" check is what keeps a retry out.

use crate::support::ledger::{self, Batch, Ledger, Outcome};
use crate::support::process::{ServeProcess, blocking};
use crate::support::stores::StoreAt;
use crate::support::{ServiceRates, Store, for_each_store};
use std::time::Duration;

const SERVICE: &str = "duplicates";

async fn post_acked(backend: &ServeProcess, batch: &Batch) {
    let url = format!("{}/v1/traces", backend.otlp_url());
    let outcome = ledger::post(&reqwest::Client::new(), &url, batch.body.clone()).await;
    assert!(matches!(outcome, Outcome::Acked), "{outcome:?}");
}

async fn rates(backend: &ServeProcess) -> ServiceRates {
    let url = backend.query_url(&format!("/api/rates?service={SERVICE}"));
    let body: serde_json::Value = reqwest::get(url)
        .await
        .expect("GET /api/rates")
        .json()
        .await
        .expect("rates JSON");
    let services: Vec<ServiceRates> =
        serde_json::from_value(body["services"].clone()).expect("rates shape");
    services
        .into_iter()
        .find(|s| s.service == SERVICE)
        .unwrap_or_else(|| panic!("no rates for {SERVICE}: {body}"))
}

fn assert_counted_once(rates: &ServiceRates, spans: u64) {
    for stage in ["process", "analyze", "store"] {
        assert_eq!(rates.n(stage), Some(spans), "N_{stage}: {rates:#?}");
    }
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_batch_posted_again_is_stored_and_counted_once
);
async fn a_batch_posted_again_is_stored_and_counted_once(store: Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let at = StoreAt::new(store, dir.path(), "duplicates").await;
    let backend = at.serve(&[]).await;
    let (first, second) = (ledger::batch(SERVICE, 40), ledger::batch(SERVICE, 60));

    post_acked(&backend, &first).await;
    post_acked(&backend, &first).await;
    tokio::join!(post_acked(&backend, &second), post_acked(&backend, &second));
    assert_counted_once(&rates(&backend).await, 100);

    // The answer was lost, the backend restarted, the exporter retries.
    backend.signal("TERM");
    let status = blocking(move || {
        let mut backend = backend;
        backend.wait_exit(Duration::from_secs(30))
    })
    .await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let backend = at.serve(&[]).await;
    post_acked(&backend, &second).await;
    post_acked(&backend, &first).await;
    assert_counted_once(&rates(&backend).await, 100);

    let mut ledger = Ledger::default();
    ledger.record(first, Outcome::Acked);
    ledger.record(second, Outcome::Acked);
    ledger::check_api(&backend.query_url(""), &ledger).await;
    let (_, stored) = at.check(ledger, SERVICE).await;
    assert_eq!((stored.spans, stored.n_store), (100, 100));
    drop(backend);
}

/// Another span under the ids of a stored one — a buggy or hostile sender —
/// is refused through `partial_success` and counted as refused, never as
/// stored; a retry of the stored span is counted as a duplicate. SQLite
/// (ClickHouse keeps the first copy and counts the others as duplicates).
#[tokio::test(flavor = "multi_thread")]
async fn another_span_under_stored_ids_is_refused_and_counted_as_such() {
    use crate::support::Backend;
    use crate::support::fixtures::{otlp_request, span};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use otelite_model::{SpanId, TraceId};
    use prost::Message;

    let backend = Backend::start().await;
    let trace_id = TraceId([0x5d; 16]);
    let sent: Vec<_> = (1..=3u8)
        .map(|i| span(trace_id, SpanId([i; 8])).service(SERVICE).build())
        .collect();
    let mut other = sent.clone();
    other[0].name = "not the stored one".into();
    other[1].end_time_unix_nano += 5;
    let post = |spans: &[otelite_model::Span]| {
        let body = otlp_request(spans).encode_to_vec();
        backend.post("/v1/traces", "application/x-protobuf", None, body)
    };
    for (spans, refused) in [(&sent, 0), (&sent, 0), (&other, 2)] {
        let reply = post(spans).await;
        assert_eq!(reply.status, 200);
        let answer = ExportTraceServiceResponse::decode(&reply.body[..]).expect("OTLP answer");
        let partial = answer.partial_success.unwrap_or_default();
        assert_eq!(partial.rejected_spans, refused, "{partial:?}");
        if refused > 0 {
            assert!(
                partial
                    .error_message
                    .contains("reuse the trace and span ids"),
                "{partial:?}"
            );
        }
    }
    let (status, stored) = backend
        .get_json(&format!("/api/otelite/traces/{trace_id}"))
        .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = stored["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["span", "span", "span"], "{stored}");

    let text = reqwest::get(backend.query_url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    for line in [
        "otelite_spans_received_total 9",
        "otelite_spans_accepted_total 3",
        "otelite_spans_duplicate_total 4",
        "otelite_spans_rejected_total{reason=\"conflicting_ids\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}
