//! The Go, Java and Node SDKs' own self-observability counters (`otel.sdk.*`,
//! each behind its SDK's switch; see the README's funnel section) become
//! otelite's exporter-side stages: each stage's N is the count the SDK itself
//! reported, read in the client through a reader on the same MeterProvider
//! (`tests/clients/go-counters`, `tests/clients/java`,
//! `tests/clients/node/counters.js`), and each loss shows under the SDK's own
//! `error.type`. Three scenarios per SDK: a 64-span queue under a burst
//! (lost at collect), an endpoint nobody listens on and one that answers
//! 503 (lost at transmit; retries off where the SDK allows it). Each on
//! both stores.

use crate::support::unavailable::Unavailable;
use crate::support::{Backend, ServiceRates, Store, for_each_store, foreign};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;

/// What the client read from its SDK: metric → error.type ("" for none) → value.
type OwnCounts = BTreeMap<String, BTreeMap<String, u64>>;

const STARTED: &str = "otel.sdk.span.started";
const LIVE: &str = "otel.sdk.span.live";
const PROCESSED: &str = "otel.sdk.processor.span.processed";
const EXPORTED: &str = "otel.sdk.exporter.span.exported";
/// The reasons a processor drops spans under itself; the JS SDK's processor
/// also counts a failed export, under the export's error, after handing the
/// spans over (see `backend/src/process/counters.rs`).
const PROCESSOR_DROPS: [&str; 2] = ["queue_full", "already_shutdown"];

#[derive(Debug, Clone, Copy)]
enum Sdk {
    Go,
    Java,
    Node,
}

impl Sdk {
    fn client(self) -> Command {
        match self {
            Sdk::Go => foreign::go_counters(),
            Sdk::Java => foreign::java_counters(),
            Sdk::Node => foreign::node_counters(),
        }
    }

    /// Runs the client: `spans` spans through a `queue`-span batch queue to
    /// `traces_url`, its counters to the backend.
    async fn run(
        self,
        backend: &Backend,
        traces_url: String,
        service: &str,
        spans: u64,
        queue: u64,
    ) -> OwnCounts {
        self.run_with(backend, traces_url, service, spans, queue, &[])
            .await
    }

    /// [`Sdk::run`] with more arguments after the usual ones.
    async fn run_with(
        self,
        backend: &Backend,
        traces_url: String,
        service: &str,
        spans: u64,
        queue: u64,
        more: &[&str],
    ) -> OwnCounts {
        let mut command = self.client();
        command.args([
            backend.otlp_url(),
            traces_url,
            service.to_owned(),
            spans.to_string(),
            queue.to_string(),
        ]);
        command.args(more);
        tokio::task::spawn_blocking(move || foreign::run_for(command))
            .await
            .expect("client thread")
    }
}

fn count_of(counts: &OwnCounts, metric: &str, reason: &str) -> u64 {
    counts
        .get(metric)
        .and_then(|by_reason| by_reason.get(reason))
        .copied()
        .unwrap_or(0)
}

/// The metric's counts under an `error.type`, without the zeros (the Go SDK
/// reports a series of 0 successes beside its failures).
fn errors_of(counts: &OwnCounts, metric: &str) -> BTreeMap<String, u64> {
    counts
        .get(metric)
        .into_iter()
        .flatten()
        .filter(|(reason, n)| !reason.is_empty() && **n > 0)
        .map(|(reason, n)| (reason.clone(), *n))
        .collect()
}

/// Spans the processor handed to the exporter, by the SDK's own count.
fn handed_over(counts: &OwnCounts) -> u64 {
    counts
        .get(PROCESSED)
        .into_iter()
        .flatten()
        .filter(|(reason, _)| !PROCESSOR_DROPS.contains(&reason.as_str()))
        .map(|(_, n)| *n)
        .sum()
}

/// `(n, lost, reasons)` of a stage.
fn stage(rates: &ServiceRates, name: &str) -> (Option<u64>, Option<u64>, BTreeMap<String, u64>) {
    let stage = rates.stage(name);
    (stage.n, stage.lost, stage.reasons.clone())
}

/// A traces URL on a port nothing listens on: bound, then let go.
fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("its address").port();
    format!("http://127.0.0.1:{port}/v1/traces")
}

/// 20 000 spans into a 64-span queue: otelite's stages are the SDK's own
/// counts, and the spans it dropped are lost at collect as `queue_full`.
async fn queue_overflow_is_lost_at_collect(store: Store, sdk: Sdk, service: &str) {
    queue_overflow_is_lost_at_collect_with(store, sdk, service, &[]).await;
}

/// [`queue_overflow_is_lost_at_collect`] with more client arguments.
async fn queue_overflow_is_lost_at_collect_with(
    store: Store,
    sdk: Sdk,
    service: &str,
    more: &[&str],
) {
    const SPANS: u64 = 20_000;
    let backend = Backend::start_on(store, "sdk_counters", |_| {}).await;
    let traces = format!("{}/v1/traces", backend.otlp_url());
    let own = sdk
        .run_with(&backend, traces, service, SPANS, 64, more)
        .await;
    let queue_full = count_of(&own, PROCESSED, "queue_full");
    let handed = handed_over(&own);
    let exported = count_of(&own, EXPORTED, "");
    assert_eq!(
        (count_of(&own, STARTED, ""), count_of(&own, LIVE, "")),
        (SPANS, 0),
        "the SDK's own counts: {own:?}"
    );
    assert!(queue_full > 0, "the burst overflowed the queue: {own:?}");
    assert_eq!(errors_of(&own, EXPORTED), BTreeMap::new(), "{own:?}");
    let rates = backend
        .wait_for_rates(service, |r| {
            r.n("total").is_some() && r.n("store") == Some(exported)
        })
        .await;
    assert_eq!(
        rates.counts(),
        vec![
            Some(SPANS),
            Some(handed),
            Some(exported),
            Some(exported),
            Some(exported),
            Some(exported)
        ],
        "each stage is the SDK's own count (own: {own:?})\n{rates:#?}"
    );
    // Should the SDK count a drop its queue check raced with, the reason
    // keeps its own count and the rest of the gap is unaccounted.
    let gap = SPANS - handed;
    let mut reasons = BTreeMap::from([("queue_full".to_owned(), queue_full)]);
    if gap > queue_full {
        reasons.insert("unaccounted".to_owned(), gap - queue_full);
    }
    assert_eq!(
        stage(&rates, "collect"),
        (Some(handed), Some(queue_full.max(gap)), reasons),
        "{rates:#?}"
    );
    for later in ["transmit", "process", "analyze", "store"] {
        assert_eq!(stage(&rates, later).1, Some(0), "{later}: {rates:#?}");
    }
}

/// 50 spans exported to `traces_url`, where every export fails (retries
/// off where the SDK allows it): every one passes collect and is lost at
/// transmit, under the `error.type` the SDK's exporter reported.
async fn failed_exports_are_lost_at_transmit(
    store: Store,
    sdk: Sdk,
    service: &str,
    traces_url: String,
) {
    const SPANS: u64 = 50;
    let backend = Backend::start_on(store, "sdk_counters", |_| {}).await;
    let own = sdk.run(&backend, traces_url, service, SPANS, 2048).await;
    let failed = errors_of(&own, EXPORTED);
    let exported = count_of(&own, EXPORTED, "");
    let handed = handed_over(&own);
    assert_eq!(
        (count_of(&own, STARTED, ""), handed, exported),
        (SPANS, SPANS, 0),
        "the SDK's own counts: {own:?}"
    );
    assert_eq!(failed.values().sum::<u64>(), SPANS, "{own:?}");
    let rates = backend
        .wait_for_rates(service, |r| {
            r.n("total").is_some() && r.stage("transmit").lost.is_some_and(|n| n > 0)
        })
        .await;
    assert_eq!(
        rates.counts(),
        vec![
            Some(SPANS),
            Some(handed),
            Some(0),
            Some(0),
            Some(0),
            Some(0)
        ],
        "each stage is the SDK's own count (own: {own:?})\n{rates:#?}"
    );
    assert_eq!(
        stage(&rates, "collect"),
        (Some(handed), Some(0), BTreeMap::new()),
        "lost once, not at collect too: {rates:#?}"
    );
    assert_eq!(
        stage(&rates, "transmit"),
        (Some(0), Some(SPANS), failed),
        "the SDK's error.type (own: {own:?})\n{rates:#?}"
    );
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    go_sdk_queue_overflow_is_lost_at_collect_as_queue_full
);

async fn go_sdk_queue_overflow_is_lost_at_collect_as_queue_full(store: Store) {
    queue_overflow_is_lost_at_collect(store, Sdk::Go, "go-burst").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    go_sdk_queue_overflow_with_delta_temporality_counts_the_same
);

/// The same with the metrics sent as deltas (every sum, `live` too).
async fn go_sdk_queue_overflow_with_delta_temporality_counts_the_same(store: Store) {
    queue_overflow_is_lost_at_collect_with(store, Sdk::Go, "go-burst-delta", &["delta"]).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    go_sdk_dead_endpoint_is_lost_at_transmit_with_its_error_type
);

async fn go_sdk_dead_endpoint_is_lost_at_transmit_with_its_error_type(store: Store) {
    failed_exports_are_lost_at_transmit(store, Sdk::Go, "go-dead", dead_endpoint()).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    go_sdk_503_is_lost_at_transmit_with_its_error_type
);

async fn go_sdk_503_is_lost_at_transmit_with_its_error_type(store: Store) {
    let refusing = Unavailable::start().await;
    let traces = format!("{}/v1/traces", refusing.url());
    failed_exports_are_lost_at_transmit(store, Sdk::Go, "go-503", traces).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    java_sdk_queue_overflow_is_lost_at_collect_as_queue_full
);

async fn java_sdk_queue_overflow_is_lost_at_collect_as_queue_full(store: Store) {
    queue_overflow_is_lost_at_collect(store, Sdk::Java, "java-burst").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    java_sdk_dead_endpoint_is_lost_at_transmit_with_its_error_type
);

async fn java_sdk_dead_endpoint_is_lost_at_transmit_with_its_error_type(store: Store) {
    failed_exports_are_lost_at_transmit(store, Sdk::Java, "java-dead", dead_endpoint()).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    java_sdk_503_is_lost_at_transmit_with_its_error_type
);

async fn java_sdk_503_is_lost_at_transmit_with_its_error_type(store: Store) {
    let refusing = Unavailable::start().await;
    let traces = format!("{}/v1/traces", refusing.url());
    failed_exports_are_lost_at_transmit(store, Sdk::Java, "java-503", traces).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    node_sdk_queue_overflow_is_lost_at_collect_as_queue_full
);

async fn node_sdk_queue_overflow_is_lost_at_collect_as_queue_full(store: Store) {
    queue_overflow_is_lost_at_collect(store, Sdk::Node, "node-burst").await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    node_sdk_dead_endpoint_is_lost_at_transmit_with_its_error_type
);

/// The JS SDK's processor also counts the failed spans (`error.type=Error`):
/// they are still lost once, at transmit.
async fn node_sdk_dead_endpoint_is_lost_at_transmit_with_its_error_type(store: Store) {
    failed_exports_are_lost_at_transmit(store, Sdk::Node, "node-dead", dead_endpoint()).await;
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    node_sdk_503_is_lost_at_transmit_with_its_error_type
);

/// Past its five attempts (about 10 s of backoff).
async fn node_sdk_503_is_lost_at_transmit_with_its_error_type(store: Store) {
    let refusing = Unavailable::start().await;
    let traces = format!("{}/v1/traces", refusing.url());
    failed_exports_are_lost_at_transmit(store, Sdk::Node, "node-503", traces).await;
}
