//! For orchestrators and Prometheus: `/healthz` (the process answers),
//! `/readyz` (spans sent now would be stored) and `/metrics`.

use crate::metrics::{self, Metrics, StoreGauges};
use crate::storage::Storage;
use crate::store::WriteHealth;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
pub struct OpsState {
    pub store: Storage,
    pub metrics: Arc<Metrics>,
}

pub async fn healthz() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
}

pub async fn readyz(State(state): State<OpsState>) -> Response {
    match readiness(&state.store.health()) {
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

pub async fn prometheus(State(state): State<OpsState>) -> Response {
    let counts = state
        .store
        .stage_counts(None, i64::MIN, i64::MAX)
        .await
        .inspect_err(|error| tracing::warn!(%error, "metrics: cannot read the stage counts"))
        .ok()
        .map(|rows| {
            rows.into_iter()
                .map(|r| (r.service, r.stage, r.n))
                .collect()
        });
    let db_bytes = state.store.size_on_disk().await.unwrap_or(0);
    let gauges = StoreGauges {
        health: state.store.health(),
        stage_counts: counts,
        db_bytes,
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
