//! Retention on ClickHouse: whole day partitions older than `max_age` are
//! dropped from the span tables and the service graph (stage counts stay, as
//! on SQLite, so rates over old windows keep their answer). A day is kept
//! until all of it is past the cutoff, so up to a day more than `max_age`
//! is kept. `max_db_size` is not supported here (ClickHouse's own disk
//! policies are the tool): it is logged and ignored.
//!
//! On a cluster each otelite drops the partitions of the shard it talks to.
//! ClickHouse 18.16 trap: a restart within `old_parts_lifetime` (8 minutes)
//! of a DROP PARTITION can bring dropped parts back; the next run drops them
//! again.

use super::encode::day_of;
use super::http::{ClickHouseError, Client, quote};
use super::rowbinary::Reader;
use crate::storage::retention::{INTERVAL, Policy};
use tokio::sync::watch;

const TABLES: &[&str] = &[
    "spans",
    "spans_by_trace",
    "span_parents",
    "service_edges",
    "span_attributes",
    "request_edges",
    "edge_children",
    "span_minutes",
];

/// Runs the policy every minute until `stop` turns true.
pub async fn run(client: Client, policy: Policy, mut stop: watch::Receiver<bool>) {
    if policy.max_bytes.is_some() {
        tracing::warn!("max_db_size is not supported with ClickHouse; ignored");
    }
    let Some(max_age) = policy.max_age else {
        return;
    };
    tracing::info!(?max_age, "ClickHouse retention enabled");
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = ticks.tick() => {}
        }
        let cutoff = crate::stage::now_ns().saturating_sub(max_age.as_nanos() as u64);
        match run_once(&client, day_of(cutoff)).await {
            Ok(0) => tracing::debug!("retention run: nothing to drop"),
            Ok(dropped) => tracing::info!(dropped, "retention run: partitions dropped"),
            Err(error) => tracing::warn!(%error, "retention run failed; next try in one interval"),
        }
    }
}

/// Drops every partition of a day before `first_kept_day`; returns how many.
pub async fn run_once(client: &Client, first_kept_day: u16) -> Result<usize, ClickHouseError> {
    let database = match client.cluster() {
        Some(_) => format!("{}_shard", client.database()),
        None => client.database().to_owned(),
    };
    let local = client.local(&database);
    let mut dropped = 0;
    for table in TABLES {
        let data = local
            .query(&format!(
                "SELECT DISTINCT partition, toUInt64(min_date) FROM system.parts \
                 WHERE active AND database = {} AND table = {}",
                quote(&database),
                quote(table)
            ))
            .await?;
        let mut reader = Reader::new(&data);
        while !reader.is_empty() {
            let (partition, day) = (reader.string()?, reader.u64()?);
            if day < u64::from(first_kept_day) {
                local
                    .execute(&format!(
                        "ALTER TABLE {table} DROP PARTITION {}",
                        quote(&partition)
                    ))
                    .await?;
                dropped += 1;
            }
        }
    }
    Ok(dropped)
}
