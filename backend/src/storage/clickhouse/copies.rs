//! Copies of a span that two receivers stored at the same moment (see
//! `migrate-7.sql`): each writer checks "already stored?" before its
//! INSERT, which cannot see a copy being inserted elsewhere. After the
//! INSERT, [`record`] counts the copies of the spans it inserted and writes
//! those stored more than once to `span_copies`, which the stage counts'
//! read subtracts. The last of the copies' INSERTs to answer sees every
//! copy (the others had answered, so were written, before it looked).

use super::encode::{Rows, day_of_minute};
use super::failed::Key;
use super::http::{ClickHouseError, Client};
use super::rowbinary::{Reader, Writer};
use crate::stage::minute_of;
use otelite_model::{SpanId, TraceId};
use std::collections::{HashMap, HashSet};

/// Writes to `span_copies` the spans of `ours` (those this group inserted)
/// that `spans_by_trace` holds more than once, each with its service, the
/// minute its batch arrived and how many copies there are.
pub async fn record(
    client: &Client,
    group: &[&Rows],
    ours: &HashSet<Key>,
) -> Result<(), ClickHouseError> {
    let mut copied = copied(client, ours).await?;
    if copied.is_empty() {
        return Ok(());
    }
    let mut out = Writer::default();
    for rows in group {
        let minute = minute_of(rows.received_ns);
        for span in &rows.spans {
            let facts = &span.facts;
            // Once per span, should the group hold it twice.
            let Some(copies) = copied.remove(&(facts.trace_id, facts.span_id)) else {
                continue;
            };
            out.u16(day_of_minute(minute));
            out.i64(minute);
            out.str(facts.service());
            out.fixed(&facts.trace_id.0);
            out.fixed(&facts.span_id.0);
            out.u64(copies);
        }
    }
    client
        .insert(
            "span_copies",
            "day, minute, service, trace_id, span_id, copies",
            out.0.into(),
        )
        .await
}

/// The spans of `ours` stored more than once, with their number of copies.
async fn copied(
    client: &Client,
    ours: &HashSet<Key>,
) -> Result<HashMap<Key, u64>, ClickHouseError> {
    let mut found = HashMap::new();
    for list in super::write::trace_lists(ours.iter().map(|(trace, _)| *trace)) {
        let data = client
            .query(&format!(
                "SELECT trace_id, span_id, count() AS copies FROM spans_by_trace \
                 PREWHERE trace_id IN ({list}) GROUP BY trace_id, span_id HAVING copies > 1"
            ))
            .await?;
        let mut reader = Reader::new(&data);
        while !reader.is_empty() {
            let key = (TraceId(reader.fixed()?), SpanId(reader.fixed()?));
            let copies = reader.u64()?;
            if ours.contains(&key) {
                found.insert(key, copies);
            }
        }
    }
    Ok(found)
}
