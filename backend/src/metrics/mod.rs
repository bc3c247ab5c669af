//! The backend's own numbers for `GET /metrics`: what the receiver accepted
//! and refused, request latency per route, and (read at scrape time from
//! the store) the write queue, the stage counts and the database size.
//! Counting is atomics only, once per request or batch, never per span and
//! never under a lock, so it costs the receive path nothing measurable.

mod exposition;
mod latency;

pub use exposition::{StoreGauges, render};
pub use latency::{BUCKETS_SECONDS, record_latency};

use crate::admission::ByteBudget;
use crate::storage::Stored;
use latency::RouteLatency;
use std::sync::atomic::{AtomicU64, Ordering};

/// Spans that passed a stage: (service, stage, n).
pub type StageCount = (String, crate::stage::Stage, u64);
/// Spans a rule dropped: (service, rule, n).
pub type RuleDrops = (String, String, u64);

/// The store's stage rows as `/metrics` shows them: the spans that passed
/// each stage, (service, stage, n), and apart the spans rules dropped,
/// (service, rule, n). Losses by reason are `/api/rates`' to show.
pub fn split_stage_rows(rows: Vec<crate::storage::RateRow>) -> (Vec<StageCount>, Vec<RuleDrops>) {
    let mut passed = Vec::new();
    let mut drops = Vec::new();
    for row in rows {
        match row.reason.as_deref().map(crate::analyze::policy::rule_of) {
            None => passed.push((row.service, row.stage, row.n)),
            Some(Some(rule)) => drops.push((row.service, rule.to_owned(), row.n)),
            Some(None) => {}
        }
    }
    (passed, drops)
}

/// Why spans or a request were refused; the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A span with an invalid trace or span id (the rest of the batch is kept).
    InvalidSpan,
    /// Unreadable body, bad gzip, or not an OTLP message.
    Decode,
    TooLarge,
    UnsupportedMediaType,
    /// Another span with the same trace and span id was stored already.
    Conflict,
    /// The write queue was full: 503.
    Overloaded,
    /// The store failed or is shutting down: 503.
    Unavailable,
}

impl Rejection {
    pub const ALL: [Rejection; 7] = [
        Rejection::InvalidSpan,
        Rejection::Conflict,
        Rejection::Decode,
        Rejection::TooLarge,
        Rejection::UnsupportedMediaType,
        Rejection::Overloaded,
        Rejection::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::InvalidSpan => "invalid_span",
            Rejection::Conflict => "conflicting_ids",
            Rejection::Decode => "decode",
            Rejection::TooLarge => "too_large",
            Rejection::UnsupportedMediaType => "unsupported_media_type",
            Rejection::Overloaded => "overloaded",
            Rejection::Unavailable => "unavailable",
        }
    }
}

/// Shared by the receive and query routers (`Arc<Metrics>`), and so the
/// home of what every receiver shares: the byte budget of ingest.
#[derive(Default)]
pub struct Metrics {
    byte_budget: ByteBudget,
    spans_received: AtomicU64,
    spans_accepted: AtomicU64,
    spans_duplicate: AtomicU64,
    spans_rejected: [AtomicU64; Rejection::ALL.len()],
    requests_rejected: [AtomicU64; Rejection::ALL.len()],
    latency: RouteLatency,
}

impl Metrics {
    /// Metrics whose receivers hold at most `max_inflight_bytes` at once.
    pub fn new(max_inflight_bytes: usize) -> Self {
        Self {
            byte_budget: ByteBudget::new(max_inflight_bytes),
            ..Self::default()
        }
    }

    /// The bytes in flight every receiver takes its permits from.
    pub fn byte_budget(&self) -> &ByteBudget {
        &self.byte_budget
    }

    /// A trace request decoded into `received` spans, `invalid` of them refused.
    pub fn spans_decoded(&self, received: usize, invalid: usize) {
        self.spans_received
            .fetch_add(received as u64, Ordering::Relaxed);
        if invalid > 0 {
            self.spans_rejected[Rejection::InvalidSpan as usize]
                .fetch_add(invalid as u64, Ordering::Relaxed);
        }
    }

    /// What a committed batch did: spans stored, retries of stored spans,
    /// and spans refused for reusing a stored span's ids.
    pub fn spans_stored(&self, stored: &Stored) {
        self.spans_accepted
            .fetch_add(stored.inserted, Ordering::Relaxed);
        self.spans_duplicate
            .fetch_add(stored.duplicates, Ordering::Relaxed);
        self.spans_rejected[Rejection::Conflict as usize]
            .fetch_add(stored.conflicts, Ordering::Relaxed);
    }

    /// Decoded spans the store did not take.
    pub fn spans_not_stored(&self, reason: Rejection, n: usize) {
        self.spans_rejected[reason as usize].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// An OTLP request answered with an error status.
    pub fn request_rejected(&self, reason: Rejection) {
        self.requests_rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn received(&self) -> u64 {
        self.spans_received.load(Ordering::Relaxed)
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.spans_accepted.load(Ordering::Relaxed)
    }

    fn duplicates(&self) -> u64 {
        self.spans_duplicate.load(Ordering::Relaxed)
    }

    fn spans_rejected(&self, reason: Rejection) -> u64 {
        self.spans_rejected[reason as usize].load(Ordering::Relaxed)
    }

    fn requests_rejected(&self, reason: Rejection) -> u64 {
        self.requests_rejected[reason as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
