//! Stage counts: the exporters' counter readings the stores keep, and the
//! per-service sums the rates are computed from.

use crate::stage::Stage;

/// One reading of an exporter's counter, from `/v1/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterPoint {
    pub service: String,
    pub stage: Stage,
    /// Identifies the series: its attributes and start time.
    pub series: String,
    pub value: u64,
    /// Cumulative points carry the running total; delta points an increment.
    pub cumulative: bool,
    pub time_ns: u64,
}

/// One stage's count for one service over a time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRow {
    pub service: String,
    pub stage: Stage,
    pub n: u64,
}
