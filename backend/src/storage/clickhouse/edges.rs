//! Service edges from what the store holds, so that they come out the same
//! whichever receivers stored which spans, and once however many copies of
//! a batch were stored (see `migrate-4.sql`):
//!
//! - a call whose parent is in the same request is decided from the
//!   request alone and summed per request in `request_edges`, keyed by a
//!   hash of the request's span ids: every copy of the request writes the
//!   same rows, and they are read once per key;
//! - a call whose parent is elsewhere is written as its child alone to
//!   `edge_children`, and joined with its parent in `spans_by_trace` when
//!   read, once per child: the parent may reach another receiver, before
//!   or after the child.

use super::encode::{Rows, day_of, day_of_minute};
use super::http::{ClickHouseError, Client};
use super::rowbinary::{Reader, Writer};
use crate::stage::minute_of;
use crate::storage::Dependency;
use futures_util::future::try_join_all;
use otelite_model::{SpanId, TraceId};
use std::collections::BTreeMap;

/// Calls and errors of one parent → child pair in one minute.
type Sums = BTreeMap<(String, String, i64), (u64, u64)>;

/// Writes the edges of these requests (all their spans, stored now or
/// before: a copy whose spans were all stored already writes the same rows
/// again, which reads ignore).
pub async fn write(client: &Client, group: &[&Rows]) -> Result<(), ClickHouseError> {
    let mut summed = Writer::default();
    let mut children = Writer::default();
    for rows in group {
        let (sums, orphans) = of_request(rows);
        let request = request_key(rows);
        for ((parent, child, minute), (calls, errors)) in sums {
            summed.u16(day_of_minute(minute));
            summed.str(&parent);
            summed.str(&child);
            summed.i64(minute);
            summed.u64(request);
            summed.u64(calls);
            summed.u64(errors);
        }
        for span in orphans {
            let facts = &span.facts;
            children.u16(day_of(facts.start_ns));
            children.i64(minute_of(facts.start_ns));
            children.fixed(&facts.trace_id.0);
            children.fixed(&facts.span_id.0);
            children.fixed(&facts.parent_span_id.map_or([0; 8], |p| p.0));
            children.str(facts.service());
            children.u8(u8::from(facts.is_error));
        }
    }
    if !summed.0.is_empty() {
        client
            .insert(
                "request_edges",
                "day, parent, child, minute, request, calls, errors",
                summed.0.into(),
            )
            .await?;
    }
    if !children.0.is_empty() {
        client
            .insert(
                "edge_children",
                "day, minute, trace_id, span_id, parent_span_id, service, is_error",
                children.0.into(),
            )
            .await?;
    }
    Ok(())
}

/// The calls between services within one request, by the child's start
/// minute, and the spans whose parent is not in the request.
fn of_request(rows: &Rows) -> (Sums, Vec<&super::encode::EncodedSpan>) {
    let mut sums = Sums::new();
    let mut orphans = Vec::new();
    for span in &rows.spans {
        let facts = &span.facts;
        if facts.parent_span_id.is_none() {
            continue;
        }
        match rows.parent_in_request(span).map(|p| p.facts.service()) {
            Some(parent) if parent != facts.service() => {
                let key = (
                    parent.to_owned(),
                    facts.service().to_owned(),
                    minute_of(facts.start_ns),
                );
                let sum = sums.entry(key).or_default();
                sum.0 += 1;
                sum.1 += u64::from(facts.is_error);
            }
            Some(_) => {}
            None => orphans.push(span),
        }
    }
    (sums, orphans)
}

/// A request's identity: FNV-1a over its sorted (trace, span) ids, the same
/// in every process and build (a retried request holds the same spans).
pub fn request_key(rows: &Rows) -> u64 {
    let mut ids: Vec<(TraceId, SpanId)> = rows
        .spans
        .iter()
        .map(|s| (s.facts.trace_id, s.facts.span_id))
        .collect();
    ids.sort_unstable_by_key(|(t, s)| (t.0, s.0));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (trace, span) in ids {
        for byte in trace.0.iter().chain(span.0.iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The service graph between `start_ns` and `end_ns`, by the calls'
/// minute: version 3's sums, the requests' sums once per request, and the
/// children joined with their parents once per child.
pub async fn read(
    client: &Client,
    start_ns: u64,
    end_ns: u64,
) -> Result<Vec<Dependency>, ClickHouseError> {
    let minutes = format!(
        "minute BETWEEN {} AND {}",
        minute_of(start_ns),
        minute_of(end_ns)
    );
    let clustered = client.cluster().is_some();
    // GLOBAL on a cluster only: the parents may sit on any shard's
    // Distributed table (a plain JOIN or IN there is refused), but on one
    // server it turns the IN set into a temporary table that the primary
    // key cannot use (every span read: 110 ms against 6 ms at 1 M spans).
    let global = if clustered { "GLOBAL " } else { "" };
    let per_request = if clustered {
        // Copies of a request may sit on different shards (rows go to a
        // random one): grouped by request across them.
        format!(
            "SELECT parent, child, sum(calls), sum(errors) FROM ( \
               SELECT parent, child, any(calls) AS calls, any(errors) AS errors \
               FROM request_edges WHERE {minutes} GROUP BY minute, parent, child, request) \
             GROUP BY parent, child"
        )
    } else {
        // FINAL merges the sorted parts and keeps each (minute, parent,
        // child, request) once, as the grouping above does, without
        // hashing every row's strings: a third of the time at 810 000 rows.
        format!(
            "SELECT parent, child, sum(calls), sum(errors) FROM request_edges FINAL \
             WHERE {minutes} GROUP BY parent, child"
        )
    };
    let mut sums: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let queries = [
        format!(
            "SELECT parent, child, sum(calls), sum(errors) FROM service_edges \
             WHERE {minutes} GROUP BY parent, child"
        ),
        per_request,
        format!(
            "SELECT parent, child, count(), sum(is_error) FROM ( \
               SELECT trace_id, parent_span_id, any(service) AS child, any(is_error) AS is_error \
               FROM edge_children WHERE {minutes} GROUP BY trace_id, span_id, parent_span_id) \
             {global}ANY INNER JOIN ( \
               SELECT trace_id, span_id AS parent_span_id, any(service) AS parent \
               FROM spans_by_trace WHERE trace_id {global}IN \
                 (SELECT trace_id FROM edge_children WHERE {minutes}) \
               GROUP BY trace_id, span_id) USING (trace_id, parent_span_id) \
             WHERE parent != child GROUP BY parent, child"
        ),
    ];
    // The three at once: the request sums take most of the time.
    let answers = try_join_all(queries.iter().map(|sql| client.query(sql))).await?;
    for data in answers {
        let mut reader = Reader::new(&data);
        while !reader.is_empty() {
            let key = (reader.string()?, reader.string()?);
            let (calls, errors) = (reader.u64()?, reader.u64()?);
            let sum = sums.entry(key).or_default();
            sum.0 += calls;
            sum.1 += errors;
        }
    }
    Ok(sums
        .into_iter()
        .filter(|(_, (calls, _))| *calls > 0)
        .map(|((parent, child), (call_count, error_count))| Dependency {
            parent,
            child,
            call_count,
            error_count,
        })
        .collect())
}
