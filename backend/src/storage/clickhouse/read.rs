//! Reads: a trace by id (from the trace-ordered copy, decoded back through
//! the one OTLP → model conversion), services and operations (from their
//! summary table), the service graph and the stage counts.

use super::http::{ClickHouseError, Client, hex_literal, quote};
use super::rowbinary::Reader;
use crate::stage::Stage;
use crate::storage::{Dependency, PageRequest, RateRow, SpanKey, TracePage};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PbSpan};
use otelite_model::otlp;
use otelite_model::{Span, SpanKind, TraceId};
use prost::Message;
use std::collections::{HashMap, HashSet};

fn corrupt(what: &str, error: impl std::fmt::Display) -> ClickHouseError {
    ClickHouseError::Decode(format!("a stored {what} does not decode: {error}"))
}

/// One page of a trace's stored spans (see `storage::trace_page`); `None`
/// when there are none. ClickHouse sorts and cuts the page (the table is
/// ordered by trace and start). A first page that holds the whole trace
/// is its own totals; otherwise a second query counts the whole trace
/// (each query is a round trip, most of a small trace's time).
pub async fn trace_page(
    client: &Client,
    trace_id: &TraceId,
    request: PageRequest,
) -> Result<Option<TracePage>, ClickHouseError> {
    let trace = hex_literal(&trace_id.0);
    let after = match request.after {
        Some(key) => format!(
            " AND (start_ns > {start} OR (start_ns = {start} AND span_id > {id}))",
            start = key.start_ns,
            id = hex_literal(&key.span_id.0)
        ),
        None => String::new(),
    };
    let limit = request.limit.max(1);
    // One row more than the page tells whether another page follows; a
    // span stored twice (two receivers' copies of a batch) is one row.
    // PREWHERE: the trace id column is read first, the others only in the
    // granules that hold the trace. A trace sits in one or two of a day's
    // 10-20 parts, and the primary key alone picks a granule in each (2 MB
    // read per trace at 10 M spans, 76 KB this way; 6-10 ms → 2-5 ms).
    let data = client
        .query(&format!(
            "SELECT span_id, resource, scope, body FROM spans_by_trace \
             PREWHERE trace_id = {trace} WHERE 1{after} \
             ORDER BY start_ns, span_id LIMIT 1 BY span_id LIMIT {}",
            limit.saturating_add(1)
        ))
        .await?;
    let (spans, more) = decode_spans(&data, limit)?;
    if request.after.is_none() && !more {
        return Ok(whole_page(spans));
    }
    let next = more.then(|| spans.last().map(SpanKey::of)).flatten();
    let Some((span_count, start_ns, end_ns)) = totals(client, &trace).await? else {
        return Ok(None);
    };
    Ok(Some(TracePage {
        spans,
        span_count,
        start_ns,
        end_ns,
        next,
    }))
}

/// A trace read whole in one page, its totals taken from its spans;
/// `None` when it has none.
fn whole_page(spans: Vec<Span>) -> Option<TracePage> {
    let start_ns = spans.iter().map(|s| s.start_time_unix_nano).min()?;
    let end_ns = spans
        .iter()
        .map(|s| s.end_time_unix_nano.max(s.start_time_unix_nano))
        .max()?;
    Some(TracePage {
        span_count: spans.len() as u64,
        spans,
        start_ns,
        end_ns,
        next: None,
    })
}

/// Span count, start and end of the trace, `None` when it has no spans.
async fn totals(client: &Client, trace: &str) -> Result<Option<(u64, u64, u64)>, ClickHouseError> {
    let data = client
        .query(&format!(
            "SELECT uniqExact(span_id), min(start_ns), max(greatest(end_ns, start_ns)) \
             FROM spans_by_trace PREWHERE trace_id = {trace}"
        ))
        .await?;
    let mut reader = Reader::new(&data);
    let (span_count, start_ns, end_ns) = (reader.u64()?, reader.u64()?, reader.u64()?);
    Ok((span_count > 0).then_some((span_count, start_ns, end_ns)))
}

/// The first pages of several traces, at most `limit` spans each, in the
/// order asked, from one query: ClickHouse cuts each trace at `limit + 1`
/// rows. A trace cut there may hold more (or copies of one span took
/// rows): it is read alone, as `trace_page` reads it.
pub async fn first_pages(
    client: &Client,
    ids: &[TraceId],
    limit: usize,
) -> Result<Vec<Option<TracePage>>, ClickHouseError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(|id| hex_literal(&id.0)).collect();
    let rows_per_trace = limit.max(1).saturating_add(1);
    let data = client
        .query(&format!(
            "SELECT trace_id, span_id, resource, scope, body FROM spans_by_trace \
             PREWHERE trace_id IN ({}) ORDER BY trace_id, start_ns, span_id \
             LIMIT {rows_per_trace} BY trace_id",
            list.join(",")
        ))
        .await?;
    let mut reader = Reader::new(&data);
    let mut by_trace: HashMap<[u8; 16], Vec<Row>> = HashMap::new();
    while !reader.is_empty() {
        let trace_id = reader.fixed::<16>()?;
        by_trace
            .entry(trace_id)
            .or_default()
            .push(Row::read(&mut reader)?);
    }
    let mut pages = Vec::with_capacity(ids.len());
    for id in ids {
        let page = match by_trace.remove(&id.0) {
            None => None,
            Some(rows) if rows.len() >= rows_per_trace => {
                trace_page(client, id, PageRequest::first(limit)).await?
            }
            // Every row of the trace: the page is the whole trace.
            Some(rows) => whole_page(decode_rows(rows, limit)?.0),
        };
        pages.push(page);
    }
    Ok(pages)
}

/// One stored span's row: its id and encoded resource, scope and body.
struct Row<'a> {
    span_id: [u8; 8],
    resource: &'a [u8],
    scope: &'a [u8],
    body: &'a [u8],
}

impl<'a> Row<'a> {
    fn read(reader: &mut Reader<'a>) -> Result<Self, ClickHouseError> {
        Ok(Row {
            span_id: reader.fixed()?,
            resource: reader.bytes()?,
            scope: reader.bytes()?,
            body: reader.bytes()?,
        })
    }
}

/// Rows of `span_id, resource, scope, body` into model spans in trace
/// order, at most `limit` of them, and whether rows were left over.
fn decode_spans(data: &[u8], limit: usize) -> Result<(Vec<Span>, bool), ClickHouseError> {
    let mut reader = Reader::new(data);
    let mut rows = Vec::new();
    while !reader.is_empty() {
        rows.push(Row::read(&mut reader)?);
    }
    decode_rows(rows, limit)
}

/// Rows into model spans in trace order, at most `limit` of them, and
/// whether rows were left over.
fn decode_rows(rows: Vec<Row>, limit: usize) -> Result<(Vec<Span>, bool), ClickHouseError> {
    let mut request = ExportTraceServiceRequest::default();
    let mut seen: HashSet<[u8; 8]> = HashSet::new();
    // Consecutive spans of one resource and scope share a group.
    let mut last: Option<(&[u8], &[u8])> = None;
    for Row {
        span_id,
        resource,
        scope,
        body,
    } in rows
    {
        if !seen.insert(span_id) {
            continue; // stored twice by a race between two receivers
        }
        if seen.len() > limit {
            return convert(request).map(|spans| (spans, true));
        }
        let span = PbSpan::decode(body).map_err(|e| corrupt("span", e))?;
        if last != Some((resource, scope)) {
            let mut group = ResourceSpans::decode(resource).map_err(|e| corrupt("resource", e))?;
            group
                .scope_spans
                .push(ScopeSpans::decode(scope).map_err(|e| corrupt("scope", e))?);
            request.resource_spans.push(group);
            last = Some((resource, scope));
        }
        if let Some(scope_spans) = request
            .resource_spans
            .last_mut()
            .and_then(|r| r.scope_spans.last_mut())
        {
            scope_spans.spans.push(span);
        }
    }
    convert(request).map(|spans| (spans, false))
}

/// The spans of `request`, by start time then span id.
fn convert(request: ExportTraceServiceRequest) -> Result<Vec<Span>, ClickHouseError> {
    let converted = otlp::from_otlp(request);
    if let Some(invalid) = converted.rejected.first() {
        return Err(corrupt("span", invalid));
    }
    let mut spans = converted.spans;
    spans.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    Ok(spans)
}

/// Names of the services that sent spans, sorted.
pub async fn services(client: &Client) -> Result<Vec<String>, ClickHouseError> {
    let data = client
        .query("SELECT DISTINCT service FROM operations ORDER BY service")
        .await?;
    Reader::new(&data).strings_to_end()
}

/// Operation names of a service with their span kinds, sorted.
pub async fn operations(
    client: &Client,
    service: &str,
    kind: Option<SpanKind>,
) -> Result<Vec<(String, SpanKind)>, ClickHouseError> {
    let kind = kind.map_or(String::new(), |k| format!("AND kind = {}", k.as_i32()));
    let data = client
        .query(&format!(
            "SELECT DISTINCT name, kind FROM operations WHERE service = {} {kind} ORDER BY name, kind",
            quote(service)
        ))
        .await?;
    let mut reader = Reader::new(&data);
    let mut out = Vec::new();
    while !reader.is_empty() {
        out.push((
            reader.string()?,
            SpanKind::from_i32(i32::from(reader.u8()?)),
        ));
    }
    Ok(out)
}

/// The service graph between `start_ns` and `end_ns`, by the calls' minute.
pub async fn dependencies(
    client: &Client,
    start_ns: u64,
    end_ns: u64,
) -> Result<Vec<Dependency>, ClickHouseError> {
    super::edges::read(client, start_ns, end_ns).await
}

/// Stage counts summed over the minutes in `[start_minute, end_minute]`.
pub async fn stage_counts(
    client: &Client,
    service: Option<&str>,
    start_minute: i64,
    end_minute: i64,
) -> Result<Vec<RateRow>, ClickHouseError> {
    let service = service.map_or(String::new(), |s| format!("service = {} AND", quote(s)));
    // Passed rows carry an empty reason: no loss has one (the writers
    // never record an empty reason). A span stored more than once (see
    // `copies`) gives back its extra copies once, at the latest minute
    // recorded for it (one writer's or another's: the same minute unless
    // the copies arrived across a minute's edge). Live spans are taken as
    // they come: a window can hold more taken than added, which reads as
    // none (as on SQLite).
    let data = client
        .query(&format!(
            "SELECT service, stage, '' AS reason, toUInt64(greatest(sum(n), 0)) AS n FROM ( \
               SELECT service, stage, toInt64(n) AS n FROM stage_counts \
               WHERE {service} minute BETWEEN {start_minute} AND {end_minute} \
               UNION ALL \
               SELECT service, stage, -toInt64(n) AS n FROM stage_counts_taken \
               WHERE {service} minute BETWEEN {start_minute} AND {end_minute} \
               UNION ALL \
               SELECT service, stage, -toInt64(extra) AS n FROM ( \
                 SELECT service, max(copies) - 1 AS extra FROM span_copies \
                 WHERE {service} minute >= {start_minute} \
                 GROUP BY trace_id, span_id, service \
                 HAVING max(minute) <= {end_minute}) \
               ARRAY JOIN ['process', 'analyze', 'store'] AS stage) \
             GROUP BY service, stage \
             UNION ALL \
             SELECT service, stage, reason, sum(n) AS n FROM stage_losses \
             WHERE {service} minute BETWEEN {start_minute} AND {end_minute} \
             GROUP BY service, stage, reason"
        ))
        .await?;
    let mut reader = Reader::new(&data);
    let mut out = Vec::new();
    while !reader.is_empty() {
        let service = reader.string()?;
        let stage = reader.string()?;
        let stage = Stage::parse(&stage)
            .ok_or_else(|| ClickHouseError::Decode(format!("unknown stage {stage}")))?;
        let reason = reader.string()?;
        out.push(RateRow {
            service,
            stage,
            reason: (!reason.is_empty()).then_some(reason),
            n: reader.u64()?,
        });
    }
    // The same order as SQLite's answer (UNION ALL has none).
    out.sort_by(|a, b| (&a.service, a.stage, &a.reason).cmp(&(&b.service, b.stage, &b.reason)));
    Ok(out)
}

/// Bytes the database's active parts take on disk (on a cluster: this
/// server's shard).
pub async fn size_on_disk(client: &Client) -> Result<u64, ClickHouseError> {
    let database = match client.cluster() {
        Some(_) => format!("{}_shard", client.database()),
        None => client.database().to_owned(),
    };
    let data = client
        .query(&format!(
            "SELECT toUInt64(sum(bytes)) FROM system.parts WHERE active AND database = {}",
            quote(&database)
        ))
        .await?;
    Reader::new(&data).u64()
}
