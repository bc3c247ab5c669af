//! Trace search: filters on spans (service, operation, kind, attributes,
//! status, duration) and on time, newest traces first, as summaries.

use super::groups::{self, Blocks, GROUP_SLICE_NS, GroupRef};
use super::{StoreError, encode};
use crate::storage::{Cursor, Page, ServiceCount, TraceQuery, TraceSummary};
use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use otelite_model::otlp;
use otelite_model::{AnyValue, KeyValue, StatusCode, TraceId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use std::collections::{HashMap, HashSet};

fn nanos(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Newest traces first, one page. Without span filters the trace table's
/// start index answers. With them, candidate span groups are read newest
/// first (through the search tokens when the query has any, else a
/// service's time index, else arrival order), narrowed by what their rows
/// say (service, time range, longest duration, errors), and decompressed
/// only when that cannot settle the match; distinct traces are collected
/// until the page is full, so the cost follows the page, not the matches.
pub fn search_page(conn: &Connection, query: &TraceQuery) -> Result<Page, StoreError> {
    let filters = Filters::new(query);
    let found = if filters.is_empty() {
        traces_by_start(conn, query)?
    } else {
        traces_by_groups(conn, query, &filters)?
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

/// How the span-level conditions of a query are checked: search terms and
/// row conditions find candidate groups; `SpanCheck` decides on the spans.
struct Filters<'q> {
    query: &'q TraceQuery,
    /// FTS5 terms (or one parenthesised alternative), all of which a
    /// candidate's document must hold, but the prefix queries.
    terms: Vec<String>,
    /// FTS5 prefix queries the document must match too, kept apart since
    /// a search first tries without them (see `traces_by_groups`).
    prefix_terms: Vec<String>,
    /// Conditions on one span: with more than one, or with one the group
    /// row cannot settle, candidates are checked span by span.
    span_conditions: usize,
    row_settles: bool,
    error_on_span: bool,
}

impl<'q> Filters<'q> {
    fn new(query: &'q TraceQuery) -> Self {
        let mut terms = Vec::new();
        if let Some(operation) = &query.operation {
            terms.push(encode::operation_token(operation));
        }
        if let Some(kind) = query.kind {
            terms.push(encode::kind_token(kind.as_i32()));
        }
        for (key, value) in &query.attributes {
            terms.push(encode::attribute_match(key, value));
        }
        let prefix_terms: Vec<String> = (query.attribute_prefixes.iter())
            .map(|(key, prefix)| encode::prefix_query(key, prefix))
            .collect();
        let mut span_conditions = terms.len()
            + prefix_terms.len()
            + usize::from(query.min_duration_ns.is_some())
            + usize::from(query.max_duration_ns.is_some())
            + usize::from(query.status.is_some());
        // Alone, "has errors" is a property of the trace; with span filters, of the span.
        let error_on_span = query.error_only && (span_conditions > 0 || query.service.is_some());
        span_conditions += usize::from(error_on_span);
        // A prefix term is a superset past `HEAD_BYTES`, and no row
        // column bounds the shortest duration.
        let row_settles = span_conditions <= 1
            && (query.attribute_prefixes.iter())
                .all(|(_, prefix)| prefix.len() <= encode::HEAD_BYTES)
            && query.max_duration_ns.is_none()
            && query.status.is_none();
        if !(terms.is_empty() && prefix_terms.is_empty())
            && let Some(service) = &query.service
        {
            terms.push(encode::service_token(service));
        }
        Self {
            query,
            terms,
            prefix_terms,
            span_conditions,
            row_settles,
            error_on_span,
        }
    }

    fn is_empty(&self) -> bool {
        self.span_conditions == 0 && self.query.service.is_none()
    }

    /// Whether a candidate group must be decompressed to know if one of its
    /// spans matches: a group straddling the time window must, too.
    fn must_check(&self, group: &Candidate) -> bool {
        let (start, end) = window(self.query);
        !self.row_settles || group.start_ns < start || group.end_ns > end
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

/// A span group that may match, with its sort key.
struct Candidate {
    group: GroupRef,
    start_ns: i64,
    end_ns: i64,
    key: i64,
}

const CANDIDATE_COLUMNS: &str = "g.id, g.trace_ref, g.resource_id, g.scope_id, g.block_id, \
     g.byte_offset, g.byte_length, g.start_ns, g.end_ns";

/// Which order candidates come in, and the key a cursor holds.
#[derive(Clone, Copy)]
enum Driver {
    /// Matching search documents, newest group first: key `g.id`.
    Terms,
    /// A service's groups by first start, newest first: key `g.start_ns`.
    ServiceTime,
    /// All groups in arrival order, newest first: key `g.id`.
    Arrival,
}

impl Driver {
    fn of(filters: &Filters, terms: &[&str]) -> Self {
        if !terms.is_empty() {
            Driver::Terms
        } else if filters.query.service.is_some() {
            Driver::ServiceTime
        } else {
            Driver::Arrival
        }
    }

    fn key(self) -> &'static str {
        match self {
            Driver::ServiceTime => "g.start_ns",
            Driver::Terms | Driver::Arrival => "g.id",
        }
    }
}

/// The row conditions on `span_groups g` with their arguments: what every
/// candidate must satisfy whatever drives the search.
fn row_conditions(filters: &Filters) -> (Vec<&'static str>, Vec<Value>) {
    let query = filters.query;
    let (start, end) = window(query);
    // A group's spans start within `GROUP_SLICE_NS` of its first start.
    let earliest = start.saturating_sub(nanos(GROUP_SLICE_NS));
    let mut clauses = vec!["g.start_ns BETWEEN ? AND ?", "g.end_ns >= ?"];
    let mut args = vec![
        Value::Integer(earliest),
        Value::Integer(end),
        Value::Integer(start),
    ];
    if let Some(service) = &query.service {
        clauses.push("g.service_id = (SELECT id FROM services WHERE name = ?)");
        args.push(Value::Text(service.clone()));
    }
    if let Some(min) = query.min_duration_ns {
        clauses.push("g.max_duration_ns >= ?");
        args.push(Value::Integer(nanos(min)));
    }
    if filters.error_on_span {
        clauses.push("g.error_count > 0");
    }
    (clauses, args)
}

/// Candidate groups a search for a prefix first reads without its prefix
/// terms, newest first, checking their spans, before it asks FTS5.
pub(super) const PREFIX_SCAN_GROUPS: usize = 2048;

/// Distinct traces of the matching groups, in the driver's order: a
/// trace's key is that of its first (newest) matching group.
///
/// FTS5 answers a prefix query by merging the postings of every term with
/// that prefix before the first row comes out, which costs seconds for a
/// prefix of common values. So a search with a prefix first reads the
/// newest groups through its other conditions alone and checks the
/// prefix on their spans: a common prefix fills the page within a few
/// thousand groups. Only when those groups are not enough does it ask
/// FTS5, for a prefix that is then rare and so has few postings. Both
/// passes read groups newest first by id, so either gives the same page.
fn traces_by_groups(
    conn: &Connection,
    query: &TraceQuery,
    filters: &Filters,
) -> Result<Vec<(TraceId, i64)>, StoreError> {
    let others: Vec<&str> = filters.terms.iter().map(String::as_str).collect();
    if !filters.prefix_terms.is_empty() {
        let scan = Pass {
            terms: others.clone(),
            check_every_group: true,
            budget: Some(PREFIX_SCAN_GROUPS),
        };
        if let Some(found) = traces_in_pass(conn, query, filters, &scan)? {
            return Ok(found);
        }
    }
    let all = others
        .into_iter()
        .chain(filters.prefix_terms.iter().map(String::as_str))
        .collect();
    let pass = Pass {
        terms: all,
        check_every_group: false,
        budget: None,
    };
    Ok(traces_in_pass(conn, query, filters, &pass)?.unwrap_or_default())
}

/// One reading of candidate groups: the FTS5 terms it matches, whether
/// every group's spans are checked (conditions left out of the terms), and
/// how many groups it may read before it gives up.
struct Pass<'t> {
    terms: Vec<&'t str>,
    check_every_group: bool,
    budget: Option<usize>,
}

/// The traces of one pass; `None` when it read its budget of groups
/// before the page was full.
fn traces_in_pass(
    conn: &Connection,
    query: &TraceQuery,
    filters: &Filters,
    pass: &Pass,
) -> Result<Option<Vec<(TraceId, i64)>>, StoreError> {
    let driver = Driver::of(filters, &pass.terms);
    let key = driver.key();
    let (mut clauses, mut args) = row_conditions(filters);
    if let Some(cursor) = &query.cursor {
        clauses.push(match driver {
            Driver::ServiceTime => "g.start_ns <= ?",
            Driver::Terms | Driver::Arrival => "g.id <= ?",
        });
        args.push(Value::Integer(cursor.key));
    }
    let sql = match driver {
        Driver::Terms => {
            args.insert(0, Value::Text(pass.terms.join(" AND ")));
            format!(
                // CROSS JOIN keeps the search documents the outer loop:
                // left to choose, SQLite drives by the service index and
                // probes the documents once per group of the service.
                "SELECT {CANDIDATE_COLUMNS}, {key} FROM group_terms
                 CROSS JOIN span_groups g ON g.id = group_terms.rowid
                 WHERE group_terms MATCH ? AND {} ORDER BY group_terms.rowid DESC",
                clauses.join(" AND ")
            )
        }
        Driver::ServiceTime | Driver::Arrival => format!(
            "SELECT {CANDIDATE_COLUMNS}, {key} FROM span_groups g WHERE {} ORDER BY {key} DESC",
            clauses.join(" AND ")
        ),
    };
    let check = SpanCheck::new(query, filters.error_on_span);
    let mut blocks = Blocks::default();
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(args))?;
    let mut seen: HashSet<i64> = HashSet::new();
    let mut found = Vec::new();
    let mut read = 0;
    while found.len() < query.limit {
        let Some(row) = rows.next()? else { break };
        if pass.budget.is_some_and(|budget| read == budget) {
            return Ok(None);
        }
        read += 1;
        let candidate = candidate(row)?;
        // Checking spans is work between SQLite's steps, which its
        // progress handler does not see.
        super::reader::check_limit()?;
        let trace_ref = candidate.group.trace_ref;
        if seen.contains(&trace_ref) {
            continue;
        }
        if (pass.check_every_group || filters.must_check(&candidate))
            && !check.any_span(conn, &mut blocks, &candidate.group)?
        {
            continue;
        }
        seen.insert(trace_ref);
        let trace_id = trace_id_of_ref(conn, trace_ref)?;
        // A trace already on an earlier page shows up again through its
        // older groups: its first key puts it at or before the cursor.
        if let Some(cursor) = &query.cursor {
            let first = first_key(conn, &mut blocks, filters, &check, driver, trace_ref)?;
            if (first, trace_id) >= (cursor.key, cursor.trace_id) {
                continue;
            }
        }
        found.push((trace_id, candidate.key));
    }
    Ok(Some(found))
}

fn candidate(row: &rusqlite::Row) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        group: groups::group_ref(row)?,
        start_ns: row.get(7)?,
        end_ns: row.get(8)?,
        key: row.get(9)?,
    })
}

/// The key of a trace's newest matching group.
fn first_key(
    conn: &Connection,
    blocks: &mut Blocks,
    filters: &Filters,
    check: &SpanCheck,
    driver: Driver,
    trace_ref: i64,
) -> Result<i64, StoreError> {
    let (mut clauses, mut args) = row_conditions(filters);
    clauses.push("g.trace_ref = ?");
    args.push(Value::Integer(trace_ref));
    let sql = format!(
        "SELECT {CANDIDATE_COLUMNS}, {} FROM span_groups g WHERE {}",
        driver.key(),
        clauses.join(" AND ")
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(args))?;
    let mut first = i64::MIN;
    while let Some(row) = rows.next()? {
        let candidate = candidate(row)?;
        if candidate.key > first && check.any_span(conn, blocks, &candidate.group)? {
            first = candidate.key;
        }
    }
    Ok(first)
}

/// Every span-level condition of a query, checked on stored spans.
struct SpanCheck<'q> {
    query: &'q TraceQuery,
    error_on_span: bool,
    /// Resource attributes by resource id, decoded once per query.
    resources: std::cell::RefCell<HashMap<i64, Vec<KeyValue>>>,
}

impl<'q> SpanCheck<'q> {
    fn new(query: &'q TraceQuery, error_on_span: bool) -> Self {
        Self {
            query,
            error_on_span,
            resources: Default::default(),
        }
    }

    /// Whether one span of the group meets every condition.
    fn any_span(
        &self,
        conn: &Connection,
        blocks: &mut Blocks,
        group: &GroupRef,
    ) -> Result<bool, StoreError> {
        let spans = blocks.spans(conn, group)?;
        let resource = self.resource_attributes(conn, group.resource_id)?;
        Ok(spans.iter().any(|span| self.matches(span, &resource)))
    }

    fn resource_attributes(
        &self,
        conn: &Connection,
        resource_id: i64,
    ) -> Result<Vec<KeyValue>, StoreError> {
        if let Some(attributes) = self.resources.borrow().get(&resource_id) {
            return Ok(attributes.clone());
        }
        let body: Vec<u8> = conn
            .prepare_cached("SELECT body FROM resources WHERE id = ?1")?
            .query_row([resource_id], |r| r.get(0))?;
        let resource = encode::decode_resource(&body)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .resource
            .unwrap_or_default();
        let attributes = otlp::attributes_from_otlp(resource.attributes);
        self.resources
            .borrow_mut()
            .insert(resource_id, attributes.clone());
        Ok(attributes)
    }

    fn matches(&self, span: &PbSpan, resource: &[KeyValue]) -> bool {
        let query = self.query;
        let start = nanos(span.start_time_unix_nano);
        let duration = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano);
        let (window_start, window_end) = window(query);
        if start < window_start || start > window_end {
            return false;
        }
        if query
            .operation
            .as_ref()
            .is_some_and(|name| *name != span.name)
            || query.kind.is_some_and(|kind| kind.as_i32() != span.kind)
            || query.min_duration_ns.is_some_and(|min| duration < min)
            || query.max_duration_ns.is_some_and(|max| duration > max)
        {
            return false;
        }
        let code = span.status.as_ref().map_or(0, |s| s.code);
        if self.error_on_span && code != StatusCode::Error.as_i32()
            || query.status.is_some_and(|status| status.as_i32() != code)
        {
            return false;
        }
        if query.attributes.is_empty() && query.attribute_prefixes.is_empty() {
            return true;
        }
        let own = otlp::attributes_from_otlp(span.attributes.clone());
        let has = |test: &dyn Fn(&KeyValue) -> bool| own.iter().chain(resource).any(test);
        query.attributes.iter().all(|(key, value)| {
            has(&|kv: &KeyValue| {
                kv.key == *key && encode::searchable_text(&kv.value).as_deref() == Some(value)
            })
        }) && query.attribute_prefixes.iter().all(|(key, prefix)| {
            has(&|kv: &KeyValue| {
                kv.key == *key
                    && matches!(&kv.value, AnyValue::String(text) if text.starts_with(prefix.as_str()))
            })
        })
    }
}

fn trace_id_of(bytes: &[u8]) -> Result<TraceId, StoreError> {
    TraceId::from_slice(bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("a trace id of {} bytes", bytes.len())))
}

fn trace_id_of_ref(conn: &Connection, trace_ref: i64) -> Result<TraceId, StoreError> {
    let bytes: Vec<u8> = conn
        .prepare_cached("SELECT trace_id FROM traces WHERE id = ?1")?
        .query_row([trace_ref], |r| r.get(0))?;
    trace_id_of(&bytes)
}

/// A trace's summary row, with the services involved and its orphans.
fn summary_of(conn: &Connection, trace_id: &TraceId) -> Result<Option<TraceSummary>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT root_service, root_name, start_ns, end_ns, span_count, error_count, id FROM traces WHERE trace_id = ?1",
        )?
        .query_row([&trace_id.0[..]], |row| {
            let (start, end): (i64, i64) = (row.get(2)?, row.get(3)?);
            Ok((
                TraceSummary {
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
                },
                row.get::<_, i64>(6)?,
            ))
        })
        .optional()?;
    let Some((mut summary, trace_ref)) = row else {
        return Ok(None);
    };
    summary.services = services_of(conn, trace_ref)?;
    summary.orphan_span_count = orphans_of(conn, trace_ref)?;
    Ok(Some(summary))
}

/// The first page of a search, newest first.
pub fn search(conn: &Connection, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
    Ok(search_page(conn, query)?.traces)
}
fn services_of(conn: &Connection, trace_ref: i64) -> Result<Vec<ServiceCount>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT v.name, SUM(g.span_count), SUM(g.error_count) FROM span_groups g
         JOIN services v ON v.id = g.service_id
         WHERE g.trace_ref = ?1 GROUP BY v.name ORDER BY v.name",
    )?;
    let rows = statement.query_map([trace_ref], |r| {
        Ok(ServiceCount {
            name: r.get(0)?,
            span_count: r.get::<_, i64>(1)?.max(0) as u64,
            error_count: r.get::<_, i64>(2)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Spans whose parent is not stored, from the groups' id lists.
fn orphans_of(conn: &Connection, trace_ref: i64) -> Result<u64, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT span_ids, parent_ids FROM span_groups WHERE trace_ref = ?1")?;
    let mut rows = statement.query([trace_ref])?;
    let mut spans = HashSet::new();
    let mut parents = Vec::new();
    while let Some(row) = rows.next()? {
        spans.extend(groups::unpack_ids(&row.get::<_, Vec<u8>>(0)?));
        parents.extend(groups::unpack_ids(&row.get::<_, Vec<u8>>(1)?));
    }
    Ok(parents.iter().filter(|p| !spans.contains(*p)).count() as u64)
}
