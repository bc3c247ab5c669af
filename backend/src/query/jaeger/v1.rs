//! Jaeger's v1 API (`/api/services`, `/api/traces`, …), what Grafana's
//! Jaeger data source calls. Every answer is the envelope
//! `{"data", "total", "limit", "offset", "errors"}`.

use super::params::{self, Params};
use super::shapes::{self, Trace};
use super::{Fault, path_trace_id, trace_id};
use crate::query::budget::SpanCap;
use crate::storage::Storage;
use crate::storage::{PageRequest, TracePage, TraceQuery};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use otelite_model::SpanKind;
use serde::Serialize;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// Jaeger's default number of traces; more than `MAX_LIMIT` are not sent
/// (the Jaeger UI offers up to its `search.maxLimit`, 1500 by default).
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1500;
/// `/api/dependencies` looks back a day unless told otherwise, as Jaeger does.
const DEFAULT_LOOKBACK_MS: u64 = 24 * 3600 * 1000;

#[derive(Serialize)]
pub struct Envelope<T> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<Missing>>,
}

/// An id of `/api/traces?traceID=` that names no stored trace, listed as
/// Jaeger lists it (the UI's compare page waits for every id otherwise).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    msg: String,
    #[serde(rename = "traceID")]
    trace_id: String,
}

pub(super) fn envelope<T>(data: Vec<T>) -> Json<Envelope<Vec<T>>> {
    Json(Envelope {
        total: data.len(),
        data,
        limit: 0,
        offset: 0,
        errors: None,
    })
}

/// A fault in the v1 envelope: `data` null, `errors` `[{"code", "msg"}]`.
pub struct V1Error(Fault);

impl<E: Into<Fault>> From<E> for V1Error {
    fn from(error: E) -> Self {
        V1Error(error.into())
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{ "code": status.as_u16(), "msg": self.0.message() }],
        });
        (status, Json(body)).into_response()
    }
}

pub(super) type Answer<T> = Result<Json<Envelope<Vec<T>>>, V1Error>;

pub async fn services(State(store): State<Storage>) -> Answer<String> {
    Ok(envelope(store.services().await?))
}

pub async fn service_operations(
    State(store): State<Storage>,
    Path(service): Path<String>,
) -> Answer<String> {
    let mut names: Vec<String> = store
        .operations(service, None)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.dedup();
    Ok(envelope(names))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    pub span_kind: &'static str,
}

pub async fn operations(
    State(store): State<Storage>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Answer<Operation> {
    let params = Params(pairs);
    let Some((_, service)) = params.get(&["service"])? else {
        return Err(Fault::BadParameter("parameter 'service' is required".into()).into());
    };
    let service = service.to_owned();
    let kind = kind_param(&params, &["spanKind"])?;
    let operations = store.operations(service, kind).await?;
    Ok(envelope(
        operations
            .into_iter()
            .map(|(name, kind)| Operation {
                name,
                span_kind: params::kind_name(kind),
            })
            .collect(),
    ))
}

pub fn kind_param(params: &Params, names: &[&'static str]) -> Result<Option<SpanKind>, Fault> {
    match params.get(names)? {
        None => Ok(None),
        Some((name, text)) => params::span_kind(text).map_err(|why| Fault::malformed(name, why)),
    }
}

/// `/api/traces/{id}`: the Jaeger UI cannot page, so a trace past
/// `max_spans_per_answer` is answered with its first spans and a warning
/// saying where the rest are.
pub async fn trace(
    State(store): State<Storage>,
    Extension(cap): Extension<SpanCap>,
    Path(id): Path<String>,
) -> Answer<Trace> {
    let id = path_trace_id(&id, "traceID")?;
    match store.trace_page(id, PageRequest::first(cap.0)).await? {
        Some(page) => Ok(envelope(vec![jaeger_trace(&page)])),
        None => Err(Fault::NotFound("trace not found".into()).into()),
    }
}

/// A page in Jaeger's shape, warned when it is not the whole trace.
fn jaeger_trace(page: &TracePage) -> Trace {
    let mut trace = shapes::trace(&page.spans);
    if let Some(warning) = super::truncated(page) {
        // On the trace, and on its first span, where the Jaeger UI shows it.
        if let Some(first) = trace.spans.first_mut() {
            first.warnings = Some(vec![warning.clone()]);
        }
        trace.warnings = Some(vec![warning]);
    }
    trace
}

pub async fn find_traces(
    State(store): State<Storage>,
    Extension(cap): Extension<SpanCap>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Answer<Trace> {
    let params = Params(pairs);
    let mut ids = params
        .all("traceID")
        .map(|id| trace_id(id, "traceID"))
        .collect::<Result<Vec<_>, _>>()?;
    // An id asked for twice is loaded and sent once.
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
    let traces = if ids.is_empty() {
        store.search_traces(trace_query(&params)?, cap.0).await?
    } else {
        store.traces(ids, cap.0).await?
    };
    let mut errors: Vec<Missing> = traces
        .missing
        .iter()
        .map(|id| Missing {
            msg: "trace not found".into(),
            trace_id: id.to_string(),
        })
        .collect();
    // Past the answer's span cap, the traces not read are named, as the
    // missing ones are, so the UI does not wait for them.
    errors.extend(traces.not_read.iter().map(|id| Missing {
        msg: format!(
            "not read: the answer holds at most {} spans (max_spans_per_answer); ask for this trace alone",
            cap.0
        ),
        trace_id: id.to_string(),
    }));
    let mut answer = envelope(traces.found.iter().map(jaeger_trace).collect());
    answer.errors = (!errors.is_empty()).then_some(errors);
    Ok(answer)
}

/// `/api/traces` parameters as a store search.
fn trace_query(params: &Params) -> Result<TraceQuery, Fault> {
    let mut query = TraceQuery {
        service: params.get(&["service"])?.map(|(_, s)| s.to_owned()),
        operation: params.get(&["operation"])?.map(|(_, s)| s.to_owned()),
        limit: DEFAULT_LIMIT,
        ..TraceQuery::default()
    };
    let mut tags = Vec::new();
    for text in params.all("tag") {
        tags.push(params::tag_pair(text).map_err(|why| Fault::malformed("tag", why))?);
    }
    for text in params.all("tags") {
        tags.extend(params::tag_object(text).map_err(|why| Fault::malformed("tags", why))?);
    }
    apply_tags(&mut query, tags)?;
    query.min_duration_ns = duration(params, "minDuration")?;
    query.max_duration_ns = duration(params, "maxDuration")?;
    if let (Some(min), Some(max)) = (query.min_duration_ns, query.max_duration_ns)
        && min > max
    {
        return Err(Fault::BadParameter(
            "'maxDuration' should be greater than 'minDuration'".into(),
        ));
    }
    query.start_ns = micros(params, "start")?.map(|us| us.saturating_mul(1000));
    query.end_ns = micros(params, "end")?.map(|us| us.saturating_mul(1000));
    if let (Some(start), Some(end)) = (query.start_ns, query.end_ns)
        && start > end
    {
        return Err(Fault::BadParameter(
            "'start' must not be after 'end'".into(),
        ));
    }
    if let Some((name, text)) = params.get(&["limit"])? {
        let limit: usize = text
            .parse()
            .map_err(|_| Fault::malformed(name, format!("{text:?} is not a whole number")))?;
        query.limit = if limit == 0 {
            DEFAULT_LIMIT
        } else {
            limit.min(MAX_LIMIT)
        };
    }
    Ok(query)
}

/// Tag filters into the search; the tags Jaeger's translator makes out of
/// the span's kind and status (`span.kind`, `error`, `otel.status_code`)
/// filter on those instead of on attributes.
pub fn apply_tags(query: &mut TraceQuery, tags: Vec<(String, String)>) -> Result<(), Fault> {
    for (key, value) in tags {
        match (key.as_str(), value.as_str()) {
            ("error", "true") | ("otel.status_code", "ERROR") => query.error_only = true,
            ("otel.status_code", "OK") => query.status = Some(otelite_model::StatusCode::Ok),
            ("otel.status_code", "UNSET") => query.status = Some(otelite_model::StatusCode::Unset),
            // Shown as tags by the UI, but not kept where a search can find them.
            (
                "otel.status_description"
                | "otel.scope.name"
                | "otel.scope.version"
                | "w3c.tracestate",
                _,
            ) => {
                return Err(Fault::BadParameter(format!(
                    "the tag {key} is shown with each span but cannot be searched; \
                     search by otel.status_code, error, span.kind or the span's attributes"
                )));
            }
            ("span.kind", kind) => {
                query.kind =
                    params::span_kind(kind).map_err(|why| Fault::malformed("span.kind", why))?;
            }
            _ => query.attributes.push((key, value)),
        }
    }
    Ok(())
}

fn duration(params: &Params, name: &'static str) -> Result<Option<u64>, Fault> {
    params
        .get(&[name])?
        .map(|(name, text)| {
            crate::text::parse_duration(text).map_err(|why| Fault::malformed(name, why))
        })
        .transpose()
}

fn micros(params: &Params, name: &'static str) -> Result<Option<u64>, Fault> {
    params
        .get(&[name])?
        .map(|(name, text)| {
            text.parse::<u64>()
                .map_err(|_| Fault::malformed(name, format!("{text:?} is not unix microseconds")))
        })
        .transpose()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

/// `endTs` (default now) and `lookback` (default a day), both milliseconds.
pub async fn dependencies(
    State(store): State<Storage>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Answer<DependencyLink> {
    let params = Params(pairs);
    let millis = |name: &'static str| -> Result<Option<u64>, Fault> {
        params
            .get(&[name])?
            .map(|(name, text)| {
                text.parse::<u64>().map_err(|_| {
                    Fault::malformed(name, format!("{text:?} is not a number of milliseconds"))
                })
            })
            .transpose()
    };
    let end_ms = match millis("endTs")? {
        Some(ms) => ms,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let lookback_ms = millis("lookback")?.unwrap_or(DEFAULT_LOOKBACK_MS);
    let end_ns = end_ms.saturating_mul(1_000_000);
    let start_ns = end_ms.saturating_sub(lookback_ms).saturating_mul(1_000_000);
    let links = store.dependencies(start_ns, end_ns).await?;
    Ok(envelope(
        links
            .into_iter()
            .map(|d| DependencyLink {
                parent: d.parent,
                child: d.child,
                call_count: d.call_count,
            })
            .collect(),
    ))
}
