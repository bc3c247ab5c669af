//! Loss at a known stage shows at that stage, with exact counts: the
//! exporter's queue overflowing loses spans at `collect`, a backend that is
//! down loses them at `transmit`. The ground truth is what the backend stored.

use crate::support::{self, Backend, GatedProxy, Store, for_each_store};
use opentelemetry::Context;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracerProvider};
use std::time::{Duration, Instant};

/// A remote parent that groups a run of spans under one trace id, so the
/// backend's trace lookup counts exactly the spans that arrived.
fn group(tag: u8) -> (Context, String) {
    let trace_id = TraceId::from_bytes(support::unique_trace_id(tag).0);
    let parent = SpanContext::new(
        trace_id,
        SpanId::from_bytes([0xab, 0, 0, 0, 0, 0, 0, tag]),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    (
        Context::new().with_remote_span_context(parent),
        trace_id.to_string(),
    )
}

/// Ends `count` spans named `{prefix}-{i}` under `parent`, as fast as it can.
fn produce(provider: &SdkTracerProvider, parent: &Context, prefix: &str, count: usize) {
    let tracer = provider.tracer("otelite-e2e-loss");
    for i in 0..count {
        tracer
            .span_builder(format!("{prefix}-{i}"))
            .start_with_context(&tracer, parent)
            .end();
    }
}

/// Flushes until the processor has handled everything queued before the
/// call. The SDK gives up waiting after 5 s while the exporter may still be
/// retrying; a later flush is answered only after the earlier work is done.
async fn flush_all(provider: &SdkTracerProvider) -> Result<(), OTelSdkError> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let p = provider.clone();
        let result = tokio::task::spawn_blocking(move || p.force_flush())
            .await
            .expect("flush thread");
        match result {
            Err(OTelSdkError::Timeout(_)) if Instant::now() < deadline => continue,
            other => return other,
        }
    }
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    queue_overflow_is_lost_at_collect
);
async fn queue_overflow_is_lost_at_collect(store: Store) {
    const PRODUCED: u64 = 2_000;
    const QUEUE: usize = 16;
    let backend = Backend::start_on(store, "loss_queue", |_| {}).await;
    // The first export hangs in the closed proxy, so the processor cannot
    // drain its queue while the spans are produced: everything past the
    // queue and the batch in flight is dropped by the SDK.
    let proxy = GatedProxy::start(backend.otlp, false).await;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(QUEUE)
        .with_max_export_batch_size(QUEUE)
        .with_scheduled_delay(Duration::from_millis(1))
        .build();
    let provider = support::otelite_provider(&proxy.url(), "loss-queue", Some(batch));
    let (parent, trace_id) = group(1);
    produce(&provider, &parent, "burst", PRODUCED as usize);
    proxy.open();
    support::shutdown(provider).await;

    let rates = backend
        .wait_for_rates("loss-queue", |r| {
            r.n("total").is_some() && r.n("store") == r.n("transmit")
        })
        .await;
    // Whatever got past the queue reaches the backend (nothing else is lost):
    // the trace lookup tells how many that was.
    let stored = backend.trace(&trace_id).await.unwrap_or_default().len() as u64;
    let dropped = PRODUCED - stored;
    eprintln!(
        "queue overflow: {PRODUCED} ended, {stored} stored, counts {:?}",
        rates.counts()
    );
    assert!(stored > 0, "the first batch went through: {rates:#?}");
    assert!(
        dropped > 0,
        "with a queue of {QUEUE} and the export held, the SDK must drop spans"
    );
    assert_eq!(
        rates.counts(),
        vec![
            Some(PRODUCED),
            Some(stored),
            Some(stored),
            Some(stored),
            Some(stored),
            Some(stored)
        ],
        "N_total - N_collect must be the {dropped} spans the SDK dropped: {rates:#?}"
    );
    support::assert_rate(&rates, "total", PRODUCED, PRODUCED);
    support::assert_rate(&rates, "collect", stored, PRODUCED);
    support::assert_rate(&rates, "transmit", stored, PRODUCED);
    support::assert_rate(&rates, "store", stored, PRODUCED);
    assert!(rates.stage("collect").rate.is_some_and(|r| r < 1.0));
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    backend_outage_is_lost_at_transmit
);
async fn backend_outage_is_lost_at_transmit(store: Store) {
    const BEFORE: u64 = 5;
    const DURING: u64 = 7;
    const AFTER: u64 = 9;
    let backend = Backend::start_on(store, "loss_outage", |_| {}).await;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(Duration::from_millis(50))
        .build();
    let provider = support::otelite_provider(&backend.otlp_url(), "loss-outage", Some(batch));

    let (parent, before) = group(2);
    produce(&provider, &parent, "before", BEFORE as usize);
    flush_all(&provider)
        .await
        .expect("flush while the backend is up");
    let stored_before = backend.wait_for_trace(&before, BEFORE as usize).await;
    assert_eq!(stored_before.len() as u64, BEFORE);

    // The backend goes away; the exporter's attempts fail until it gives up.
    let stopped = backend.stop().await;
    let (parent, during) = group(3);
    produce(&provider, &parent, "during", DURING as usize);
    let outcome = flush_all(&provider).await;
    assert!(
        !matches!(outcome, Err(OTelSdkError::Timeout(_))),
        "the exporter never gave up on a closed port: {outcome:?}"
    );

    // Same database, same ports: the exporter reconnects by itself.
    let backend = Backend::restart(stopped).await;
    let (parent, after) = group(4);
    produce(&provider, &parent, "after", AFTER as usize);
    support::shutdown(provider).await;

    let sent = BEFORE + AFTER;
    let total = BEFORE + DURING + AFTER;
    let rates = backend
        .wait_for_rates("loss-outage", |r| {
            r.n("total").is_some() && r.n("store") == Some(sent)
        })
        .await;
    assert_eq!(
        backend.wait_for_trace(&before, BEFORE as usize).await,
        stored_before,
        "spans stored before the outage survive the restart"
    );
    assert_eq!(
        backend.trace(&during).await,
        None,
        "nothing sent during the outage"
    );
    eprintln!("outage: counts {:?}", rates.counts());
    let stored_after = backend.wait_for_trace(&after, AFTER as usize).await;
    assert_eq!(stored_after.len() as u64, AFTER);
    assert_eq!(
        rates.counts(),
        vec![
            Some(total),
            Some(total),
            Some(sent),
            Some(sent),
            Some(sent),
            Some(sent)
        ],
        "the {DURING} spans of the outage are lost at transmit: {rates:#?}"
    );
    support::assert_rate(&rates, "collect", total, total);
    support::assert_rate(&rates, "transmit", sent, total);
    support::assert_rate(&rates, "store", sent, total);
}
