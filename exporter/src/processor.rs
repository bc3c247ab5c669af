//! `CountingProcessor`: wraps a span processor (the SDK's `BatchSpanProcessor`)
//! to count every ended span (N_total) before the queue can drop it, and to
//! push the metrics report after a flush and a final one after shutdown.

use crate::export::deadline_after;
use crate::metrics::MetricsReporter;
use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The least time the final report gets after a shutdown that used up its timeout.
const LAST_CHANCE: Duration = Duration::from_millis(500);

/// Export tries in flight get 40 % of the shutdown timeout; the spool's
/// last pass and the final report share what is left.
fn tries_share(timeout: Duration) -> Duration {
    timeout / 5 * 2
}

/// A try the SDK starts after that still gets 10 % (its queue may hold
/// several batches): a backend that answers takes them, a hung one costs
/// little, since with a spool the batches after the first go straight to it.
fn late_try_share(timeout: Duration) -> Duration {
    timeout / 10
}

/// Counts ended spans, then forwards everything to `inner`.
#[derive(Debug)]
pub struct CountingProcessor<P: SpanProcessor> {
    inner: P,
    reporter: MetricsReporter,
    shut_down: AtomicBool,
}

impl<P: SpanProcessor> CountingProcessor<P> {
    /// `reporter` comes from `OteliteExporter::metrics_reporter` of the
    /// exporter inside `inner`.
    pub fn new(inner: P, reporter: MetricsReporter) -> Self {
        Self {
            inner,
            reporter,
            shut_down: AtomicBool::new(false),
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.reporter.shared().counters.record_ended(1);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        let result = self.inner.force_flush();
        if let Err(error) = self.reporter.report(None) {
            tracing::debug!(%error, "otelite-exporter: metrics report after flush failed");
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return self.inner.shutdown_with_timeout(timeout);
        }
        let started = Instant::now();
        // An export in flight gets a share of the timeout, not its own whole
        // deadline: after it, its batch is spooled (or counted) while there
        // is still time, and the rest goes to the spool and the report.
        self.reporter.shared().begin_shutdown(
            deadline_after(tries_share(timeout)),
            late_try_share(timeout),
        );
        let result = self.inner.shutdown_with_timeout(timeout);
        // Once the inner processor has drained and shut its exporter down
        // (even if the last export failed), every span the queue accepted has
        // reached `export`: the difference is exactly what the queue dropped.
        // After a shutdown timeout it is not known, and left out.
        let shared = self.reporter.shared();
        let queue_full = shared.exporter_shut_down.load(Ordering::Acquire).then(|| {
            let snap = shared.counters.snapshot();
            snap.spans_ended.saturating_sub(snap.spans_collected)
        });
        // What is left of the caller's timeout, but a last short chance even
        // when the flush used it all (the report says what was lost).
        let budget = timeout.saturating_sub(started.elapsed()).max(LAST_CHANCE);
        self.reporter.final_report(queue_full, budget);
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.reporter.shared().set_resource(resource);
        self.inner.set_resource(resource);
    }
}
