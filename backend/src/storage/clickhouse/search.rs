//! Trace search over `spans`: the filters become a WHERE clause, traces are
//! grouped and ordered newest first by a key, and a page's summaries are
//! computed from the trace-ordered copy.
//!
//! The key: without span filters, a trace's start (its earliest span in the
//! window's days), and the trace must overlap the window; with filters, the
//! start of its newest matching span, which must start in the window. The
//! cursor is `(key, trace id)`, as for SQLite.
//!
//! A search first reads the window's newest part, from the newest minutes
//! `span_minutes` counts enough spans in (see `minutes`), and widens when
//! that part holds less than a page: over `spans` or the attribute table
//! with filters, and without them over the traces that have a span there.

use super::encode::{LAST_DAY, day_of};
use super::http::{ClickHouseError, Client, hex_literal, quote};
use super::rowbinary::Reader;
use crate::storage::{Cursor, Page, ServiceCount, TraceQuery, TraceSummary};
use otelite_model::{StatusCode, TraceId};
use std::collections::{BTreeMap, HashMap, HashSet};

const ERROR: i32 = 2;

/// How many of the newest spans the first try reads, per trace wanted:
/// when they hold a page of traces, the page is exact (see [`Pass::page`]);
/// when not, wider windows are read.
const SPANS_PER_TRACE_TRIED: usize = 10;

pub async fn search_page(client: &Client, query: &TraceQuery) -> Result<Page, ClickHouseError> {
    let start = query.start_ns.unwrap_or(0);
    let end = query.end_ns.unwrap_or(i64::MAX as u64);
    // Only partitions of the window's days are read.
    let days = format!(
        "day BETWEEN {} AND {}",
        date_literal(day_of(start)),
        date_literal(day_of(end))
    );
    let window = Window { start, end };
    let found = match Source::of(query, &days, start, end) {
        None => newest_windows(client, query, &days, window, &Pass::Traces).await?,
        Some(Source {
            pass,
            one_pass: true,
        }) => pass.page(client, query, window, None).await?,
        Some(Source { pass, .. }) => newest_windows(client, query, &days, window, &pass).await?,
    };
    let next = match found.last() {
        Some((trace_id, key)) if found.len() == query.limit => Some(Cursor {
            key: *key,
            trace_id: *trace_id,
        }),
        _ => None,
    };
    let ids: Vec<TraceId> = found.iter().map(|(id, _)| *id).collect();
    let traces = summaries(client, &ids).await?;
    Ok(Page { traces, next })
}

/// The search's time window, in unix nanoseconds.
#[derive(Clone, Copy)]
struct Window {
    start: u64,
    end: u64,
}

/// How one try of a search finds its traces.
enum Pass {
    /// Spans of `table` (or a subquery with `trace_id` and `start_ns` per
    /// span) that meet `conditions`: a trace is keyed by the start of its
    /// newest such span, which must start in the window.
    Spans { table: String, conditions: String },
    /// Without span filters: every trace overlapping the window, keyed by
    /// its start.
    Traces,
}

impl Pass {
    /// The page of traces, newest first past the cursor, among those whose
    /// key is `lower` or later (any key with `None`). With `lower`, every
    /// trace left out has a key below `lower` or below each one found: a
    /// full page is the page of the whole window.
    async fn page(
        &self,
        client: &Client,
        query: &TraceQuery,
        window: Window,
        lower: Option<Lower>,
    ) -> Result<Vec<(TraceId, i64)>, ClickHouseError> {
        let sql = match self {
            Pass::Spans { table, conditions } => {
                matching_spans_sql(query, table, conditions, window, lower.map(|l| l.start_ns))
            }
            Pass::Traces => whole_traces_sql(query, window, lower),
        };
        let data = client.query(&sql).await?;
        let mut reader = Reader::new(&data);
        let mut found = Vec::new();
        while !reader.is_empty() {
            let trace_id = TraceId(reader.fixed()?);
            let key = reader.u64()?;
            found.push((trace_id, i64::try_from(key).unwrap_or(i64::MAX)));
        }
        Ok(found)
    }
}

/// Where a try of a search starts reading, and how many traces it may
/// look up at most (without span filters).
#[derive(Clone, Copy)]
struct Lower {
    start_ns: u64,
    traces: usize,
}

/// A search over the windows holding the newest 10, 80 and 640 spans per
/// trace wanted (of the service and operation, counted in `span_minutes`)
/// in turn, until one holds a page; else over the whole window.
async fn newest_windows(
    client: &Client,
    query: &TraceQuery,
    days: &str,
    window: Window,
    pass: &Pass,
) -> Result<Vec<(TraceId, i64)>, ClickHouseError> {
    let upper = upper_end(query, window.end);
    let spans = query.limit.saturating_mul(SPANS_PER_TRACE_TRIED).max(1) as u64;
    let starts = super::minutes::window_starts(client, query, days, window.start, upper, spans);
    // Without span filters, each try looks up the newest 2 traces per
    // trace wanted, 10 with errors (1 in 5 traces has one in the query
    // benchmark), then 8 times as many as the try before.
    let per_trace = if query.error_only { 10 } else { 2 };
    let mut traces = query.limit.saturating_add(1).saturating_mul(per_trace);
    for start_ns in starts.await? {
        let lower = Lower { start_ns, traces };
        traces = traces.saturating_mul(8);
        let found = pass.page(client, query, window, Some(lower)).await?;
        if found.len() == query.limit {
            return Ok(found);
        }
    }
    pass.page(client, query, window, None).await
}

/// Traces keyed by their newest matching span, newest first, past the
/// cursor; with `lower`, only spans from `lower` on are read, so a trace
/// found has its exact key.
fn matching_spans_sql(
    query: &TraceQuery,
    table: &str,
    conditions: &str,
    Window { start, end }: Window,
    lower: Option<u64>,
) -> String {
    let lower = lower.map_or(String::new(), |lower| format!("AND start_ns >= {lower}"));
    format!(
        "SELECT trace_id, max(start_ns) AS sort_key FROM {table} \
         WHERE {conditions} AND start_ns BETWEEN {start} AND {end} {lower} \
         GROUP BY trace_id HAVING 1 {} ORDER BY sort_key DESC, trace_id DESC LIMIT {}",
        after(query.cursor.as_ref()),
        query.limit
    )
}

/// Every trace overlapping the window, keyed by its start (its earliest
/// span in the window's days).
///
/// With `lower`, only traces with a span from `lower` on are candidates,
/// and only the newest of them by that span (`lower.traces`, past the
/// cursor) are looked up in the trace-ordered copy for their whole start.
/// A trace whose start is `lower` or later has its first span there, so
/// its key is exact and it ranks among the candidates as in the whole
/// window; a candidate that started before `lower` is left out by its
/// key. So when the candidates hold a page, it is the whole window's.
fn whole_traces_sql(
    query: &TraceQuery,
    Window { start, end }: Window,
    lower: Option<Lower>,
) -> String {
    let errors = if query.error_only {
        format!("AND sum(status_code = {ERROR}) > 0")
    } else {
        String::new()
    };
    let after = after(query.cursor.as_ref());
    let last_day = format!("day <= {}", date_literal(day_of(end)));
    let (from, from_lower) = match lower {
        None => (format!("spans WHERE {last_day}"), String::new()),
        Some(Lower { start_ns, traces }) => (
            format!(
                "spans_by_trace PREWHERE trace_id IN (SELECT trace_id FROM ( \
                 SELECT trace_id, min(start_ns) AS sort_key FROM spans \
                 WHERE day BETWEEN {} AND {} AND start_ns BETWEEN {start_ns} AND {end} \
                 GROUP BY trace_id HAVING 1 {after} \
                 ORDER BY sort_key DESC, trace_id DESC LIMIT {traces})) WHERE {last_day}",
                date_literal(day_of(start_ns)),
                date_literal(day_of(end))
            ),
            format!("AND sort_key >= {start_ns}"),
        ),
    };
    format!(
        "SELECT trace_id, min(start_ns) AS sort_key FROM {from} \
         GROUP BY trace_id HAVING max(end_ns) >= {start} AND sort_key <= {end} {from_lower} \
         {errors} {after} ORDER BY sort_key DESC, trace_id DESC LIMIT {}",
        query.limit
    )
}

/// A filtered search's spans, and whether the window is searched whole at
/// once.
struct Source {
    pass: Pass,
    /// Read the window in one pass, without trying its newest part first.
    one_pass: bool,
}

impl Source {
    /// `None` without span filters. With one attribute, the attribute table
    /// (its key and value are the primary key's prefix, then the start, so
    /// a window is a range of each value); with more, the spans of that
    /// table that have them all; otherwise `spans` (ordered by service).
    fn of(query: &TraceQuery, days: &str, start: u64, end: u64) -> Option<Source> {
        let columns = column_filters(query);
        let exact = query.attributes.iter().map(|(k, v)| Match::Exact(k, v));
        let prefixes = query
            .attribute_prefixes
            .iter()
            .map(|(k, p)| Match::Prefix(k, p));
        let matches: Vec<Match> = exact.chain(prefixes).collect();
        let mut conditions = vec![days.to_owned()];
        conditions.extend(columns.iter().cloned());
        let windowed = |table: &str, conditions: &[String]| Source {
            pass: Pass::Spans {
                table: table.to_owned(),
                conditions: conditions.join(" AND "),
            },
            one_pass: false,
        };
        match matches.as_slice() {
            [] if columns.is_empty() => None,
            [] => Some(windowed("spans", &conditions)),
            [single] => {
                conditions.push(single.on_attribute_row());
                Some(windowed("span_attributes", &conditions))
            }
            _ => {
                // One pass over the rows of any of the attributes (each a
                // primary-key range), a span kept when it has every one.
                let any: Vec<String> = matches
                    .iter()
                    .map(|m| format!("({})", m.on_attribute_row()))
                    .collect();
                let every: Vec<String> = matches
                    .iter()
                    .map(|m| format!("max({})", m.on_attribute_row()))
                    .collect();
                conditions.push(format!("({})", any.join(" OR ")));
                let table = format!(
                    "(SELECT trace_id, span_start AS start_ns FROM \
                     (SELECT trace_id, any(start_ns) AS span_start FROM span_attributes \
                     WHERE {} AND start_ns BETWEEN {start} AND {end} \
                     GROUP BY trace_id, span_id HAVING {}))",
                    conditions.join(" AND "),
                    every.join(" AND ")
                );
                Some(Source {
                    pass: Pass::Spans {
                        table,
                        conditions: "1".to_owned(),
                    },
                    one_pass: true,
                })
            }
        }
    }
}

/// One attribute condition of a search.
enum Match<'a> {
    Exact(&'a str, &'a str),
    /// String values only, as on SQLite: a number or boolean is no text to
    /// search in.
    Prefix(&'a str, &'a str),
}

impl Match<'_> {
    /// The condition on a `span_attributes` row, as a range of its primary
    /// key (key, value).
    fn on_attribute_row(&self) -> String {
        match self {
            Match::Exact(key, value) => {
                format!("key = {} AND value = {}", quote(key), quote(value))
            }
            Match::Prefix(key, prefix) => {
                let mut range = format!(
                    "key = {} AND value >= {prefix} AND substring(value, 1, {}) = {prefix} \
                     AND is_string = 1",
                    quote(key),
                    prefix.len(),
                    prefix = quote(prefix)
                );
                if let Some(bound) = prefix_bound(prefix) {
                    range.push_str(&format!(" AND value < {}", quote(&bound)));
                }
                range
            }
        }
    }
}

/// The least string above every string starting with `prefix`, when its
/// last character is ASCII below DEL (the common case; otherwise the
/// substring test alone bounds the range).
fn prefix_bound(prefix: &str) -> Option<String> {
    let last = prefix.chars().last()?;
    if !last.is_ascii() || last == '\u{7f}' {
        return None;
    }
    let mut bound = prefix[..prefix.len() - 1].to_owned();
    bound.push(char::from(last as u8 + 1));
    Some(bound)
}

/// The newest start a page can hold: the window's end, or the cursor's key.
fn upper_end(query: &TraceQuery, end: u64) -> u64 {
    match &query.cursor {
        Some(cursor) => end.min(cursor.key.max(0) as u64),
        None => end,
    }
}

/// A `Date` literal (`'2026-11-26'`) for days since 1970: 18.16 compares a
/// `Date` column with a date, not with a number. Capped at [`LAST_DAY`],
/// the last date 18.16 parses (it reads later ones as zero).
fn date_literal(days: u16) -> String {
    // Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01.
    let z = i64::from(days.min(LAST_DAY)) + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("'{year:04}-{month:02}-{day:02}'")
}

/// `HAVING` past the cursor: `(key, trace_id) < (cursor.key, cursor.trace_id)`.
fn after(cursor: Option<&Cursor>) -> String {
    match cursor {
        None => String::new(),
        Some(cursor) => {
            let key = cursor.key.max(0);
            format!(
                "AND (sort_key < {key} OR (sort_key = {key} AND trace_id < {}))",
                hex_literal(&cursor.trace_id.0)
            )
        }
    }
}

/// The conditions on a span's own columns (every table a search reads has
/// them), each only ever holding quoted values.
fn column_filters(query: &TraceQuery) -> Vec<String> {
    let mut filters = Vec::new();
    if let Some(service) = &query.service {
        filters.push(format!("service = {}", quote(service)));
    }
    if let Some(operation) = &query.operation {
        filters.push(format!("name = {}", quote(operation)));
    }
    if let Some(kind) = query.kind {
        filters.push(format!("kind = {}", kind.as_i32()));
    }
    if let Some(min) = query.min_duration_ns {
        filters.push(format!("duration_ns >= {min}"));
    }
    if let Some(max) = query.max_duration_ns {
        filters.push(format!("duration_ns <= {max}"));
    }
    if let Some(status) = query.status {
        filters.push(format!("status_code = {}", status.as_i32()));
    }
    // Alone, "has errors" is a property of the trace; with span filters, of the span.
    let span_filters =
        !filters.is_empty() || !query.attributes.is_empty() || !query.attribute_prefixes.is_empty();
    if query.error_only && span_filters {
        filters.push(format!("status_code = {}", StatusCode::Error.as_i32()));
    }
    filters
}

/// One span's light columns, for summaries.
struct Light {
    span_id: [u8; 8],
    parent: [u8; 8],
    service: String,
    name: String,
    start_ns: u64,
    end_ns: u64,
    is_error: bool,
    is_root: bool,
}

/// The summaries of these traces, in the given order.
async fn summaries(client: &Client, ids: &[TraceId]) -> Result<Vec<TraceSummary>, ClickHouseError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(|id| hex_literal(&id.0)).collect();
    let data = client
        .query(&format!(
            "SELECT trace_id, span_id, parent_span_id, service, name, start_ns, end_ns, \
             status_code, is_root FROM spans_by_trace PREWHERE trace_id IN ({}) \
             ORDER BY trace_id, start_ns, span_id",
            list.join(",")
        ))
        .await?;
    let mut reader = Reader::new(&data);
    let mut spans: HashMap<TraceId, Vec<Light>> = HashMap::new();
    while !reader.is_empty() {
        let trace_id = TraceId(reader.fixed()?);
        let light = Light {
            span_id: reader.fixed()?,
            parent: reader.fixed()?,
            service: reader.string()?,
            name: reader.string()?,
            start_ns: reader.u64()?,
            end_ns: reader.u64()?,
            is_error: i32::from(reader.u8()?) == ERROR,
            is_root: reader.u8()? != 0,
        };
        spans.entry(trace_id).or_default().push(light);
    }
    Ok(ids
        .iter()
        .filter_map(|id| spans.get(id).map(|spans| summary(id, spans)))
        .collect())
}

fn summary(trace_id: &TraceId, spans: &[Light]) -> TraceSummary {
    let mut seen = HashSet::new();
    let spans: Vec<&Light> = spans.iter().filter(|s| seen.insert(s.span_id)).collect();
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(0);
    let root = spans.iter().find(|s| s.is_root);
    let mut services: BTreeMap<&str, ServiceCount> = BTreeMap::new();
    for span in &spans {
        let count = services
            .entry(&span.service)
            .or_insert_with(|| ServiceCount {
                name: span.service.clone(),
                span_count: 0,
                error_count: 0,
            });
        count.span_count += 1;
        count.error_count += u64::from(span.is_error);
    }
    let orphans = spans
        .iter()
        .filter(|s| s.parent != [0; 8] && !seen.contains(&s.parent))
        .count();
    TraceSummary {
        trace_id: trace_id.to_hex(),
        root_service: root.map(|r| r.service.clone()),
        root_name: root.map(|r| r.name.clone()),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        duration_nanos: end.saturating_sub(start),
        span_count: spans.len() as u64,
        error_count: spans.iter().filter(|s| s.is_error).count() as u64,
        orphan_span_count: orphans as u64,
        services: services.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::{date_literal, prefix_bound};

    #[test]
    fn a_prefix_is_bounded_by_its_last_character_plus_one() {
        assert_eq!(prefix_bound("value-4-1").as_deref(), Some("value-4-2"));
        assert_eq!(prefix_bound("ab~").as_deref(), Some("ab\u{7f}"));
        assert_eq!(prefix_bound("a\u{7f}"), None);
        assert_eq!(prefix_bound("caf\u{e9}"), None);
        assert_eq!(prefix_bound(""), None);
    }

    #[test]
    fn dates_are_written_as_clickhouse_reads_them() {
        assert_eq!(date_literal(0), "'1970-01-01'");
        assert_eq!(date_literal(59), "'1970-03-01'");
        assert_eq!(date_literal(20_418), "'2025-11-26'");
        assert_eq!(date_literal(49_672), "'2105-12-31'");
        assert_eq!(date_literal(u16::MAX), "'2105-12-31'");
    }
}
