//! Trace search: filters on spans (service, operation, kind, attributes,
//! status, duration) and on time, newest traces first, as summaries.

use super::{StoreError, encode};
use otelite_exporter::model::{SpanKind, StatusCode, TraceId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCount {
    pub name: String,
    pub span_count: u64,
    pub error_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Newest traces first, one page. Without span filters the trace table's
/// start index answers. With them, matching spans are read newest first
/// through an index (a service's time index when a service is given, else
/// the span table in arrival order) and distinct traces are collected until
/// the page is full, so the cost follows the page, not the matches.
pub fn search_page(conn: &Connection, query: &TraceQuery) -> Result<Page, StoreError> {
    let filters = SpanFilters::new(query);
    let found = if filters.clauses.is_empty() {
        traces_by_start(conn, query)?
    } else {
        traces_by_spans(conn, query, &filters)?
    };
    let next = match found.last() {
        Some((trace_id, key)) if found.len() == query.limit => Some(Cursor {
            key: *key,
            trace_id: *trace_id,
        }),
        _ => None,
    };
    let traces = found
        .iter()
        .map(|(trace_id, _)| summary_of(conn, trace_id))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(Page { traces, next })
}

/// The span-level conditions of a query as SQL over `spans s`, with their
/// arguments in order.
struct SpanFilters {
    clauses: Vec<&'static str>,
    args: Vec<Value>,
}

impl SpanFilters {
    fn new(query: &TraceQuery) -> Self {
        let mut filters = SpanFilters {
            clauses: Vec::new(),
            args: Vec::new(),
        };
        if let Some(service) = &query.service {
            filters.add(
                "s.service_id = (SELECT id FROM services WHERE name = ?)",
                Value::Text(service.clone()),
            );
        }
        if let Some(operation) = &query.operation {
            filters.add("s.name = ?", Value::Text(operation.clone()));
        }
        if let Some(kind) = query.kind {
            filters.add("s.kind = ?", Value::Integer(i64::from(kind.as_i32())));
        }
        // Each attribute may be the span's own or its resource's.
        for (key, value) in &query.attributes {
            let token = encode::attribute_token(key, value);
            filters.add(
                "(s.id IN (SELECT rowid FROM span_attributes WHERE span_attributes MATCH ?)
                  OR s.resource_id IN (SELECT rowid FROM resource_attributes WHERE resource_attributes MATCH ?))",
                Value::Text(token.clone()),
            );
            filters.args.push(Value::Text(token));
        }
        if let Some(min) = query.min_duration_ns {
            filters.add("s.duration_ns >= ?", Value::Integer(nanos(min)));
        }
        if let Some(max) = query.max_duration_ns {
            filters.add("s.duration_ns <= ?", Value::Integer(nanos(max)));
        }
        // Alone, "has errors" is a property of the trace; with span filters, of the span.
        if query.error_only && !filters.clauses.is_empty() {
            filters.add(
                "s.status_code = ?",
                Value::Integer(i64::from(StatusCode::Error.as_i32())),
            );
        }
        filters
    }

    fn add(&mut self, clause: &'static str, arg: Value) {
        self.clauses.push(clause);
        self.args.push(arg);
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

fn window(query: &TraceQuery) -> (i64, i64) {
    (
        query.start_ns.map_or(0, nanos),
        query.end_ns.map_or(i64::MAX, nanos),
    )
}

/// Traces that overlap the window, by start time.
fn traces_by_start(
    conn: &Connection,
    query: &TraceQuery,
) -> Result<Vec<(TraceId, i64)>, StoreError> {
    let (start, end) = window(query);
    let errors = if query.error_only {
        "AND t.error_count > 0"
    } else {
        ""
    };
    let mut args = vec![Value::Integer(start), Value::Integer(end)];
    let mut after = "";
    if let Some(cursor) = &query.cursor {
        after = "AND (t.start_ns, t.trace_id) < (?, ?)";
        args.extend([
            Value::Integer(cursor.key),
            Value::Blob(cursor.trace_id.0.to_vec()),
        ]);
    }
    args.push(Value::Integer(query.limit as i64));
    let sql = format!(
        "SELECT t.trace_id, t.start_ns FROM traces t WHERE t.end_ns >= ? AND t.start_ns <= ? {errors} {after}
         ORDER BY t.start_ns DESC, t.trace_id DESC LIMIT ?"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(args), |row| {
        Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
    })?;
    let mut found = Vec::new();
    for row in rows {
        let (trace_id, start) = row?;
        found.push((trace_id_of(&trace_id)?, start));
    }
    Ok(found)
}

/// Distinct traces of the matching spans, in the order of the driving
/// index: a trace's key is that of its first (newest) matching span.
fn traces_by_spans(
    conn: &Connection,
    query: &TraceQuery,
    filters: &SpanFilters,
) -> Result<Vec<(TraceId, i64)>, StoreError> {
    // With a service, its time index gives spans by start time; without,
    // the span table gives them in arrival order, which is close to it.
    let key = if query.service.is_some() {
        "s.start_ns"
    } else {
        "s.id"
    };
    let (start, end) = window(query);
    let mut args = filters.args.clone();
    args.extend([Value::Integer(start), Value::Integer(end)]);
    let mut after = String::new();
    if let Some(cursor) = &query.cursor {
        after = format!("AND {key} <= ?");
        args.push(Value::Integer(cursor.key));
    }
    let sql = format!(
        "SELECT s.trace_id, {key} FROM spans s WHERE {} AND s.start_ns BETWEEN ? AND ? {after} ORDER BY {key} DESC",
        filters.sql()
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(args))?;
    let mut seen: HashSet<TraceId> = HashSet::new();
    let mut found = Vec::new();
    while found.len() < query.limit {
        let Some(row) = rows.next()? else { break };
        let trace_id = trace_id_of(&row.get::<_, Vec<u8>>(0)?)?;
        let key_value: i64 = row.get(1)?;
        if !seen.insert(trace_id) {
            continue;
        }
        // A trace already on an earlier page shows up again through its
        // older spans: its first key puts it at or before the cursor.
        if let Some(cursor) = &query.cursor {
            let first = first_key(conn, key, filters, start, end, &trace_id)?;
            if (first, trace_id) >= (cursor.key, cursor.trace_id) {
                continue;
            }
        }
        found.push((trace_id, key_value));
    }
    Ok(found)
}

/// The key of a trace's newest matching span.
fn first_key(
    conn: &Connection,
    key: &str,
    filters: &SpanFilters,
    start: i64,
    end: i64,
    trace_id: &TraceId,
) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT MAX({key}) FROM spans s WHERE s.trace_id = ? AND {} AND s.start_ns BETWEEN ? AND ?",
        filters.sql()
    );
    let mut args = vec![Value::Blob(trace_id.0.to_vec())];
    args.extend(filters.args.iter().cloned());
    args.extend([Value::Integer(start), Value::Integer(end)]);
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args), |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(i64::MIN))
}

fn trace_id_of(bytes: &[u8]) -> Result<TraceId, StoreError> {
    TraceId::from_slice(bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("a trace id of {} bytes", bytes.len())))
}

/// A trace's summary row, with the services involved and its orphans.
fn summary_of(conn: &Connection, trace_id: &TraceId) -> Result<Option<TraceSummary>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT root_service, root_name, start_ns, end_ns, span_count, error_count FROM traces WHERE trace_id = ?1",
        )?
        .query_row([&trace_id.0[..]], |row| {
            let (start, end): (i64, i64) = (row.get(2)?, row.get(3)?);
            Ok(TraceSummary {
                trace_id: trace_id.to_hex(),
                root_service: row.get(0)?,
                root_name: row.get(1)?,
                start_time_unix_nano: start.max(0) as u64,
                end_time_unix_nano: end.max(0) as u64,
                duration_nanos: end.saturating_sub(start).max(0) as u64,
                span_count: row.get::<_, i64>(4)?.max(0) as u64,
                error_count: row.get::<_, i64>(5)?.max(0) as u64,
                orphan_span_count: 0,
                services: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut summary) = row else {
        return Ok(None);
    };
    summary.services = services_of(conn, &trace_id.0)?;
    summary.orphan_span_count = orphans_of(conn, &trace_id.0)?;
    Ok(Some(summary))
}

/// One page of search results, and where the next one starts when this
/// one is full.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub traces: Vec<TraceSummary>,
    pub next: Option<Cursor>,
}

/// Where a page of results continues: after this sort key and trace id.
/// Written as `{key}-{trace id hex}` in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub trace_id: TraceId,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.key, self.trace_id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (key, trace_id) = text.split_once('-').ok_or(())?;
        Ok(Self {
            key: key.parse().map_err(|_| ())?,
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
