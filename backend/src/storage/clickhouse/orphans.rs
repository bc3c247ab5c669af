//! Orphans on ClickHouse: the spans of `span_parents` (every stored span
//! with a parent, with when it arrived) whose parent is not in
//! `spans_by_trace`, among those that arrived a grace period ago, counted
//! as SQLite counts its `edge_waiting` rows. The parents are looked up only
//! in the traces of the window's children. On a cluster a trace lives on
//! one shard, so the lookup stays on each shard (`distributed_product_mode
//! = 'local'`, which `Client::query` sends).

use super::http::{ClickHouseError, Client, quote};
use super::rowbinary::Reader;
use crate::storage::Orphans;
use std::time::Duration;

/// The window's orphans: one row per service that has any, then the row for
/// all (`service: None`, always there). `[start_minute, end_minute]` are the
/// minutes of their arrival, as the stage counts'.
pub async fn orphans(
    client: &Client,
    service: Option<&str>,
    start_minute: i64,
    end_minute: i64,
    grace: Duration,
) -> Result<Vec<Orphans>, ClickHouseError> {
    let service = service.map_or(String::new(), |s| format!("service = {} AND", quote(s)));
    let window = format!("{service} received_minute BETWEEN {start_minute} AND {end_minute}");
    // `arrived` is whole seconds, rounded down: `<` and the grace rounded
    // up keep a span out until more than `grace` has passed.
    let grace_s = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    let per_parent = format!(
        "SELECT service, trace_id, parent_span_id, uniqExact(span_id) AS spans FROM span_parents \
         WHERE {window} AND arrived + {grace_s} < toUInt32(now()) \
         AND (trace_id, parent_span_id) NOT IN ( \
             SELECT trace_id, span_id FROM spans_by_trace WHERE trace_id IN ( \
                 SELECT trace_id FROM span_parents WHERE {window})) \
         GROUP BY service, trace_id, parent_span_id"
    );
    let data = client
        .query(&format!(
            "SELECT service, sum(spans), count() FROM ({per_parent}) \
             GROUP BY service ORDER BY service"
        ))
        .await?;
    let mut reader = Reader::new(&data);
    let mut out = Vec::new();
    while !reader.is_empty() {
        out.push(Orphans {
            service: Some(reader.string()?),
            spans: reader.u64()?,
            parents: reader.u64()?,
            grace,
        });
    }
    // A parent may have children in several services: it is one span.
    let data = client
        .query(&format!(
            "SELECT toUInt64(sum(spans)), count() FROM ( \
                 SELECT sum(spans) AS spans FROM ({per_parent}) \
                 GROUP BY trace_id, parent_span_id)"
        ))
        .await?;
    let mut reader = Reader::new(&data);
    out.push(Orphans {
        service: None,
        spans: reader.u64()?,
        parents: reader.u64()?,
        grace,
    });
    Ok(out)
}
