//! Sending what the spool holds, oldest first, on the exporter's runtime:
//! one request at a time, backing off (and honouring `Retry-After`) while
//! the endpoint is away, so that requests arrive in the order they were
//! made. A request the endpoint refuses for good is dropped and counted.

use super::Shared;
use super::attempt::attempt;
use super::retry::{RetryDecision, classify, http_error, next_delay};
use super::spool::{Entry, Kind};
use crate::counters::FailureKind;
use crate::error::ExportError;
use std::sync::Arc;
use std::time::Duration;

/// How long an idle drainer sleeps before looking at the spool again, in
/// case a wake-up was missed.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What one try at a spooled request came to.
enum Outcome {
    Delivered,
    /// Try again after this long.
    Later(Duration),
    /// It can never be delivered.
    Refused(ExportError),
}

/// Runs until aborted at shutdown; what is left stays on disk for the next run.
pub(crate) async fn drain(shared: Arc<Shared>) {
    let Some(spool) = shared.spool.as_ref() else {
        return;
    };
    let mut failures = 0u32;
    loop {
        let Some(entry) = spool.oldest() else {
            let _ = tokio::time::timeout(IDLE_POLL, shared.spool_wake.notified()).await;
            continue;
        };
        match deliver(&shared, &entry, failures).await {
            Outcome::Delivered => failures = 0,
            Outcome::Later(wait) => {
                failures = failures.saturating_add(1);
                tokio::time::sleep(wait).await;
                continue;
            }
            Outcome::Refused(error) => {
                tracing::warn!(%error, path = %entry.path.display(), "otelite-exporter: spooled request refused");
                if entry.kind == Kind::Traces {
                    shared
                        .counters
                        .record_failed(FailureKind::of(&error), entry.spans);
                }
            }
        }
        if let Err(error) = spool.remove(&entry) {
            tracing::warn!(%error, "otelite-exporter: cannot remove a spooled request");
        }
    }
}

async fn deliver(shared: &Shared, entry: &Entry, failures: u32) -> Outcome {
    let path = entry.path.clone();
    let body = match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => return Outcome::Refused(ExportError::Internal(error.to_string())),
        Err(error) => return Outcome::Refused(ExportError::Internal(error.to_string())),
    };
    let config = &shared.config;
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
            body.into(),
        ),
    )
    .await;
    let hint = match sent {
        Ok(Ok(answer)) if answer.status.is_success() => {
            if entry.kind == Kind::Traces {
                super::record_acknowledged(shared, entry.spans, answer.body);
            }
            return Outcome::Delivered;
        }
        Ok(Ok(answer)) => match classify(answer.status.as_u16(), answer.retry_after.as_deref()) {
            RetryDecision::Retry { after } => after,
            RetryDecision::Fail => return Outcome::Refused(http_error(&answer)),
        },
        // No answer (refused, reset, timed out): the endpoint is away.
        Ok(Err(ExportError::Transport(_))) | Err(_) => None,
        Ok(Err(error)) => return Outcome::Refused(error),
    };
    // The backoff grows to its 5 s cap; a longer `Retry-After` wins.
    Outcome::Later(next_delay(hint, failures, Duration::MAX).unwrap_or(IDLE_POLL))
}
