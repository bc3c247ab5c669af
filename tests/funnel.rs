//! Every lost span is counted once, at the first stage where it was lost,
//! with its reason: from the official SDKs' own self-observability counters
//! (`otel.sdk.*`, compared with what the SDK itself counted, read in the
//! client) and from the backend's own stages (a span refused as invalid is
//! lost at process). Both on each store.

use crate::support::fixtures;
use crate::support::unavailable::Unavailable;
use crate::support::{Backend, ServiceRates, Store, for_each_store, foreign};
use otelite_model::TraceId;
use prost::Message;
use std::collections::BTreeMap;
use std::process::Command;

/// What the client read from its SDK: metric → error.type ("" for none) → value.
type OwnCounts = BTreeMap<String, BTreeMap<String, u64>>;

fn count_of(counts: &OwnCounts, metric: &str, reason: &str) -> u64 {
    counts
        .get(metric)
        .and_then(|by_reason| by_reason.get(reason))
        .copied()
        .unwrap_or(0)
}

/// `(n, lost, reasons)` of a stage.
fn stage(rates: &ServiceRates, name: &str) -> (Option<u64>, Option<u64>, Vec<(String, u64)>) {
    let stage = rates.stage(name);
    let reasons = stage.reasons.iter().map(|(r, n)| (r.clone(), *n)).collect();
    (stage.n, stage.lost, reasons)
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    python_sdk_queue_overflow_is_lost_at_collect_as_queue_full
);

/// The official Python SDK (its version pinned in
/// `tests/clients/python/requirements.txt`) with its internal metrics on: a
/// 64-span queue and a 20 000-span burst. otelite's stages are the SDK's
/// own counts, and the spans it dropped are lost at collect as `queue_full`.
async fn python_sdk_queue_overflow_is_lost_at_collect_as_queue_full(store: Store) {
    python_burst_counts_the_pipeline_to_otelite(store, "py-burst", 20_000, false).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    python_sdk_with_a_second_pipeline_counts_only_the_one_to_otelite
);

/// The same app with a second pipeline made before otelite's: a batch
/// processor of its own and an OTLP exporter to another server on the same
/// address, which answers 503 (each export given up within a second).
/// Collect and transmit are the otelite pipeline's own
/// counts, as the SDK reported them; the other pipeline's would add its
/// spans at collect and its failed exports at transmit.
async fn python_sdk_with_a_second_pipeline_counts_only_the_one_to_otelite(store: Store) {
    python_burst_counts_the_pipeline_to_otelite(store, "py-two-pipelines", 5_000, true).await;
}

/// A 64-span queue and a burst of `spans`, with the second pipeline or
/// not: otelite's stages are the SDK's own counts for the pipeline that
/// sends to it, and the spans that processor dropped are lost at collect as
/// `queue_full`.
async fn python_burst_counts_the_pipeline_to_otelite(
    store: Store,
    service: &'static str,
    spans: u64,
    second_pipeline: bool,
) {
    let backend = Backend::start_on(store, "funnel", |_| {}).await;
    let base = format!("http://{}", backend.otlp);
    let refusing = Unavailable::start().await;
    let elsewhere = second_pipeline.then(|| format!("{}/v1/traces", refusing.url()));
    let sdk: OwnCounts = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(foreign::python());
        command
            .arg(foreign::clients_dir().join("python/queue_overflow.py"))
            .args([&base, service, &spans.to_string(), "64"])
            .args(elsewhere);
        foreign::run_for(command)
    })
    .await
    .expect("client thread");
    let started = count_of(&sdk, "otel.sdk.span.started", "");
    let live = count_of(&sdk, "otel.sdk.span.live", "");
    let processed = count_of(&sdk, "otel.sdk.processor.span.processed", "");
    let queue_full = count_of(&sdk, "otel.sdk.processor.span.processed", "queue_full");
    let exported = count_of(&sdk, "otel.sdk.exporter.span.exported", "");
    assert_eq!((started, live), (spans, 0), "the SDK's own counts: {sdk:?}");
    assert!(queue_full > 0, "the burst overflowed the queue: {sdk:?}");
    assert_eq!(
        sdk["otel.sdk.exporter.span.exported"]
            .keys()
            .collect::<Vec<_>>(),
        vec![""],
        "every export to otelite succeeded: {sdk:?}"
    );
    if second_pipeline {
        let other = |metric: &str| sdk.get(&format!("elsewhere:{metric}")).cloned();
        let handed = other("otel.sdk.processor.span.processed")
            .and_then(|by_reason| by_reason.get("").copied());
        // Python 1.45.1 counts some exports answered 503 as exported: either
        // way, counted here they would show at transmit.
        let reported: u64 = other("otel.sdk.exporter.span.exported")
            .into_iter()
            .flatten()
            .map(|(_, n)| n)
            .sum();
        assert!(
            handed.is_some_and(|n| n > 0) && reported > 0,
            "the other pipeline handed spans on and reported their export: {sdk:?}"
        );
    }
    let rates = backend
        .wait_for_rates(service, |r| {
            r.n("total").is_some() && r.n("store") == Some(exported)
        })
        .await;
    assert_eq!(
        rates.counts(),
        vec![
            Some(spans),
            Some(processed),
            Some(exported),
            Some(exported),
            Some(exported),
            Some(exported)
        ],
        "each stage is the SDK's own count (own: {sdk:?})\n{rates:#?}"
    );
    // The SDK may count a few more drops than the gap (its queue check and
    // append race with the export thread): the reason keeps its count.
    let gap = spans - processed;
    assert_eq!(
        stage(&rates, "collect"),
        (
            Some(processed),
            Some(queue_full.max(gap)),
            [("queue_full".to_owned(), queue_full)]
                .into_iter()
                .chain((gap > queue_full).then(|| ("unaccounted".to_owned(), gap - queue_full)))
                .collect()
        ),
        "{rates:#?}"
    );
    for later in ["transmit", "process", "analyze", "store"] {
        assert_eq!(
            (stage(&rates, later).1, stage(&rates, later).2),
            (Some(0), vec![]),
            "{later}: {rates:#?}"
        );
    }
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_invalid_span_is_lost_at_process_with_its_reason
);

/// A request of three spans, one with an all-zero span id: the backend
/// answers a partial success, stores two, and counts the third as lost at
/// process for that reason.
async fn an_invalid_span_is_lost_at_process_with_its_reason(store: Store) {
    let backend = Backend::start_on(store, "funnel", |_| {}).await;
    let request = fixtures::one_invalid_of_three(TraceId([0x17; 16]), "invalid-one");
    let reply = backend
        .post(
            "/v1/traces",
            "application/x-protobuf",
            None,
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, 200);
    let rates = backend
        .wait_for_rates("invalid-one", |r| r.n("store") == Some(2))
        .await;
    assert_eq!(
        stage(&rates, "process"),
        (Some(2), Some(1), vec![("invalid_span_id".to_owned(), 1)]),
        "{rates:#?}"
    );
    assert_eq!(stage(&rates, "store"), (Some(2), Some(0), vec![]));
    // Relative to the three that reached the backend.
    crate::support::assert_rate(&rates, "process", 2, 3);
}
