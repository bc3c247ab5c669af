//! The exporter's spool: spans made while the backend is down, across an
//! app restart, arrive once it is back, each exactly once; a full spool
//! drops what does not fit and counts it.

use crate::support::{Backend, resource, shutdown};
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracerProvider};
use otelite_exporter::counters::{Counters, FailureKind};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

const SERVICE: &str = "spool-svc";

fn spooling_provider(
    endpoint: &str,
    spool: &Path,
    max_bytes: u64,
) -> (SdkTracerProvider, Arc<Counters>) {
    let builder = otelite_exporter::OteliteExporter::builder()
        .with_endpoint(endpoint)
        .with_spool(spool, max_bytes)
        .with_timeout(std::time::Duration::from_secs(2))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_export_batch_size(10)
                .build(),
        );
    let counters = builder.counters();
    let provider = builder
        .build_provider(resource(SERVICE))
        .expect("exporter with a spool builds");
    (provider, counters)
}

/// Makes one trace of `spans` spans; returns (trace id, span ids).
fn make_trace(provider: &SdkTracerProvider, spans: usize) -> (String, BTreeSet<String>) {
    let tracer = provider.tracer("spool");
    let mut ids = BTreeSet::new();
    let trace_id = tracer.in_span("root", |cx| {
        ids.insert(cx.span().span_context().span_id().to_string());
        for i in 1..spans {
            let mut child = tracer.start_with_context(format!("child-{i}"), &cx);
            child.set_attribute(opentelemetry::KeyValue::new("payload", "x".repeat(200)));
            ids.insert(child.span_context().span_id().to_string());
            child.end();
        }
        cx.span().span_context().trace_id().to_string()
    });
    (trace_id, ids)
}

fn spooled_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |files| files.count())
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_outlive_an_outage_and_an_app_restart_and_arrive_once() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");

    // First run of the app: the backend is down throughout.
    let (first, _) = spooling_provider(&endpoint, spool.path(), 64 << 20);
    let (trace_a, spans_a) = make_trace(&first, 25);
    shutdown(first).await;
    assert!(spooled_files(spool.path()) >= 3, "batches of 10 spooled");

    // The app restarts with the same spool; the backend is still down.
    let (second, _) = spooling_provider(&endpoint, spool.path(), 64 << 20);
    let (trace_b, spans_b) = make_trace(&second, 15);
    let backend = Backend::restart(down).await;
    for (trace, spans) in [(&trace_a, &spans_a), (&trace_b, &spans_b)] {
        let stored = backend.wait_for_trace(trace, spans.len()).await;
        let ids: Vec<String> = stored.iter().map(|s| s.span_id.to_string()).collect();
        assert_eq!(ids.len(), spans.len(), "each span once");
        assert_eq!(&ids.into_iter().collect::<BTreeSet<_>>(), spans);
    }
    shutdown(second).await;

    // Both runs' counters arrived too (the first run's from the spool).
    let total = (spans_a.len() + spans_b.len()) as u64;
    let rates = backend
        .wait_for_rates(SERVICE, |r| {
            r.n("total") == Some(total) && r.n("transmit") == Some(total)
        })
        .await;
    assert_eq!(rates.n("collect"), Some(total));
    assert_eq!(rates.n("store"), Some(total), "nothing stored twice");
    assert_eq!(spooled_files(spool.path()), 0, "the spool is empty again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_spool_drops_what_does_not_fit_and_counts_it() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");

    // Room for about one gzip'd batch of 10 spans.
    let (provider, counters) = spooling_provider(&endpoint, spool.path(), 1200);
    let (trace, _) = make_trace(&provider, 60);
    provider.force_flush().expect("flush");
    let snapshot = counters.snapshot();
    let dropped = snapshot.failed(FailureKind::SpoolFull);
    assert_eq!(snapshot.spans_collected, 60);
    assert!(
        dropped > 0 && dropped < 60,
        "some batches fit, the rest are dropped and counted: {snapshot:?}"
    );

    let backend = Backend::restart(down).await;
    let kept = (60 - dropped) as usize;
    let stored = backend.wait_for_trace(&trace, kept).await;
    assert_eq!(stored.len(), kept, "exactly what the spool held arrives");
    shutdown(provider).await;
    let rates = backend
        .wait_for_rates(SERVICE, |r| r.n("total") == Some(60))
        .await;
    assert_eq!(rates.n("collect"), Some(60));
    assert_eq!(
        rates.n("transmit"),
        Some(kept as u64),
        "the loss shows at transmit"
    );
    assert_eq!(rates.n("store"), Some(kept as u64));
}
