//! Rebuilding a table under its own name, for migrations that 18.16's
//! `ALTER` cannot make (`granules.rs`, `waiting.rs`): a new table takes the
//! name, which the materialized views writing `TO` it follow, and the old
//! rows are moved over by the caller, a day at a time.

use super::http::{ClickHouseError, Client, quote};
use super::rowbinary::Reader;
use std::time::Duration;

/// Longest one statement moving old rows over may run. Measured here at
/// 10 M spans: a day of the trace table in about a minute on two busy
/// cores (`granules.rs`), a slice of the parents' table with its look-up
/// in about 2 s (`waiting.rs`).
pub const COPY_LIMIT: Duration = Duration::from_secs(3600);

/// Puts a new, empty `table` made with `engine` in its place; the old one
/// is renamed `old`. A `new` left by a run cut short before the swap may be
/// empty or half-filled by the views: it is made again.
pub async fn swap_in(
    client: &Client,
    table: &str,
    new: &str,
    old: &str,
    engine: &str,
) -> Result<(), ClickHouseError> {
    client
        .execute(&format!("DROP TABLE IF EXISTS {new}"))
        .await?;
    let create = format!("CREATE TABLE {new} AS {table} ENGINE = {engine}");
    let create = match client.replicas() {
        Some(_) => super::replicated::replicate(&create, client.database()),
        None => create,
    };
    client.execute(&create).await?;
    client
        .execute(&format!("RENAME TABLE {table} TO {old}, {new} TO {table}"))
        .await
}

/// The day partitions a table holds, as `'2026-12-04'` reads them.
pub async fn days(client: &Client, table: &str) -> Result<Vec<String>, ClickHouseError> {
    let data = client
        .query(&format!(
            "SELECT DISTINCT partition FROM system.parts WHERE active AND database = {} \
             AND table = {} ORDER BY partition",
            quote(client.database()),
            quote(table)
        ))
        .await?;
    Reader::new(&data).strings_to_end()
}

/// The table's engine with its settings; empty when there is no such table.
pub async fn engine(client: &Client, table: &str) -> Result<String, ClickHouseError> {
    let data = client
        .query(&format!(
            "SELECT engine_full FROM system.tables WHERE database = {} AND name = {}",
            quote(client.database()),
            quote(table)
        ))
        .await?;
    let mut reader = Reader::new(&data);
    if reader.is_empty() {
        return Ok(String::new());
    }
    reader.string()
}
