//! `GET /api/otelite/traces/{id}`, `GET /api/otelite/search`, `GET /api/otelite/services`.

use super::ApiError;
use crate::store::{self, Store, TraceQuery, TraceSummary};
use axum::Json;
use axum::extract::{Path, Query, State};
use otelite_exporter::model::{Span, TraceId};
use serde::{Deserialize, Serialize};

/// Search results when no limit is given, and the most one may ask for.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceBody {
    trace_id: TraceId,
    spans: Vec<Span>,
}

pub async fn by_id(
    State(store): State<Store>,
    Path(trace_id): Path<String>,
) -> Result<Json<TraceBody>, ApiError> {
    let id = TraceId::from_hex(&trace_id).ok_or_else(|| {
        ApiError::BadParameter(format!("trace id {trace_id:?} is not 32 hex digits"))
    })?;
    match store.read(move |conn| store::trace(conn, &id)).await? {
        Some(spans) => Ok(Json(TraceBody {
            trace_id: id,
            spans,
        })),
        None => Err(ApiError::NotFound(format!("trace {trace_id} not found"))),
    }
}

#[derive(Deserialize)]
pub struct SearchParams {
    service: Option<String>,
    operation: Option<String>,
    /// `key=value`: spans with that attribute (numbers and booleans as in JSON).
    attribute: Option<String>,
    /// Unix nanoseconds.
    start: Option<u64>,
    end: Option<u64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct SearchBody {
    traces: Vec<TraceSummary>,
}

pub async fn search(
    State(store): State<Store>,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchBody>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadParameter(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let (Some(start), Some(end)) = (params.start, params.end)
        && start > end
    {
        return Err(ApiError::BadParameter("start must not be after end".into()));
    }
    let attributes = match params.attribute.filter(|a| !a.is_empty()) {
        None => Vec::new(),
        Some(pair) => match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => vec![(key.to_owned(), value.to_owned())],
            _ => {
                return Err(ApiError::BadParameter(format!(
                    "attribute {pair:?} must be key=value"
                )));
            }
        },
    };
    let query = TraceQuery {
        service: params.service.filter(|s| !s.is_empty()),
        operation: params.operation.filter(|s| !s.is_empty()),
        attributes,
        start_ns: params.start,
        end_ns: params.end,
        limit,
        ..TraceQuery::default()
    };
    let traces = store.read(move |conn| store::search(conn, &query)).await?;
    Ok(Json(SearchBody { traces }))
}

#[derive(Serialize)]
pub struct ServicesBody {
    services: Vec<String>,
}

pub async fn services(State(store): State<Store>) -> Result<Json<ServicesBody>, ApiError> {
    let services = store.read(store::services).await?;
    Ok(Json(ServicesBody { services }))
}
