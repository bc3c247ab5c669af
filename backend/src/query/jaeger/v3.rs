//! Jaeger's v3 API (`/api/v3/…`), what the Jaeger UI 2.x calls. Traces come
//! back as OTLP JSON inside `{"result": …}` (the gRPC gateway's wrapper for a
//! streamed answer); errors as `{"error": {"httpCode", "message"}}`.
//! Parameters take Jaeger's camelCase names and its older snake_case ones.

use super::params::{self, Params};
use super::v1::{apply_tags, kind_param};
use super::{Fault, path_trace_id};
use crate::query::budget::SpanCap;
use crate::storage::Storage;
use crate::storage::{PageRequest, TracePage, TraceQuery, TraceSummary};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use otelite_model::SpanKind;
use otelite_model::otlp;
use serde::Serialize;
use serde_json::json;

/// Traces searched when `query.searchDepth` is not given, and the most sent.
const DEFAULT_DEPTH: usize = 100;
const MAX_DEPTH: usize = 1500;

pub struct V3Error(Fault);

impl<E: Into<Fault>> From<E> for V3Error {
    fn from(error: E) -> Self {
        V3Error(error.into())
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = json!({ "error": { "httpCode": status.as_u16(), "message": self.0.message() } });
        (status, Json(body)).into_response()
    }
}

#[derive(Serialize)]
pub struct ServicesBody {
    services: Vec<String>,
}

pub async fn services(State(store): State<Storage>) -> Result<Json<ServicesBody>, V3Error> {
    let services = store.services().await?;
    Ok(Json(ServicesBody { services }))
}

#[derive(Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    name: String,
    span_kind: &'static str,
}

#[derive(Serialize)]
pub struct OperationsBody {
    operations: Vec<Operation>,
}

/// Unspecified kinds show as `internal`, as Jaeger's v3 gateway does.
pub async fn operations(
    State(store): State<Storage>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<OperationsBody>, V3Error> {
    let params = Params(pairs);
    let Some((_, service)) = params.get(&["service"])? else {
        return Err(Fault::BadParameter("parameter 'service' is required".into()).into());
    };
    let service = service.to_owned();
    let kind = kind_param(&params, &["spanKind", "span_kind"])?;
    let found = store.operations(service, kind).await?;
    let mut operations: Vec<Operation> = found
        .into_iter()
        .map(|(name, kind)| Operation {
            name,
            span_kind: match kind {
                SpanKind::Unspecified => "internal",
                other => params::kind_name(other),
            },
        })
        .collect();
    operations.dedup();
    Ok(Json(OperationsBody { operations }))
}

#[derive(Serialize)]
pub struct TracesBody {
    result: TracesData,
    /// Not Jaeger's: set when a trace was cut at `max_spans_per_answer`,
    /// saying how to get the rest (OTLP has no place for it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// The traces as OTLP, each trace its own `ResourceSpans` (Jaeger keeps
/// traces apart: equal resources of two traces are not merged into one).
fn otlp(pages: &[TracePage]) -> Json<TracesBody> {
    Json(TracesBody {
        result: TracesData {
            resource_spans: pages
                .iter()
                .flat_map(|page| otlp::to_otlp(&page.spans).resource_spans)
                .collect(),
        },
        warnings: pages.iter().filter_map(super::truncated).collect(),
    })
}

fn no_traces() -> V3Error {
    Fault::NotFound("No traces found".into()).into()
}

/// `/api/v3/traces/{id}`: a trace past `max_spans_per_answer` is answered
/// with its first spans and a `warnings` entry.
pub async fn trace(
    State(store): State<Storage>,
    Extension(cap): Extension<SpanCap>,
    Path(id): Path<String>,
) -> Result<Json<TracesBody>, V3Error> {
    let id = path_trace_id(&id, "trace_id")?;
    match store.trace_page(id, PageRequest::first(cap.0)).await? {
        Some(page) => Ok(otlp(&[page])),
        None => Err(no_traces()),
    }
}

/// Like Jaeger, an empty search answers 404 "No traces found". The traces
/// share the answer's span cap: once it is spent, later ones are left out
/// and a warning says how many.
pub async fn find_traces(
    State(store): State<Storage>,
    Extension(cap): Extension<SpanCap>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<TracesBody>, V3Error> {
    let query = trace_query(&Params(pairs))?;
    let traces = store.search_traces(query, cap.0).await?;
    if traces.found.is_empty() {
        return Err(no_traces());
    }
    let mut answer = otlp(&traces.found);
    if !traces.not_read.is_empty() {
        answer.0.warnings.push(format!(
            "{} more traces found but left out: the answer holds at most {} spans (max_spans_per_answer)",
            traces.not_read.len(),
            cap.0
        ));
    }
    Ok(answer)
}

#[derive(Serialize)]
pub struct SummariesBody {
    summaries: Vec<Summary>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    trace_id: String,
    root_service_name: String,
    root_operation_name: String,
    /// Decimal strings, as proto3 JSON writes 64-bit integers.
    min_start_time_unix_nano: String,
    max_end_time_unix_nano: String,
    span_count: u64,
    error_span_count: u64,
    orphan_span_count: u64,
    services: Vec<ServiceSummary>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSummary {
    name: String,
    span_count: u64,
    error_span_count: u64,
}

pub async fn trace_summaries(
    State(store): State<Storage>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<SummariesBody>, V3Error> {
    let query = trace_query(&Params(pairs))?;
    let found = store.search(query).await?;
    Ok(Json(SummariesBody {
        summaries: found.into_iter().map(summary).collect(),
    }))
}

fn summary(s: TraceSummary) -> Summary {
    Summary {
        trace_id: s.trace_id,
        root_service_name: s.root_service.unwrap_or_default(),
        root_operation_name: s.root_name.unwrap_or_default(),
        min_start_time_unix_nano: s.start_time_unix_nano.to_string(),
        max_end_time_unix_nano: s.end_time_unix_nano.to_string(),
        span_count: s.span_count,
        error_span_count: s.error_count,
        orphan_span_count: s.orphan_span_count,
        services: s
            .services
            .into_iter()
            .map(|c| ServiceSummary {
                name: c.name,
                span_count: c.span_count,
                error_span_count: c.error_count,
            })
            .collect(),
    }
}

/// The `query.*` parameters of `/api/v3/traces` and `/api/v3/trace-summaries`.
fn trace_query(params: &Params) -> Result<TraceQuery, Fault> {
    let text =
        |names: &[&'static str]| Ok::<_, Fault>(params.get(names)?.map(|(_, v)| v.to_owned()));
    let mut query = TraceQuery {
        service: text(&["query.serviceName", "query.service_name"])?,
        operation: text(&["query.operationName", "query.operation_name"])?,
        limit: DEFAULT_DEPTH,
        ..TraceQuery::default()
    };
    if let Some((name, json)) = params.get(&["query.attributes"])? {
        let tags = params::tag_object(json).map_err(|why| Fault::malformed(name, why))?;
        apply_tags(&mut query, tags)?;
    }
    let time = |names| {
        params
            .get(names)?
            .map(|(name, t)| {
                crate::text::parse_rfc3339(t).map_err(|why| Fault::malformed(name, why))
            })
            .transpose()
    };
    query.start_ns = time(&["query.startTimeMin", "query.start_time_min"])?;
    query.end_ns = time(&["query.startTimeMax", "query.start_time_max"])?;
    let duration = |names| {
        params
            .get(names)?
            .map(|(name, t)| {
                crate::text::parse_duration(t).map_err(|why| Fault::malformed(name, why))
            })
            .transpose()
    };
    query.min_duration_ns = duration(&["query.durationMin", "query.duration_min"])?;
    query.max_duration_ns = duration(&["query.durationMax", "query.duration_max"])?;
    let depth_names = [
        "query.searchDepth",
        "query.num_traces",
        "query.search_depth",
    ];
    if let Some((name, depth)) = params.get(&depth_names)? {
        let depth: usize = depth
            .parse()
            .map_err(|_| Fault::malformed(name, format!("{depth:?} is not a whole number")))?;
        query.limit = if depth == 0 {
            DEFAULT_DEPTH
        } else {
            depth.min(MAX_DEPTH)
        };
    }
    Ok(query)
}
