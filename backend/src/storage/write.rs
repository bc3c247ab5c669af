//! The write side's vocabulary: what a committed batch added, how much may
//! wait for a writer, and the writer's health as readiness sees it.

/// How much may wait for the writer before new writes are refused.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub requests: usize,
    pub spans: usize,
}

/// The writer's state as readiness and metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteHealth {
    pub writer_alive: bool,
    pub last_write_failed: bool,
    pub queued_requests: usize,
    pub request_capacity: usize,
    pub queued_spans: usize,
    pub span_capacity: usize,
}

/// What a committed span batch added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    /// Spans newly stored; a span already present (a retry) is not counted.
    pub inserted: u64,
    /// Spans already stored as they are (retries): accepted, not stored again.
    pub duplicates: u64,
    /// Spans refused because another span with the same trace and span id
    /// was stored (SQLite only: ClickHouse keeps the first copy and counts
    /// the others as duplicates).
    pub conflicts: u64,
}
