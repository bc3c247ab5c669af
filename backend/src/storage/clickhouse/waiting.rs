//! Schema version 9's second half: `span_parents` keeps only the spans whose
//! parent is not stored. Version 9's view leaves out new spans whose parent
//! came in their request, but the rows stored before it are every span with
//! a parent, and each orphan count looked all of them up (34 s for
//! `/api/rates` at 10 M spans).
//!
//! As for the trace table's granules (`granules.rs`): a new table takes the
//! name, which the view follows, and the old one's rows move over a day at
//! a time, only those whose parent `spans_by_trace` does not hold. A span
//! whose parent is stored stays out of every later count, so dropping its
//! row changes no answer. A run cut short copies a day again at most, and
//! the count takes each span once.

use super::http::{ClickHouseError, Client, quote};
use super::rebuild::{COPY_LIMIT, days, engine, swap_in};
use super::rowbinary::Reader;

const TABLE: &str = "span_parents";
const OLD: &str = "span_parents_before_9";
const NEW: &str = "span_parents_9";
/// Rows of the old table per slice. Measured peaks of ClickHouse's memory
/// for one statement at 10 M spans: a 5.8 M-row day at once 898 MB, in
/// thirds 706 MB each; a 3.2 M-row day in halves 226 MB each.
const SLICE_ROWS: u64 = 2_000_000;

/// Swaps in an empty table if not done yet, then moves the old table's
/// waiting spans into it.
pub async fn keep_waiting(client: &Client) -> Result<(), ClickHouseError> {
    if engine(client, OLD).await?.is_empty() {
        let engine = "MergeTree PARTITION BY day ORDER BY (received_minute, service, trace_id)";
        swap_in(client, TABLE, NEW, OLD, engine).await?;
    }
    for day in days(client, OLD).await? {
        let day = quote(&day);
        // In slices of traces, so that the set of stored (trace, span) ids
        // looked up stays near SLICE_ROWS.
        let rows = count(
            client,
            &format!("SELECT count() FROM {OLD} WHERE day = {day}"),
        )
        .await?;
        let slices = rows.div_ceil(SLICE_ROWS).max(1);
        for slice in 0..slices {
            let of_slice = format!("day = {day} AND cityHash64(trace_id) % {slices} = {slice}");
            client
                .execute_within(
                    &format!(
                        "INSERT INTO {TABLE} SELECT * FROM {OLD} WHERE {of_slice} \
                         AND (trace_id, parent_span_id) NOT IN ( \
                             SELECT trace_id, span_id FROM spans_by_trace WHERE trace_id IN ( \
                                 SELECT trace_id FROM {OLD} WHERE {of_slice}))"
                    ),
                    COPY_LIMIT,
                )
                .await?;
        }
        client
            .execute(&format!("ALTER TABLE {OLD} DROP PARTITION {day}"))
            .await?;
    }
    client
        .execute(&format!("DROP TABLE IF EXISTS {OLD}"))
        .await?;
    Ok(())
}

/// The one number a `SELECT count()` answers.
async fn count(client: &Client, sql: &str) -> Result<u64, ClickHouseError> {
    Reader::new(&client.query(sql).await?).u64()
}
