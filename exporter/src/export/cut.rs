//! Shutdown's cut-off for requests in flight: when shutdown begins, a try
//! already running ends at the cut-off, so that its batch can still be
//! spooled (or counted) before the SDK stops waiting; a try that starts
//! later (the SDK exports what its queue still held) gets a short grace of
//! its own instead of none, so a backend that answers still gets it.

use std::time::Duration;
use tokio::time::Instant;

/// Set once, when shutdown begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CutOff {
    pub at: Instant,
    /// What a try started at or after `at` still gets.
    pub late_grace: Duration,
}

impl CutOff {
    /// When a try started at `started` must end.
    pub fn end_for(&self, started: Instant) -> Instant {
        self.at.max(started + self.late_grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_try_running_at_the_cut_off_ends_there_a_later_one_gets_its_grace() {
        let start = Instant::now();
        let cut = CutOff {
            at: start + Duration::from_secs(2),
            late_grace: Duration::from_millis(500),
        };
        assert_eq!(cut.end_for(start), start + Duration::from_secs(2));
        assert_eq!(
            cut.end_for(start + Duration::from_millis(1800)),
            start + Duration::from_millis(2300)
        );
        assert_eq!(
            cut.end_for(start + Duration::from_secs(3)),
            start + Duration::from_millis(3500)
        );
    }
}
