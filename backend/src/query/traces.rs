//! otelite's own trace routes: a trace by id, the search, the services and
//! their operations, and the dependencies between them.

use super::ApiError;
use super::params::{self, Params};
use crate::storage::Storage;

use super::budget::SpanCap;
use crate::storage::{PageRequest, SpanKey, TraceQuery, TraceSummary};
use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use otelite_model::{Span, SpanKind, TraceId};
use serde::Serialize;

/// Search results when no limit is given, and the most one may ask for.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceBody {
    trace_id: TraceId,
    /// The whole trace's earliest start.
    start_time_unix_nano: u64,
    /// From the whole trace's earliest start to its latest end, computed
    /// here: browsers read nanosecond timestamps into doubles, 256 ns apart
    /// at today's dates, so their own subtraction is off by that much.
    duration_nanos: u64,
    /// Spans in the whole trace; `spans` holds this page's.
    span_count: u64,
    spans: Vec<SpanBody>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A span as the model writes it, with its duration computed here too,
/// for the same reason as the trace's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpanBody {
    #[serde(flatten)]
    span: Span,
    duration_nanos: u64,
}

/// `GET /api/otelite/traces/{id}?limit=&cursor=`: one page of the trace,
/// at most `limit` spans (never more than `max_spans_per_answer`), by start
/// time then span id, after the span `cursor` names.
pub async fn by_id(
    State(store): State<Storage>,
    Extension(cap): Extension<SpanCap>,
    Path(trace_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<TraceBody>, ApiError> {
    let id = TraceId::from_hex(&trace_id).ok_or_else(|| {
        ApiError::BadParameter(format!("trace id {trace_id:?} is not 32 hex digits"))
    })?;
    let params = Params::parse(raw.as_deref(), &["limit", "cursor"])?;
    let limit: usize = params.get("limit")?.unwrap_or(cap.0);
    if limit == 0 {
        return Err(ApiError::BadParameter("limit must be at least 1".into()));
    }
    let after = params
        .get::<String>("cursor")?
        .map(|text| {
            text.parse::<SpanKey>().map_err(|()| {
                ApiError::BadParameter(format!("cursor {text:?} is not one this API returned"))
            })
        })
        .transpose()?;
    let request = PageRequest {
        after,
        limit: limit.min(cap.0),
    };
    match store.trace_page(id, request).await? {
        Some(page) => Ok(Json(TraceBody {
            trace_id: id,
            start_time_unix_nano: page.start_ns,
            duration_nanos: page.duration_ns(),
            span_count: page.span_count,
            next_cursor: page.next.map(|key| key.to_string()),
            spans: page
                .spans
                .into_iter()
                .map(|span| SpanBody {
                    duration_nanos: span.duration_nanos(),
                    span,
                })
                .collect(),
        })),
        None => Err(ApiError::NotFound(format!("trace {trace_id} not found"))),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody {
    traces: Vec<TraceSummary>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// `GET /api/otelite/search`: every parameter is optional, `attribute` and
/// `attributePrefix` may repeat (all must hold on one span, each on the span
/// or its resource).
pub async fn search(
    State(store): State<Storage>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchBody>, ApiError> {
    let query = search_query(raw.as_deref())?;
    let page = store.search_page(query).await?;
    Ok(Json(SearchBody {
        traces: page.traces,
        next_cursor: page.next.map(|cursor| cursor.to_string()),
    }))
}

/// The search parameters, each checked, into a store query.
fn search_query(raw: Option<&str>) -> Result<TraceQuery, ApiError> {
    const KNOWN: &[&str] = &[
        "service",
        "operation",
        "kind",
        "attribute",
        "attributePrefix",
        "error",
        "minDurationNanos",
        "maxDurationNanos",
        "start",
        "end",
        "limit",
        "cursor",
    ];
    let params = Params::parse(raw, KNOWN)?;
    let (start_ns, end_ns) = params::window(&params)?;
    let query = TraceQuery {
        service: params.get("service")?,
        operation: params.get("operation")?,
        kind: params
            .get::<String>("kind")?
            .as_deref()
            .map(kind)
            .transpose()?,
        attributes: params
            .all("attribute")
            .map(|pair| attribute("attribute", pair))
            .collect::<Result<_, _>>()?,
        attribute_prefixes: params
            .all("attributePrefix")
            .map(|pair| attribute("attributePrefix", pair))
            .collect::<Result<_, _>>()?,
        error_only: params.get("error")?.unwrap_or(false),
        status: None,
        min_duration_ns: params.get("minDurationNanos")?,
        max_duration_ns: params.get("maxDurationNanos")?,
        start_ns,
        end_ns,
        limit: params.get("limit")?.unwrap_or(DEFAULT_LIMIT),
        cursor: params
            .get::<String>("cursor")?
            .map(|text| {
                text.parse().map_err(|()| {
                    ApiError::BadParameter(format!("cursor {text:?} is not one this API returned"))
                })
            })
            .transpose()?,
    };
    if query.limit == 0 || query.limit > MAX_LIMIT {
        return Err(ApiError::BadParameter(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let (Some(min), Some(max)) = (query.min_duration_ns, query.max_duration_ns)
        && min > max
    {
        return Err(ApiError::BadParameter(
            "minDurationNanos must not exceed maxDurationNanos".into(),
        ));
    }
    Ok(query)
}

fn attribute(name: &str, pair: &str) -> Result<(String, String), ApiError> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(ApiError::BadParameter(format!(
            "{name} {pair:?} must be key=value"
        ))),
    }
}

fn kind(text: &str) -> Result<SpanKind, ApiError> {
    crate::text::parse_span_kind(text).map_err(|why| ApiError::BadParameter(format!("kind: {why}")))
}

#[derive(Serialize)]
pub struct DependenciesBody {
    dependencies: Vec<crate::storage::Dependency>,
}

/// `GET /api/otelite/dependencies`: calls between services in a window.
pub async fn dependencies(
    State(store): State<Storage>,
    RawQuery(raw): RawQuery,
) -> Result<Json<DependenciesBody>, ApiError> {
    let (start, end) = params::window(&Params::parse(raw.as_deref(), &["start", "end"])?)?;
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(i64::MAX as u64));
    let dependencies = store.dependencies(start, end).await?;
    Ok(Json(DependenciesBody { dependencies }))
}

#[derive(Serialize)]
pub struct ServicesBody {
    services: Vec<String>,
}

pub async fn services(State(store): State<Storage>) -> Result<Json<ServicesBody>, ApiError> {
    let services = store.services().await?;
    Ok(Json(ServicesBody { services }))
}

#[derive(Serialize)]
pub struct OperationsBody {
    service: String,
    operations: Vec<Operation>,
}

#[derive(Serialize)]
pub struct Operation {
    name: String,
    /// The kind's lowercase name (`unknown` for a number OTLP does not define).
    kind: &'static str,
}

/// `GET /api/otelite/services/{service}/operations?kind=`: the service's
/// span names with their kinds, sorted; 404 for a service that sent no
/// spans, so a typo is not mistaken for a quiet service.
pub async fn operations(
    State(store): State<Storage>,
    Path(service): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OperationsBody>, ApiError> {
    let params = Params::parse(raw.as_deref(), &["kind"])?;
    let span_kind = params
        .get::<String>("kind")?
        .as_deref()
        .map(kind)
        .transpose()?;
    let found = store.operations(service.clone(), span_kind).await?;
    let known = !found.is_empty() || store.services().await?.contains(&service);
    if !known {
        return Err(ApiError::NotFound(format!("service {service:?} not found")));
    }
    let operations = found
        .into_iter()
        .map(|(name, kind)| Operation {
            name,
            kind: crate::text::span_kind_name(kind),
        })
        .collect();
    Ok(Json(OperationsBody {
        service,
        operations,
    }))
}
