//! The query API on the query listener: a trace by id, a trace search, the
//! stage rates and the service list, as JSON; and the health and metrics
//! endpoints (`health`). otelite's own routes live
//! under `/api/otelite/` because `/api/traces` and `/api/services` are
//! Jaeger's, which `jaeger` answers in Jaeger's shapes. Errors go through `ApiError`,
//! which maps each cause to a status and keeps internals out of the answer.

mod browser;
pub(crate) mod budget;
mod health;
mod jaeger;
mod params;
mod rates;
mod traces;

pub use budget::QueryLimits;
pub use budget::defaults as budget_defaults;
pub use health::readiness;

use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::storage::StoreError;
use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// The query API plus `/healthz`, `/readyz` and `/metrics`, which read the
/// receiver's counters from `metrics`, with the default query limits.
pub fn router(store: impl Into<Storage>, metrics: Arc<Metrics>) -> Router {
    router_with(store, metrics, QueryLimits::default())
}

/// [`router`] with the query API held to `limits`.
pub fn router_with(
    store: impl Into<Storage>,
    metrics: Arc<Metrics>,
    limits: QueryLimits,
) -> Router {
    let store = store.into();
    let ops = health::OpsState {
        store: store.clone(),
        metrics,
        orphan_grace: limits.orphan_grace,
    };
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::prometheus))
        .with_state(ops)
        .merge(api(store, limits))
        .merge(crate::ui::router())
        .layer(axum::middleware::map_response(browser::protect))
}

fn api(store: Storage, limits: QueryLimits) -> Router {
    Router::new()
        .route("/api/otelite/traces/{trace_id}", get(traces::by_id))
        .route("/api/otelite/search", get(traces::search))
        .route("/api/otelite/services", get(traces::services))
        .route(
            "/api/otelite/services/{service}/operations",
            get(traces::operations),
        )
        .route("/api/otelite/dependencies", get(traces::dependencies))
        .route(
            "/api/rates",
            get(rates::rates).with_state(rates::RatesState {
                store: store.clone(),
                orphan_grace: limits.orphan_grace,
            }),
        )
        .route("/api/openapi.json", get(openapi))
        .with_state(store.clone())
        .merge(jaeger::router(store))
        .layer(axum::middleware::from_fn_with_state(
            budget::Budget::new(limits),
            budget::enforce,
        ))
}

/// The OpenAPI 3 document of the routes above; tests check each route
/// answers as it says.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadParameter(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Store(StoreError::QueryTimeout(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            ApiError::Store(timeout @ StoreError::QueryTimeout(_)) => timeout.to_string(),
            ApiError::Store(error) => {
                tracing::error!(%error, "query failed");
                "the query failed; see the server log".to_owned()
            }
            other => other.to_string(),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

#[cfg(test)]
mod tests;
