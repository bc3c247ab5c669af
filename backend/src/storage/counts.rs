//! Stage counts: the exporters' counter readings the stores keep, and the
//! per-service sums the rates are computed from.

use crate::stage::Stage;

/// One reading of an exporter's counter, from `/v1/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterPoint {
    pub service: String,
    pub stage: Stage,
    /// The point's `error.type`: it counts spans lost at `stage` for this
    /// reason, not spans that passed it.
    pub reason: Option<String>,
    /// Identifies the series: its attributes, instance and start time.
    pub series: String,
    pub value: u64,
    /// Cumulative points carry the running total; delta points an increment.
    pub cumulative: bool,
    /// An up-down counter (`otel.sdk.span.live`): a cumulative reading below
    /// the last is a decrease, not a restart of the app.
    pub monotonic: bool,
    /// The reading is taken away from the stage: spans started but not yet
    /// ended have not reached `total`.
    pub subtracts: bool,
    pub time_ns: u64,
}

impl CounterPoint {
    /// What this reading adds to its stage, given the series' previous
    /// cumulative reading: a monotonic counter that went down was restarted
    /// and counts from zero again.
    pub fn increment(&self, last: Option<u64>) -> i64 {
        let grown = match (self.cumulative, last) {
            (false, _) | (true, None) => clamp(self.value),
            (true, Some(last)) if self.value >= last => clamp(self.value - last),
            (true, Some(_)) if self.monotonic => clamp(self.value),
            (true, Some(last)) => -clamp(last - self.value),
        };
        if self.subtracts { -grown } else { grown }
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One stage's count for one service over a time range: spans that passed
/// the stage, or, with a `reason`, spans lost there for that reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRow {
    pub service: String,
    pub stage: Stage,
    pub reason: Option<String>,
    pub n: u64,
}

/// Spans lost at a backend stage, per service and reason, in one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub service: String,
    pub stage: Stage,
    pub reason: String,
    pub n: u64,
}

/// Stored spans whose parent is not stored, among those that arrived in a
/// window of minutes at least a grace period ago: for one service (the
/// orphans' own), or for all (`service: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphans {
    pub service: Option<String>,
    /// The orphaned spans.
    pub spans: u64,
    /// The distinct parents they name (trace id, parent span id): each is a
    /// span that never reached the store.
    pub parents: u64,
    /// How long after they arrived they were still orphans: the reader's
    /// grace period (a running otelite's own, asked over HTTP).
    pub grace: std::time::Duration,
}
