//! The pipeline stages whose span counts give the loss rates, and the
//! clock those counts are filed by (a minute of unix time).

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Spans ended in the app (exporter side).
    Total,
    /// Spans accepted by the exporter's queue (exporter side).
    Collect,
    /// Spans acknowledged by the backend (exporter side).
    Transmit,
    /// Spans past an OpenTelemetry Collector between the apps and otelite,
    /// counted from the Collector's own telemetry (`otelcol_*`). A hop, not
    /// a stage every span has: listed only when a Collector reports.
    Collector,
    /// Spans decoded and validated into the model.
    Process,
    /// Spans through trace analysis.
    Analyze,
    /// Spans committed to SQLite.
    Store,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Total,
        Stage::Collect,
        Stage::Transmit,
        Stage::Collector,
        Stage::Process,
        Stage::Analyze,
        Stage::Store,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Total => "total",
            Stage::Collect => "collect",
            Stage::Transmit => "transmit",
            Stage::Collector => "collector",
            Stage::Process => "process",
            Stage::Analyze => "analyze",
            Stage::Store => "store",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the exporter, not the backend, counts this stage.
    pub fn is_exporter_side(self) -> bool {
        matches!(self, Stage::Total | Stage::Collect | Stage::Transmit)
    }
}

/// Unix seconds of the minute that holds `unix_nanos`.
pub fn minute_of(unix_nanos: u64) -> i64 {
    let seconds = (unix_nanos / 1_000_000_000) as i64;
    seconds - seconds.rem_euclid(60)
}

/// The present in unix nanoseconds: when a batch is received, and what
/// retention counts back from. Zero if the clock is before 1970; the
/// largest `u64` after 2554.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
