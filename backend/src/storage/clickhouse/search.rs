//! Trace search over `spans`: the filters become a WHERE clause, traces are
//! grouped and ordered newest first by a key, and a page's summaries are
//! computed from the trace-ordered copy.
//!
//! The key: without span filters, a trace's start (its earliest span in the
//! window's days), and the trace must overlap the window; with filters, the
//! start of its newest matching span, which must start in the window. The
//! cursor is `(key, trace id)`, as for SQLite.

use super::encode::{LAST_DAY, day_of};
use super::http::{ClickHouseError, Client, hex_literal, quote};
use super::rowbinary::Reader;
use crate::storage::{Cursor, Page, ServiceCount, TraceQuery, TraceSummary};
use otelite_model::{StatusCode, TraceId};
use std::collections::{BTreeMap, HashMap, HashSet};

const ERROR: i32 = 2;

pub async fn search_page(client: &Client, query: &TraceQuery) -> Result<Page, ClickHouseError> {
    let start = query.start_ns.unwrap_or(0);
    let end = query.end_ns.unwrap_or(i64::MAX as u64);
    let filters = span_filters(query);
    // Only partitions of the window's days are read.
    let days = format!(
        "day BETWEEN {} AND {}",
        date_literal(day_of(start)),
        date_literal(day_of(end))
    );
    let sql = if filters.is_empty() {
        let errors = if query.error_only {
            "AND errors > 0"
        } else {
            ""
        };
        format!(
            "SELECT trace_id, min(start_ns) AS sort_key, max(end_ns) AS trace_end, \
             sum(status_code = {ERROR}) AS errors FROM spans WHERE day <= {} \
             GROUP BY trace_id HAVING trace_end >= {start} AND sort_key <= {end} {errors} {} \
             ORDER BY sort_key DESC, trace_id DESC LIMIT {}",
            date_literal(day_of(end)),
            after(query.cursor.as_ref()),
            query.limit
        )
    } else {
        format!(
            "SELECT trace_id, max(start_ns) AS sort_key FROM spans \
             WHERE {days} AND start_ns BETWEEN {start} AND {end} AND {} \
             GROUP BY trace_id HAVING 1 {} ORDER BY sort_key DESC, trace_id DESC LIMIT {}",
            filters.join(" AND "),
            after(query.cursor.as_ref()),
            query.limit
        )
    };
    let data = client.query(&sql).await?;
    let mut reader = Reader::new(&data);
    let mut found: Vec<(TraceId, i64)> = Vec::new();
    while !reader.is_empty() {
        let trace_id = TraceId(reader.fixed()?);
        let key = reader.u64()?;
        if filters.is_empty() {
            reader.u64()?;
            reader.u64()?;
        }
        found.push((trace_id, i64::try_from(key).unwrap_or(i64::MAX)));
    }
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

/// The span-level conditions, each only ever holding quoted values.
fn span_filters(query: &TraceQuery) -> Vec<String> {
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
    for (key, value) in &query.attributes {
        let (key, value) = (quote(key), quote(value));
        filters.push(format!(
            "(arrayExists((k, v) -> k = {key} AND v = {value}, attr_keys, attr_values) \
             OR arrayExists((k, v) -> k = {key} AND v = {value}, resource_attr_keys, resource_attr_values))"
        ));
    }
    // A prefix compares bytes (18.16 has no startsWith), of string values
    // only, as on SQLite: a number or boolean is no text to search in.
    for (key, prefix) in &query.attribute_prefixes {
        let (key, len, prefix) = (quote(key), prefix.len(), quote(prefix));
        let test = format!("s = 1 AND k = {key} AND substring(v, 1, {len}) = {prefix}");
        filters.push(format!(
            "(arrayExists((k, v, s) -> {test}, attr_keys, attr_values, attr_strings) \
             OR arrayExists((k, v, s) -> {test}, resource_attr_keys, resource_attr_values, \
             resource_attr_strings))"
        ));
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
    if query.error_only && !filters.is_empty() {
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
    use super::date_literal;

    #[test]
    fn dates_are_written_as_clickhouse_reads_them() {
        assert_eq!(date_literal(0), "'1970-01-01'");
        assert_eq!(date_literal(59), "'1970-03-01'");
        assert_eq!(date_literal(20_418), "'2025-11-26'");
        assert_eq!(date_literal(49_672), "'2105-12-31'");
        assert_eq!(date_literal(u16::MAX), "'2105-12-31'");
    }
}
