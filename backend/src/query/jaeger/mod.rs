//! Jaeger's query API over the store, so Grafana's Jaeger data source (v1,
//! `/api/…`) and the Jaeger UI 2.x (v3, `/api/v3/…`) can read otelite.
//! `params` parses Jaeger's query formats, `shapes` turns model spans into
//! Jaeger's JSON; `v1` and `v3` are the handlers, each with Jaeger's own
//! error envelope.

mod params;
mod shapes;
mod transform;
mod v1;
mod v3;

use crate::storage::Storage;
use crate::storage::StoreError;
use axum::Router;
use axum::routing::get;
use http::StatusCode;

pub fn router(store: Storage) -> Router {
    Router::new()
        .route("/api/services", get(v1::services))
        .route(
            "/api/services/{service}/operations",
            get(v1::service_operations),
        )
        .route("/api/operations", get(v1::operations))
        .route("/api/traces", get(v1::find_traces))
        .route("/api/traces/{trace_id}", get(v1::trace))
        .route("/api/dependencies", get(v1::dependencies))
        .route(
            "/api/transform",
            axum::routing::post(transform::transform).layer(axum::extract::DefaultBodyLimit::max(
                transform::MAX_FILE_BYTES,
            )),
        )
        .route("/api/v3/services", get(v3::services))
        .route("/api/v3/operations", get(v3::operations))
        .route("/api/v3/trace-summaries", get(v3::trace_summaries))
        .route("/api/v3/traces", get(v3::find_traces))
        .route("/api/v3/traces/{trace_id}", get(v3::trace))
        .with_state(store)
}

/// Why a Jaeger request failed; `v1` and `v3` wrap it in their envelopes.
#[derive(Debug)]
pub enum Fault {
    BadParameter(String),
    NotFound(String),
    Store(StoreError),
}

impl From<params::Repeated> for Fault {
    fn from(repeated: params::Repeated) -> Self {
        Fault::BadParameter(repeated.to_string())
    }
}

impl Fault {
    /// A malformed parameter, named the way the client sent it.
    fn malformed(name: &str, why: String) -> Self {
        Fault::BadParameter(format!("malformed parameter {name}: {why}"))
    }

    fn status(&self) -> StatusCode {
        match self {
            Fault::BadParameter(_) => StatusCode::BAD_REQUEST,
            Fault::NotFound(_) => StatusCode::NOT_FOUND,
            Fault::Store(StoreError::QueryTimeout(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Fault::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message for the client; store failures stay in the log.
    fn message(self) -> String {
        match self {
            Fault::BadParameter(message) | Fault::NotFound(message) => message,
            Fault::Store(timeout @ StoreError::QueryTimeout(_)) => timeout.to_string(),
            Fault::Store(error) => {
                tracing::error!(%error, "jaeger query failed");
                "the query failed; see the server log".to_owned()
            }
        }
    }
}

impl From<StoreError> for Fault {
    fn from(error: StoreError) -> Self {
        Fault::Store(error)
    }
}

/// The warning on an answer that holds only the first spans of a trace,
/// saying how to get the rest; `None` for a whole trace.
fn truncated(page: &crate::storage::TracePage) -> Option<String> {
    let next = page.next?;
    let id = page.spans.first()?.trace_id;
    Some(format!(
        "truncated: the first {} of the trace's {} spans (max_spans_per_answer); \
         the rest page by page from /api/otelite/traces/{id}?cursor={next}, or with `otelite trace {id}`",
        page.spans.len(),
        page.span_count
    ))
}

/// A trace id of up to 32 hex digits (Jaeger drops leading zeros).
fn trace_id(text: &str, name: &str) -> Result<otelite_model::TraceId, Fault> {
    let padded = format!("{text:0>32}");
    otelite_model::TraceId::from_hex(&padded)
        .filter(|_| !text.is_empty() && text.len() <= 32)
        .ok_or_else(|| Fault::malformed(name, format!("{text:?} is not a hex trace id")))
}

/// The id in a trace-by-id path (`/api/traces/{id}`, `/api/v3/traces/{id}`):
/// hex first, as above, then base64 (standard or URL-safe, padded or not) of
/// 16 or 8 bytes, which is what protobuf's JSON makes of the bytes of an id,
/// as Jaeger accepts since its query service took base64 ids there.
fn path_trace_id(text: &str, name: &str) -> Result<otelite_model::TraceId, Fault> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let hex = trace_id(text, name);
    // 16 bytes are at most 24 base64 characters: a longer text is not one.
    if hex.is_ok() || text.len() > 24 {
        return hex;
    }
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .and_then(|bytes| {
            let mut id = [0u8; 16];
            match bytes.len() {
                16 => id.copy_from_slice(&bytes),
                8 => id[8..].copy_from_slice(&bytes),
                _ => return None,
            }
            Some(otelite_model::TraceId(id))
        })
        .ok_or_else(|| Fault::malformed(name, format!("{text:?} is not a hex or base64 trace id")))
}

#[cfg(test)]
mod tests;
