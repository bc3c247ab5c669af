//! Pipeline-loss counters shared via `Arc`: spans ended (by the processor),
//! collected (reached `export`), exported (acknowledged) and failed (by error
//! type). Updated per batch; read as a `CountersSnapshot` or as OTLP metrics.

use crate::error::ExportError;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why spans of a batch were not acknowledged; the `error.type` of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The endpoint acknowledged the batch but listed them in `partial_success.rejected_spans`.
    Rejected,
    /// The deadline passed with a request in flight.
    Timeout,
    /// A non-2xx status below 500 (400, 413, 429 after retries…).
    Http4xx,
    /// A 5xx status (after retries if retryable).
    Http5xx,
    /// No HTTP answer (refused, reset, …).
    Transport,
    /// Encoding failed or the exporter's runtime was gone.
    Internal,
    /// The endpoint could not take the batch and the spool had no room.
    SpoolFull,
    /// A spooled file did not decode (truncated, empty, foreign): lost in
    /// the spool, not in transmission.
    SpoolUnreadable,
    /// The endpoint could not take the batch and the configured spool
    /// directory was refused (another user's, or writable by others).
    SpoolRefused,
}

impl FailureKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [FailureKind; 9] = [
        Self::Rejected,
        Self::Timeout,
        Self::Http4xx,
        Self::Http5xx,
        Self::Transport,
        Self::Internal,
        Self::SpoolFull,
        Self::SpoolUnreadable,
        Self::SpoolRefused,
    ];

    /// The `error.type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::Http4xx => "http_4xx",
            Self::Http5xx => "http_5xx",
            Self::Transport => "transport",
            Self::Internal => "internal",
            Self::SpoolFull => "spool_full",
            Self::SpoolUnreadable => "spool_unreadable",
            Self::SpoolRefused => "spool_refused",
        }
    }

    /// The kind a failed export is counted under.
    pub fn of(error: &ExportError) -> Self {
        match error {
            ExportError::Timeout(_) | ExportError::CutByShutdown => Self::Timeout,
            ExportError::Http { status, .. } if *status >= 500 => Self::Http5xx,
            ExportError::Http { .. } => Self::Http4xx,
            ExportError::Transport(_) => Self::Transport,
            ExportError::Internal(_) => Self::Internal,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The counters themselves; cheap to update from any thread.
#[derive(Debug, Default)]
pub struct Counters {
    spans_ended: AtomicU64,
    spans_collected: AtomicU64,
    spans_exported: AtomicU64,
    spans_export_failed: [AtomicU64; FailureKind::ALL.len()],
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountersSnapshot {
    /// N_total: spans ended and handed to the processor.
    pub spans_ended: u64,
    /// N_collect: spans that reached `export` (not dropped by the batch queue).
    pub spans_collected: u64,
    /// N_transmit: spans acknowledged by the endpoint (2xx minus rejected).
    pub spans_exported: u64,
    /// Spans not acknowledged, per `FailureKind` (indexed like `FailureKind::ALL`).
    pub spans_export_failed: [u64; FailureKind::ALL.len()],
}

impl CountersSnapshot {
    /// Failed spans of one kind.
    pub fn failed(&self, kind: FailureKind) -> u64 {
        self.spans_export_failed[kind.index()]
    }

    /// Failed spans of every kind.
    pub fn failed_total(&self) -> u64 {
        self.spans_export_failed.iter().sum()
    }
}

impl Counters {
    /// A span ended (counted by `CountingProcessor::on_end`).
    pub fn record_ended(&self, spans: u64) {
        self.spans_ended.fetch_add(spans, Ordering::Relaxed);
    }

    /// A batch reached `export`.
    pub fn record_collected(&self, spans: u64) {
        self.spans_collected.fetch_add(spans, Ordering::Relaxed);
    }

    /// A batch was acknowledged, `rejected` of its spans refused by the endpoint.
    pub fn record_acknowledged(&self, spans: u64, rejected: u64) {
        let rejected = rejected.min(spans);
        self.spans_exported
            .fetch_add(spans - rejected, Ordering::Relaxed);
        if rejected > 0 {
            self.record_failed(FailureKind::Rejected, rejected);
        }
        tracing::debug!(spans, rejected, "otelite-exporter: batch acknowledged");
    }

    /// A batch failed as a whole.
    pub fn record_failed(&self, kind: FailureKind, spans: u64) {
        self.spans_export_failed[kind.index()].fetch_add(spans, Ordering::Relaxed);
        tracing::warn!(
            spans,
            error_type = kind.as_str(),
            "otelite-exporter: spans not exported"
        );
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            spans_ended: self.spans_ended.load(Ordering::Relaxed),
            spans_collected: self.spans_collected.load(Ordering::Relaxed),
            spans_exported: self.spans_exported.load(Ordering::Relaxed),
            spans_export_failed: std::array::from_fn(|i| {
                self.spans_export_failed[i].load(Ordering::Relaxed)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_spans_are_split_from_acknowledged_ones() {
        let counters = Counters::default();
        counters.record_acknowledged(10, 3);
        counters.record_acknowledged(2, 5); // bogus server: clamp
        let snap = counters.snapshot();
        assert_eq!(snap.spans_exported, 7);
        assert_eq!(snap.failed(FailureKind::Rejected), 5);
    }

    #[test]
    fn failure_kinds_follow_status_classes() {
        let http = |status| ExportError::Http {
            status,
            body: String::new(),
        };
        assert_eq!(FailureKind::of(&http(400)), FailureKind::Http4xx);
        assert_eq!(FailureKind::of(&http(503)), FailureKind::Http5xx);
        assert_eq!(
            FailureKind::of(&ExportError::Transport("x".into())),
            FailureKind::Transport
        );
    }
}
