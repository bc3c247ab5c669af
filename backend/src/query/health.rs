//! For orchestrators and Prometheus: `/healthz` (the process answers),
//! `/readyz` (spans sent now would be stored) and `/metrics`.

use crate::metrics::{self, Metrics, StoreGauges};
use crate::storage::Storage;
use crate::storage::WriteHealth;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct OpsState {
    pub store: Storage,
    pub metrics: Arc<Metrics>,
    /// The upstream loss estimate's grace period (`orphan_grace`).
    pub orphan_grace: Duration,
}

pub async fn healthz() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
}

pub async fn readyz(State(state): State<OpsState>) -> Response {
    let ready = match readiness(&state.store.health()) {
        Ok(()) => state.store.ping().await.map_err(|error| {
            // The answer is unauthenticated: the cause goes to the log only.
            tracing::warn!(%error, "readiness: the store does not answer");
            "the store does not answer"
        }),
        not_ready => not_ready,
    };
    match ready {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": reason })),
        )
            .into_response(),
    }
}

/// Ready unless the writer is gone or failing, or either write queue is at
/// least 90 % full (the receiver refuses new writes at 100 %).
pub fn readiness(health: &WriteHealth) -> Result<(), &'static str> {
    let saturated = |queued: usize, capacity: usize| queued * 10 >= capacity * 9;
    if !health.writer_alive {
        Err("the writer thread has stopped")
    } else if health.last_write_failed {
        Err("the last write transaction failed")
    } else if saturated(health.queued_requests, health.request_capacity) {
        Err("the write queue is saturated")
    } else if saturated(health.queued_spans, health.span_capacity) {
        Err("the queued-span budget is saturated")
    } else {
        Ok(())
    }
}

/// Longest `/metrics` waits for the store reads (run together): a scrape of
/// a backend whose store hangs (ClickHouse down or frozen) still answers,
/// without them.
const STORE_READ_LIMIT: Duration = Duration::from_secs(2);

pub async fn prometheus(State(state): State<OpsState>) -> Response {
    // The reads run at once: a scrape of a hung store waits one limit, not
    // one per read (a Prometheus or a test polling it would fall behind).
    let (read, orphans, db_bytes) = tokio::join!(
        tokio::time::timeout(
            STORE_READ_LIMIT,
            state.store.stage_counts(None, i64::MIN, i64::MAX),
        ),
        tokio::time::timeout(
            STORE_READ_LIMIT,
            state
                .store
                .orphans(None, i64::MIN, i64::MAX, state.orphan_grace),
        ),
        tokio::time::timeout(STORE_READ_LIMIT, state.store.size_on_disk()),
    );
    let (counts, policy_drops) = match read {
        Ok(Ok(rows)) => {
            let (counts, drops) = metrics::split_stage_rows(rows);
            (Some(counts), Some(drops))
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: cannot read the stage counts");
            (None, None)
        }
        Err(_) => {
            tracing::warn!(limit = ?STORE_READ_LIMIT, "metrics: the stage counts took too long");
            (None, None)
        }
    };
    let orphans = match orphans {
        Ok(Ok(rows)) => Some(rows),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: cannot read the orphans");
            None
        }
        Err(_) => {
            tracing::warn!(limit = ?STORE_READ_LIMIT, "metrics: the orphans took too long");
            None
        }
    };
    let db_bytes = db_bytes.ok().and_then(Result::ok).unwrap_or(0);
    let gauges = StoreGauges {
        health: state.store.health(),
        stage_counts: counts,
        policy_drops,
        orphans,
        db_bytes,
        db_peak_bytes: state.store.size_peak(),
        retention: state.store.retention_totals(),
    };
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics::render(&state.metrics, &gauges),
    )
        .into_response()
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
