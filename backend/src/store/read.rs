//! Queries over the stored spans. Each function takes a read-only connection
//! and returns model values; spans come back through the same OTLP → model
//! conversion that ingest uses.

use super::{StoreError, encode};
use crate::stage::Stage;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use otelite_exporter::convert;
use otelite_exporter::model::{Span, TraceId};
use prost::Message;
use rusqlite::{Connection, params};
use serde::Serialize;
use std::collections::BTreeMap;

/// All stored spans of a trace, by start time; `None` when there are none.
pub fn trace(conn: &Connection, trace_id: &TraceId) -> Result<Option<Vec<Span>>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT resource_id, scope_id, body FROM spans WHERE trace_id = ?1 ORDER BY start_ns, id",
    )?;
    // (resource, scope) → encoded spans, in first-seen order of the groups.
    let mut groups: BTreeMap<(i64, i64), Vec<PbSpan>> = BTreeMap::new();
    let mut rows = statement.query([&trace_id.0[..]])?;
    while let Some(row) = rows.next()? {
        let body: Vec<u8> = row.get(2)?;
        let span = PbSpan::decode(&body[..]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        groups
            .entry((row.get(0)?, row.get(1)?))
            .or_default()
            .push(span);
    }
    if groups.is_empty() {
        return Ok(None);
    }
    let mut request = ExportTraceServiceRequest::default();
    for ((resource_id, scope_id), spans) in groups {
        let mut resource_spans = encode::decode_resource(&body_of(conn, "resources", resource_id)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut scope_spans = encode::decode_scope(&body_of(conn, "scopes", scope_id)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        scope_spans.spans = spans;
        resource_spans.scope_spans.push(scope_spans);
        request.resource_spans.push(resource_spans);
    }
    let converted = convert::from_otlp(request);
    if let Some(invalid) = converted.rejected.first() {
        return Err(StoreError::Corrupt(invalid.to_string()));
    }
    let mut spans = converted.spans;
    spans.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    Ok(Some(spans))
}

fn body_of(conn: &Connection, table: &str, id: i64) -> Result<Vec<u8>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT body FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| r.get(0))?)
}

/// A trace search; every field is optional but the limit.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    /// A span attribute `(key, value)`, the value as `searchable_text` writes it.
    pub attribute: Option<(String, String)>,
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceSummary {
    pub trace_id: String,
    pub root_service: Option<String>,
    pub root_name: Option<String>,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub duration_nanos: u64,
    pub span_count: u64,
    pub error_count: u64,
}

/// Newest traces first. With span-level filters (service, operation,
/// attribute) the span indexes find the traces that have such spans in the
/// time range; without, the trace table's start time does.
pub fn search(conn: &Connection, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
    let start = query.start_ns.map_or(0, |t| t.min(i64::MAX as u64) as i64);
    let end = query
        .end_ns
        .map_or(i64::MAX, |t| t.min(i64::MAX as u64) as i64);
    let limit = query.limit as i64;
    let token = query
        .attribute
        .as_ref()
        .map(|(key, value)| encode::attribute_token(key, value));
    const SUMMARY: &str = "SELECT t.trace_id, t.root_service, t.root_name, t.start_ns, t.end_ns, t.span_count, t.error_count FROM traces t";
    let mut span_filters = Vec::new();
    if query.service.is_some() {
        span_filters.push("s.service_id = (SELECT id FROM services WHERE name = ?1)");
    }
    if query.operation.is_some() {
        span_filters.push("s.name = ?2");
    }
    if token.is_some() {
        span_filters
            .push("s.id IN (SELECT rowid FROM span_attributes WHERE span_attributes MATCH ?5)");
    }
    // Parameters: ?1 service, ?2 operation, ?3 start, ?4 end, ?5 attribute
    // token, ?6 limit; the unused ones are simply not referenced.
    let sql = if span_filters.is_empty() {
        format!("{SUMMARY} WHERE t.start_ns BETWEEN ?3 AND ?4 ORDER BY t.start_ns DESC LIMIT ?6")
    } else {
        format!(
            "{SUMMARY} JOIN (SELECT s.trace_id, MAX(s.start_ns) AS latest FROM spans s
                 WHERE {} AND s.start_ns BETWEEN ?3 AND ?4 GROUP BY s.trace_id) m ON m.trace_id = t.trace_id
             ORDER BY m.latest DESC LIMIT ?6",
            span_filters.join(" AND ")
        )
    };
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(
        params![query.service, query.operation, start, end, token, limit],
        |row| {
            let trace_id: Vec<u8> = row.get(0)?;
            let start: i64 = row.get(3)?;
            let end: i64 = row.get(4)?;
            Ok(TraceSummary {
                trace_id: hex::encode(trace_id),
                root_service: row.get(1)?,
                root_name: row.get(2)?,
                start_time_unix_nano: start as u64,
                end_time_unix_nano: end as u64,
                duration_nanos: end.saturating_sub(start).max(0) as u64,
                span_count: row.get::<_, i64>(5)? as u64,
                error_count: row.get::<_, i64>(6)? as u64,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One stage's count for one service over a time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRow {
    pub service: String,
    pub stage: Stage,
    pub n: u64,
}

/// Stage counts summed over the minutes in `[start_minute, end_minute]`.
pub fn stage_counts(
    conn: &Connection,
    service: Option<&str>,
    start_minute: i64,
    end_minute: i64,
) -> Result<Vec<RateRow>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT v.name, c.stage, SUM(c.n) FROM stage_counts c JOIN services v ON v.id = c.service_id
         WHERE (?1 IS NULL OR v.name = ?1) AND c.minute BETWEEN ?2 AND ?3
         GROUP BY v.name, c.stage ORDER BY v.name",
    )?;
    let rows = statement.query_map(params![service, start_minute, end_minute], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (service, stage, n) = row?;
        let stage = Stage::parse(&stage)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown stage {stage}")))?;
        out.push(RateRow {
            service,
            stage,
            n: n.max(0) as u64,
        });
    }
    Ok(out)
}

/// Names of the services that sent spans, sorted.
pub fn services(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT DISTINCT v.name FROM resources r JOIN services v ON v.id = r.service_id ORDER BY v.name")?;
    let rows = statement.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
