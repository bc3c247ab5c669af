//! Trace search over `spans`: the filters become a WHERE clause, traces are
//! grouped and ordered newest first by a key, and a page's summaries are
//! computed from the trace-ordered copy.
//!
//! The key: without span filters, a trace's start (its earliest span in the
//! window's days), and the trace must overlap the window; with filters, the
//! start of its newest matching span, which must start in the window. The
//! cursor is `(key, trace id)`, as for SQLite.
//!
//! A filtered search first reads the window's newest part: over `spans`,
//! from the newest minutes `span_minutes` counts enough spans in (see
//! `minutes`), over attributes from its newest matching spans; it widens
//! when that part holds less than a page.

use super::encode::{LAST_DAY, day_of};
use super::http::{ClickHouseError, Client, hex_literal, quote};
use super::rowbinary::Reader;
use crate::storage::{Cursor, Page, ServiceCount, TraceQuery, TraceSummary};
use otelite_model::{StatusCode, TraceId};
use std::collections::{BTreeMap, HashMap, HashSet};

const ERROR: i32 = 2;

/// How many of the newest matching spans the first try reads, per trace
/// wanted: when they hold a page of traces, the page is exact (see
/// [`filtered`]); when not, the whole window is read.
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
    let found = match Source::of(query, &days, start, end) {
        None => whole_traces(client, query, start, end).await?,
        Some(source) => {
            let conditions = source.conditions.join(" AND ");
            let whole = Newest {
                table: source.table.clone(),
                conditions: conditions.clone(),
                start,
                end,
                lower: None,
            };
            if source.one_pass {
                filtered(client, query, &whole).await?
            } else if source.table == "spans" {
                by_minutes(client, query, &days, whole).await?
            } else {
                let newest = newest_first(query, start, end, source.table, &conditions);
                let found = filtered(client, query, &newest).await?;
                if found.len() < query.limit {
                    filtered(client, query, &whole).await?
                } else {
                    found
                }
            }
        }
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

/// Without span filters: every trace overlapping the window, keyed by its
/// start.
async fn whole_traces(
    client: &Client,
    query: &TraceQuery,
    start: u64,
    end: u64,
) -> Result<Vec<(TraceId, i64)>, ClickHouseError> {
    let errors = if query.error_only {
        "AND errors > 0"
    } else {
        ""
    };
    let sql = format!(
        "SELECT trace_id, min(start_ns) AS sort_key, max(end_ns) AS trace_end, \
         sum(status_code = {ERROR}) AS errors FROM spans WHERE day <= {} \
         GROUP BY trace_id HAVING trace_end >= {start} AND sort_key <= {end} {errors} {} \
         ORDER BY sort_key DESC, trace_id DESC LIMIT {}",
        date_literal(day_of(end)),
        after(query.cursor.as_ref()),
        query.limit
    );
    let data = client.query(&sql).await?;
    let mut reader = Reader::new(&data);
    let mut found = Vec::new();
    while !reader.is_empty() {
        let trace_id = TraceId(reader.fixed()?);
        let key = reader.u64()?;
        // The trace's end and errors: read for the HAVING only.
        reader.u64()?;
        reader.u64()?;
        found.push((trace_id, i64::try_from(key).unwrap_or(i64::MAX)));
    }
    Ok(found)
}

/// A filtered search's spans: the table to read (or a subquery with
/// `trace_id` and `start_ns` per span) and the conditions a span must meet
/// there.
struct Source {
    table: String,
    conditions: Vec<String>,
    /// Read the window in one pass, without trying its newest part first.
    one_pass: bool,
}

impl Source {
    /// `None` without span filters. With one attribute, the attribute table
    /// (its key and value are the primary key's prefix); with more, the
    /// spans of that table that have them all; otherwise `spans` (ordered
    /// by service).
    fn of(query: &TraceQuery, days: &str, start: u64, end: u64) -> Option<Source> {
        let columns = column_filters(query);
        let exact = query.attributes.iter().map(|(k, v)| Match::Exact(k, v));
        let prefixes = query
            .attribute_prefixes
            .iter()
            .map(|(k, p)| Match::Prefix(k, p));
        let matches: Vec<String> = exact
            .chain(prefixes)
            .map(|m| m.on_attribute_row())
            .collect();
        let mut conditions = vec![days.to_owned()];
        conditions.extend(columns.iter().cloned());
        match matches.len() {
            0 if columns.is_empty() => None,
            0 => Some(Source {
                table: "spans".to_owned(),
                conditions,
                one_pass: false,
            }),
            1 => {
                conditions.extend(matches);
                Some(Source {
                    table: "span_attributes".to_owned(),
                    conditions,
                    one_pass: false,
                })
            }
            _ => {
                // One pass over the rows of any of the attributes (each a
                // primary-key range), a span kept when it has every one.
                let any: Vec<String> = matches.iter().map(|m| format!("({m})")).collect();
                let every: Vec<String> = matches.iter().map(|m| format!("max({m})")).collect();
                conditions.push(format!("({})", any.join(" OR ")));
                Some(Source {
                    table: format!(
                        "(SELECT trace_id, span_start AS start_ns FROM \
                         (SELECT trace_id, any(start_ns) AS span_start FROM span_attributes \
                         WHERE {} AND start_ns BETWEEN {start} AND {end} \
                         GROUP BY trace_id, span_id HAVING {}))",
                        conditions.join(" AND "),
                        every.join(" AND ")
                    ),
                    conditions: vec!["1".to_owned()],
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

/// A filtered search over part of the window: spans starting from `lower`
/// (from the whole window when `None`) to `end`.
struct Newest {
    table: String,
    conditions: String,
    start: u64,
    end: u64,
    lower: Option<String>,
}

/// A search over `spans`: the windows holding the newest 10, 80 and 640
/// spans per trace wanted (of the service and operation, counted in
/// `span_minutes`) in turn, until one holds a page; else the whole window.
async fn by_minutes(
    client: &Client,
    query: &TraceQuery,
    days: &str,
    whole: Newest,
) -> Result<Vec<(TraceId, i64)>, ClickHouseError> {
    let upper = upper_end(query, whole.end);
    let spans = query.limit.saturating_mul(SPANS_PER_TRACE_TRIED).max(1) as u64;
    let starts = super::minutes::window_starts(client, query, days, whole.start, upper, spans);
    for lower in starts.await? {
        let newest = Newest {
            lower: Some(lower.to_string()),
            table: whole.table.clone(),
            conditions: whole.conditions.clone(),
            ..whole
        };
        let found = filtered(client, query, &newest).await?;
        if found.len() == query.limit {
            return Ok(found);
        }
    }
    filtered(client, query, &whole).await
}

/// The newest start a page can hold: the window's end, or the cursor's key.
fn upper_end(query: &TraceQuery, end: u64) -> u64 {
    match &query.cursor {
        Some(cursor) => end.min(cursor.key.max(0) as u64),
        None => end,
    }
}

/// The first try of a filtered search: the window cut to the newest
/// matching spans, up to [`SPANS_PER_TRACE_TRIED`] per trace wanted (at or
/// before the cursor's key). 18.16 cannot read a table in its order to stop
/// early, but the cut is a range of the primary key's start column.
fn newest_first(
    query: &TraceQuery,
    start: u64,
    end: u64,
    table: String,
    conditions: &str,
) -> Newest {
    let upper = upper_end(query, end);
    let spans = query.limit.saturating_mul(SPANS_PER_TRACE_TRIED).max(1);
    let lower = format!(
        "(SELECT min(s) FROM (SELECT start_ns AS s FROM {table} WHERE {conditions} \
         AND start_ns BETWEEN {start} AND {upper} ORDER BY start_ns DESC LIMIT {spans}))"
    );
    Newest {
        table,
        conditions: conditions.to_owned(),
        start,
        end,
        lower: Some(lower),
    }
}

/// Traces keyed by their newest matching span, newest first, past the
/// cursor. With `lower`, a trace found has a matching span from `lower`
/// on, so its key is exact, and every trace left out has a key below
/// `lower`, below each one found: a full page is the page of the whole
/// window.
async fn filtered(
    client: &Client,
    query: &TraceQuery,
    newest: &Newest,
) -> Result<Vec<(TraceId, i64)>, ClickHouseError> {
    let Newest {
        table,
        conditions,
        start,
        end,
        lower,
    } = newest;
    let lower = lower
        .as_ref()
        .map_or(String::new(), |lower| format!("AND start_ns >= {lower}"));
    let sql = format!(
        "SELECT trace_id, max(start_ns) AS sort_key FROM {table} \
         WHERE {conditions} AND start_ns BETWEEN {start} AND {end} {lower} \
         GROUP BY trace_id HAVING 1 {} ORDER BY sort_key DESC, trace_id DESC LIMIT {}",
        after(query.cursor.as_ref()),
        query.limit
    );
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
             status_code, is_root FROM spans_by_trace WHERE trace_id IN ({}) \
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
