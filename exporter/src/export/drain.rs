//! Sending what the spool holds, oldest first, on the exporter's runtime:
//! one request at a time, so that requests arrive in the order they were
//! made. `drain` runs in the background, backing off (and honouring
//! `Retry-After`) while the endpoint is away, until shutdown begins;
//! `drain_before` is shutdown's bounded last pass, so that a short-lived
//! app still empties its spool when the endpoint is up. Each body is
//! decoded first: what does not decode is set aside and counted as lost in
//! the spool; a request the endpoint refuses for good is dropped and counted.

use super::Shared;
use super::attempt::attempt;
use super::retry::{RetryDecision, classify, http_error, next_delay};
use super::spool::{Claimed, Entry, Kind, Spool};
use crate::counters::FailureKind;
use crate::error::ExportError;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long an idle drainer sleeps before looking at the spool again, in
/// case a wake-up was missed.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What one step at the oldest request came to.
enum Step {
    /// Delivered, refused for good, set aside, or another spool's: it is
    /// no longer this spool's to send.
    Done,
    /// The endpoint is away: try again after this long.
    Later(Duration),
}

/// Runs until shutdown begins; what is left is for `drain_before`, then the
/// next run. A request in flight when the shutdown's cut-off passes is
/// abandoned and stays on disk.
pub(crate) async fn drain(shared: Arc<Shared>) {
    let Some(spool) = shared.spool.clone() else {
        return;
    };
    let mut stopping = shared.cut_off.subscribe();
    // Which requests are this exporter's depends on its service.
    let mut resource_set = shared.resource_set.subscribe();
    tokio::select! {
        _ = resource_set.wait_for(|set| *set) => {}
        _ = stopping.changed() => return,
    }
    let owner = shared.spool_owner();
    let mut failures = 0u32;
    while stopping.borrow_and_update().is_none() {
        let Some(entry) = spool.oldest_for(&owner) else {
            tokio::select! {
                _ = tokio::time::timeout(IDLE_POLL, shared.spool_wake.notified()) => {}
                _ = stopping.changed() => {}
            }
            continue;
        };
        let step = tokio::select! {
            step = step(&shared, &spool, entry, failures) => step,
            () = shared.cut_off_reached() => return,
        };
        match step {
            Step::Done => failures = 0,
            Step::Later(wait) => {
                failures = failures.saturating_add(1);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopping.changed() => {}
                }
            }
        }
    }
}

/// Sends what the spool holds until it is empty, the endpoint is away, or
/// `by`; the rest waits on disk for the next run.
pub(crate) async fn drain_before(shared: &Shared, by: Instant) {
    let Some(spool) = shared.spool.clone() else {
        return;
    };
    let owner = shared.spool_owner();
    while let Some(entry) = spool.oldest_for(&owner) {
        match tokio::time::timeout_at(by, step(shared, &spool, entry, 0)).await {
            Ok(Step::Done) => {}
            Ok(Step::Later(_)) | Err(_) => return,
        }
    }
}

/// Claims the oldest request, checks its body and sends it once.
async fn step(shared: &Shared, spool: &Arc<Spool>, entry: Entry, failures: u32) -> Step {
    let claiming = spool.clone();
    // Reading and decoding a body is file I/O and CPU: off the runtime.
    let claimed = tokio::task::spawn_blocking(move || {
        let claimed = claiming.claim(&entry).map(|claimed| {
            claimed.map(|claimed| {
                let spans = claimed.spans();
                (claimed, spans)
            })
        });
        (entry, claimed)
    })
    .await;
    let (claimed, spans) = match claimed {
        Ok((_, Ok(Some((claimed, Ok(spans)))))) => (claimed, spans),
        Ok((_, Ok(None))) => return Step::Done,
        Ok((_, Ok(Some((claimed, Err(unreadable)))))) => {
            set_aside(shared, spool, &claimed.entry, &unreadable.to_string());
            return Step::Done;
        }
        Ok((entry, Err(error))) => {
            set_aside(shared, spool, &entry, &error.to_string());
            return Step::Done;
        }
        // The runtime is shutting down: leave the file for the next run.
        Err(_) => return Step::Later(IDLE_POLL),
    };
    if let Some(wait) = deliver(shared, &claimed, spans, failures).await {
        return Step::Later(wait);
    }
    let named = claimed.entry.spans;
    if claimed.entry.kind == Kind::Traces && named > spans {
        // The writer meant more than the body holds: the rest was lost here.
        tracing::warn!(
            named,
            spans,
            path = %claimed.entry.path.display(),
            "otelite-exporter: a spooled request held fewer spans than its name says"
        );
        shared
            .counters
            .record_failed(FailureKind::SpoolUnreadable, named - spans);
    }
    if let Err(error) = spool.remove(&claimed.entry) {
        tracing::warn!(%error, "otelite-exporter: cannot remove a spooled request");
    }
    Step::Done
}

/// Sends one claimed request of `spans` spans and counts the outcome;
/// `Some(wait)` when the endpoint is away and it should be tried again.
async fn deliver(
    shared: &Shared,
    claimed: &Claimed,
    spans: u64,
    failures: u32,
) -> Option<Duration> {
    let config = &shared.config;
    let entry = &claimed.entry;
    let url = match entry.kind {
        Kind::Traces => &config.traces_url,
        Kind::Metrics => &config.metrics_url,
    };
    let sent = tokio::time::timeout(
        config.timeout,
        attempt(
            &shared.client,
            url,
            &config.headers,
            entry.compression,
            claimed.body.clone().into(),
        ),
    )
    .await;
    let hint = match sent {
        Ok(Ok(answer)) if answer.status.is_success() => {
            if entry.kind == Kind::Traces {
                super::record_acknowledged(shared, spans, answer.body);
            }
            return None;
        }
        Ok(Ok(answer)) => match classify(answer.status.as_u16(), answer.retry_after.as_deref()) {
            RetryDecision::Retry { after } => after,
            RetryDecision::Fail => {
                refused(shared, entry, spans, &http_error(&answer));
                return None;
            }
        },
        // No answer (refused, reset, timed out): the endpoint is away.
        Ok(Err(ExportError::Transport(_))) | Err(_) => None,
        Ok(Err(error)) => {
            refused(shared, entry, spans, &error);
            return None;
        }
    };
    // The backoff grows to its 5 s cap; a longer `Retry-After` wins.
    Some(next_delay(hint, failures, Duration::MAX).unwrap_or(IDLE_POLL))
}

fn refused(shared: &Shared, entry: &Entry, spans: u64, error: &ExportError) {
    tracing::warn!(%error, path = %entry.path.display(), "otelite-exporter: spooled request refused");
    if entry.kind == Kind::Traces {
        shared.counters.record_failed(FailureKind::of(error), spans);
    }
}

/// Moves a request that cannot be read out of the queue and counts the
/// spans its name promised as lost in the spool.
fn set_aside(shared: &Shared, spool: &Spool, entry: &Entry, reason: &str) {
    let aside = spool.set_aside(entry);
    tracing::error!(
        reason,
        path = %entry.path.display(),
        set_aside_as = ?aside.as_ref().map(|p| p.display().to_string()),
        "otelite-exporter: a spooled request is unreadable; its spans are lost"
    );
    if entry.kind == Kind::Traces {
        shared
            .counters
            .record_failed(FailureKind::SpoolUnreadable, entry.spans);
    }
}
