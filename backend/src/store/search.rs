//! Trace search: filters on spans (service, operation, kind, attributes,
//! status, duration) and on time, newest traces first, as summaries.

use super::{StoreError, encode};
use otelite_exporter::model::{SpanKind, StatusCode, TraceId};
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

/// A trace search; every filter is optional, and all given must hold on one
/// span of the trace.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub kind: Option<SpanKind>,
    /// Attributes `(key, value)` of the span or of its resource, values as
    /// `searchable_text` writes them.
    pub attributes: Vec<(String, String)>,
    pub error_only: bool,
    pub min_duration_ns: Option<u64>,
    pub max_duration_ns: Option<u64>,
    /// The time window, unix nanoseconds: with span filters a matching span
    /// must start in it; without, the trace must overlap it.
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    pub limit: usize,
    /// Continue after this point of an earlier page.
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCount {
    pub name: String,
    pub span_count: u64,
    pub error_count: u64,
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
    /// Spans whose parent is not (yet) stored.
    pub orphan_span_count: u64,
    pub services: Vec<ServiceCount>,
}

fn nanos(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Newest traces first, one page. With span filters the span indexes find
/// the traces that have a matching span in the time range; without, the
/// trace table's start time does.
pub fn search_page(conn: &Connection, query: &TraceQuery) -> Result<Page, StoreError> {
    let mut filters: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(service) = &query.service {
        filters.push("s.service_id = (SELECT id FROM services WHERE name = ?)");
        args.push(Value::Text(service.clone()));
    }
    if let Some(operation) = &query.operation {
        filters.push("s.name = ?");
        args.push(Value::Text(operation.clone()));
    }
    if let Some(kind) = query.kind {
        filters.push("s.kind = ?");
        args.push(Value::Integer(i64::from(kind.as_i32())));
    }
    // Each attribute may be the span's own or its resource's.
    for (key, value) in &query.attributes {
        let token = encode::attribute_token(key, value);
        filters.push(
            "(s.id IN (SELECT rowid FROM span_attributes WHERE span_attributes MATCH ?)
              OR s.resource_id IN (SELECT rowid FROM resource_attributes WHERE resource_attributes MATCH ?))",
        );
        args.push(Value::Text(token.clone()));
        args.push(Value::Text(token));
    }
    if let Some(min) = query.min_duration_ns {
        filters.push("s.duration_ns >= ?");
        args.push(Value::Integer(nanos(min)));
    }
    if let Some(max) = query.max_duration_ns {
        filters.push("s.duration_ns <= ?");
        args.push(Value::Integer(nanos(max)));
    }
    // Alone, "has errors" is a property of the trace; with span filters, of the span.
    let error_on_spans = query.error_only && !filters.is_empty();
    if error_on_spans {
        filters.push("s.status_code = ?");
        args.push(Value::Integer(i64::from(StatusCode::Error.as_i32())));
    }
    let start = query.start_ns.map_or(0, nanos);
    let end = query.end_ns.map_or(i64::MAX, nanos);
    // Traces are ordered by a sort key: the trace's start when only the
    // trace table is asked, else the latest matching span's start.
    let (mut from, sort_key) = if filters.is_empty() {
        let errors = if query.error_only {
            "AND t.error_count > 0"
        } else {
            ""
        };
        // Traces that overlap the window.
        (
            format!("FROM traces t WHERE t.end_ns >= ? AND t.start_ns <= ? {errors}"),
            "t.start_ns",
        )
    } else {
        let spans = format!(
            "SELECT s.trace_id, MAX(s.start_ns) AS latest FROM spans s
             WHERE {} AND s.start_ns BETWEEN ? AND ? GROUP BY s.trace_id",
            filters.join(" AND ")
        );
        (
            format!("FROM traces t JOIN ({spans}) m ON m.trace_id = t.trace_id WHERE 1"),
            "m.latest",
        )
    };
    args.extend([Value::Integer(start), Value::Integer(end)]);
    if let Some(cursor) = &query.cursor {
        from.push_str(&format!(" AND ({sort_key}, t.trace_id) < (?, ?)"));
        args.extend([
            Value::Integer(cursor.sort_ns),
            Value::Blob(cursor.trace_id.0.to_vec()),
        ]);
    }
    args.push(Value::Integer(query.limit as i64));
    let sql = format!(
        "SELECT t.trace_id, t.root_service, t.root_name, t.start_ns, t.end_ns, t.span_count, t.error_count, {sort_key}
         {from} ORDER BY {sort_key} DESC, t.trace_id DESC LIMIT ?"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(args), |row| {
        let trace_id: Vec<u8> = row.get(0)?;
        let (start, end): (i64, i64) = (row.get(3)?, row.get(4)?);
        Ok((
            trace_id,
            row.get::<_, i64>(7)?,
            TraceSummary {
                trace_id: String::new(),
                root_service: row.get(1)?,
                root_name: row.get(2)?,
                start_time_unix_nano: start.max(0) as u64,
                end_time_unix_nano: end.max(0) as u64,
                duration_nanos: end.saturating_sub(start).max(0) as u64,
                span_count: row.get::<_, i64>(5)?.max(0) as u64,
                error_count: row.get::<_, i64>(6)?.max(0) as u64,
                orphan_span_count: 0,
                services: Vec::new(),
            },
        ))
    })?;
    let found: Vec<(Vec<u8>, i64, TraceSummary)> = rows.collect::<Result<_, _>>()?;
    let next = match found.last() {
        Some((trace_id, sort_ns, _)) if found.len() == query.limit => TraceId::from_slice(trace_id)
            .map(|trace_id| Cursor {
                sort_ns: *sort_ns,
                trace_id,
            }),
        _ => None,
    };
    let traces = found
        .into_iter()
        .map(|(trace_id, _, mut summary)| {
            summary.trace_id = hex::encode(&trace_id);
            summary.services = services_of(conn, &trace_id)?;
            summary.orphan_span_count = orphans_of(conn, &trace_id)?;
            Ok(summary)
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Page { traces, next })
}

/// One page of search results, and where the next one starts when this
/// one is full.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub traces: Vec<TraceSummary>,
    pub next: Option<Cursor>,
}

/// Where a page of results continues: after this sort key and trace id.
/// Written as `{sort_ns}-{trace id hex}` in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub sort_ns: i64,
    pub trace_id: TraceId,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.sort_ns, self.trace_id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (sort_ns, trace_id) = text.split_once('-').ok_or(())?;
        Ok(Self {
            sort_ns: sort_ns.parse().map_err(|_| ())?,
            trace_id: TraceId::from_hex(trace_id).ok_or(())?,
        })
    }
}

/// The first page of a search, newest first.
pub fn search(conn: &Connection, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
    Ok(search_page(conn, query)?.traces)
}
fn services_of(conn: &Connection, trace_id: &[u8]) -> Result<Vec<ServiceCount>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT v.name, COUNT(*), SUM(s.status_code = 2) FROM spans s JOIN services v ON v.id = s.service_id
         WHERE s.trace_id = ?1 GROUP BY v.name ORDER BY v.name",
    )?;
    let rows = statement.query_map([trace_id], |r| {
        Ok(ServiceCount {
            name: r.get(0)?,
            span_count: r.get::<_, i64>(1)?.max(0) as u64,
            error_count: r.get::<_, i64>(2)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn orphans_of(conn: &Connection, trace_id: &[u8]) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM spans c WHERE c.trace_id = ?1 AND c.parent_span_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM spans p WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_span_id)",
        )?
        .query_row([trace_id], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}
