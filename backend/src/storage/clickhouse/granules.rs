//! Schema version 8's second half: `spans_by_trace` rebuilt with 256-row
//! granules. A trace is a handful of rows, but with ClickHouse's default
//! 8 192 rows per mark a lookup decompressed the bodies of a whole granule
//! in every part (38 000 rows, 18 MB at 1 M spans); a page of search
//! summaries (20 traces) read a third of the table.
//!
//! 18.16 cannot change a table's granularity, so a new table takes the
//! name (`RENAME`, which the materialized view writing `TO spans_by_trace`
//! follows by name) and the old one's rows are copied in, then it is
//! dropped. Each step is checked first, so a migration cut short runs
//! again: before the swap it starts over; after it, the copy runs again
//! (its rows twice, which every read of the table takes once).

use super::http::{ClickHouseError, Client, quote};
use super::rebuild::{COPY_LIMIT, days, engine, swap_in};

/// Rows per mark of `spans_by_trace`: a trace's bodies are one compressed
/// block or two (a span's body is about 350 bytes), and the marks of 10 M
/// spans (39 000 per column) stay small in memory.
const GRANULE: u32 = 256;
const TABLE: &str = "spans_by_trace";
const NEW: &str = "spans_by_trace_256";
const OLD: &str = "spans_by_trace_8192";

/// Swaps in the small-granule table if not done yet, then moves the old
/// table's rows into it.
pub async fn shrink(client: &Client) -> Result<(), ClickHouseError> {
    let granules = format!("index_granularity = {GRANULE}");
    if !engine(client, TABLE).await?.contains(&granules) {
        let engine =
            format!("MergeTree PARTITION BY day ORDER BY (trace_id, start_ns) SETTINGS {granules}");
        swap_in(client, TABLE, NEW, OLD, &engine).await?;
    }
    if !engine(client, OLD).await?.is_empty() {
        // A day at a time, each dropped once copied: a run cut short
        // copies again at most the day it was at.
        for day in days(client, OLD).await? {
            let day = quote(&day);
            client
                .execute_within(
                    &format!("INSERT INTO {TABLE} SELECT * FROM {OLD} WHERE day = {day}"),
                    COPY_LIMIT,
                )
                .await?;
            client
                .execute(&format!("ALTER TABLE {OLD} DROP PARTITION {day}"))
                .await?;
        }
        client.execute(&format!("DROP TABLE {OLD}")).await?;
    }
    Ok(())
}
