//! Writing a group of batches: drop spans already stored (a retried batch),
//! insert the rest into `spans_in` in one INSERT (the materialized views
//! fill the query tables and the stage counts within it), then the spans
//! lost before the store (invalid, dropped by a rule) into `stage_losses`,
//! then the copies another receiver stored at the same moment (`copies`),
//! then the service edges (`edges`). Each INSERT is synchronous: the callers hear `Ok`
//! only after ClickHouse has written it.
//!
//! A failed attempt is tried once more after [`RETRY_DELAY`]; the retry
//! asks again which spans are stored, so an INSERT that ClickHouse took
//! but whose answer was lost is neither written nor counted twice. A
//! group whose attempts all fail is booked in `failed` (lost at the store,
//! taken back if the spans come again), and [`flush_failures`] writes the
//! bookings once ClickHouse answers.

use super::encode::{Rows, SPAN_COLUMNS, day_of_minute};
use super::failed::{Failures, Key, Pending};
use super::http::{ClickHouseError, Client, hex_literal};
use super::rowbinary::{Reader, Writer};
use crate::stage::{Stage, minute_of};
use crate::storage::{CounterPoint, Lost, Stored};
use otelite_model::{SpanId, TraceId};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Trace ids per query that lists them ("already stored?", copies): keeps
/// the SQL under ClickHouse's `max_query_size` (256 KiB).
const IDS_PER_QUERY: usize = 2000;

/// Attempts at a group's INSERT: a second one rides out a dropped
/// connection or a restart of ClickHouse; a longer outage is the client's
/// to retry (503).
const ATTEMPTS: usize = 2;
/// Wait between attempts.
const RETRY_DELAY: Duration = Duration::from_millis(250);

/// Columns of a `stage_losses` row, as `loss_row` writes them.
const LOSS_COLUMNS: &str = "day, service, stage, reason, minute, n";

/// Writes a group of prepared batches in one INSERT (ClickHouse wants few,
/// large inserts: its CPU per span falls as inserts grow, see
/// BENCHMARKS.md); one `Stored` per batch, in order. `Err` when
/// the spans were not stored: they are booked in `failures` (counted at
/// process and analyze, lost at the store) for [`flush_failures`] to write.
pub async fn spans(
    client: &Client,
    failures: &mut Failures,
    group: &[&Rows],
) -> Result<Vec<Stored>, ClickHouseError> {
    // Spans an earlier attempt sent: found stored, they are this group's.
    let mut sent: HashSet<Key> = HashSet::new();
    let mut attempt = 1;
    let (results, found, inserted) = loop {
        match attempt_insert(client, group, &mut sent).await {
            Ok(done) => break done,
            Err(error) if attempt >= ATTEMPTS => {
                failures.failed(group);
                return Err(error);
            }
            Err(error) => {
                tracing::warn!(%error, attempt, "ClickHouse: span insert failed; trying again");
                attempt += 1;
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    };
    // Every span of the group is stored now, and counted by the INSERT
    // that stored it: any failure booked for it is taken back.
    failures.stored(found.iter().chain(&inserted));
    // After the spans: a crash between the two leaves no loss recorded,
    // and the retry (its spans found stored) records it then, once. Spans
    // dropped by a rule are counted at process by the same INSERT
    // (`stage_losses_processed_mv`).
    let lost: Vec<(&Lost, i64)> = group
        .iter()
        .flat_map(|rows| {
            let minute = minute_of(rows.received_ns);
            rows.lost.iter().map(move |l| (l, minute))
        })
        .collect();
    insert_losses(client, &lost).await?;
    // The spans are stored: a failure past here loses edges, or counts
    // copies stored by another receiver at the same moment twice, but
    // loses no span.
    let ours: HashSet<Key> = inserted
        .iter()
        .chain(found.intersection(&sent))
        .copied()
        .collect();
    if let Err(error) = super::copies::record(client, group, &ours).await {
        tracing::error!(%error, "ClickHouse: cannot look for copies stored by other receivers");
    }
    if let Err(error) = super::edges::write(client, group).await {
        tracing::error!(%error, "ClickHouse: cannot record service edges");
    }
    Ok(results)
}

/// One attempt: one `Stored` per batch, the keys of the group's spans
/// found stored before it, and those it inserted. `sent` gathers the spans
/// of attempts that failed, which a later attempt may find stored.
async fn attempt_insert(
    client: &Client,
    group: &[&Rows],
    sent: &mut HashSet<Key>,
) -> Result<(Vec<Stored>, HashSet<Key>, Vec<Key>), ClickHouseError> {
    let stored = stored_already(client, group).await?;
    let mut out = Writer::default();
    let mut seen: HashSet<Key> = HashSet::new();
    let mut to_send: Vec<Key> = Vec::new();
    let mut results = Vec::with_capacity(group.len());
    for rows in group {
        let mut new = 0;
        for span in &rows.spans {
            let key = (span.facts.trace_id, span.facts.span_id);
            if !seen.insert(key) {
                continue;
            }
            if stored.contains(&key) {
                // Stored by an earlier attempt whose answer was lost: ours,
                // and counted by that INSERT. Otherwise a copy stored when
                // it first came, counted then.
                new += u64::from(sent.contains(&key));
                continue;
            }
            rows.row(&mut out, span);
            new += 1;
            to_send.push(key);
        }
        results.push(Stored {
            inserted: new,
            duplicates: rows.len() as u64 - new,
            conflicts: 0,
        });
    }
    // The INSERT also counts each new span at process, analyze and store
    // (`stage_counts_mv`): spans and their counts are written together.
    if !to_send.is_empty()
        && let Err(error) = client.insert("spans_in", SPAN_COLUMNS, out.0.into()).await
    {
        // ClickHouse may have taken them even so.
        sent.extend(to_send);
        return Err(error);
    }
    Ok((results, stored, to_send))
}

/// Writes the failures booked so far (see `failed`), first taking back
/// those of spans ClickHouse has after all. What cannot be written stays
/// booked for the next call.
pub async fn flush_failures(
    client: &Client,
    failures: &mut Failures,
) -> Result<(), ClickHouseError> {
    if !failures.has_pending() {
        return Ok(());
    }
    let found = stored_among(client, failures.unchecked()).await?;
    failures.stored(&found);
    let Pending { counts, losses } = failures.take_pending();
    let count_rows: Vec<Count> = counts
        .iter()
        .map(|((service, stage, minute), n)| (service.clone(), *stage, *minute, *n as u64))
        .collect();
    if let Err(error) = insert_counts(client, &count_rows).await {
        failures.put_back(Pending { counts, losses });
        return Err(error);
    }
    let mut out = Writer::default();
    for ((service, stage, reason, minute), n) in losses.iter().filter(|(_, n)| **n != 0) {
        // Negative: a take-back, as its two's complement (see `failed`).
        loss_row(&mut out, service, *stage, reason, *minute, *n as u64);
    }
    if !out.0.is_empty()
        && let Err(error) = client
            .insert("stage_losses", LOSS_COLUMNS, out.0.into())
            .await
    {
        failures.put_back(Pending {
            counts: HashMap::new(),
            losses,
        });
        return Err(error);
    }
    Ok(())
}

/// One stage count: service, stage, minute (unix seconds), spans (a
/// negative change as its two's complement).
type Count = (String, Stage, i64, u64);

/// Which of `keys` are in `spans_by_trace`.
async fn stored_among(client: &Client, keys: &[Key]) -> Result<HashSet<Key>, ClickHouseError> {
    let lists = trace_lists(keys.iter().map(|(trace, _)| *trace));
    let mut found = stored_in_traces(client, &lists).await?;
    let wanted: HashSet<&Key> = keys.iter().collect();
    found.retain(|key| wanted.contains(key));
    Ok(found)
}

/// The (trace, span) ids of the group that are already in `spans_by_trace`.
async fn stored_already(
    client: &Client,
    group: &[&Rows],
) -> Result<HashSet<(TraceId, SpanId)>, ClickHouseError> {
    let traces = group
        .iter()
        .flat_map(|rows| &rows.spans)
        .map(|s| s.facts.trace_id);
    stored_in_traces(client, &trace_lists(traces)).await
}

/// The distinct ids of `traces` as SQL lists, one per query of the form
/// `… WHERE trace_id IN (list)`: at most `IDS_PER_QUERY` each.
pub(super) fn trace_lists(traces: impl Iterator<Item = TraceId>) -> Vec<String> {
    let distinct: Vec<TraceId> = traces.collect::<HashSet<_>>().into_iter().collect();
    distinct
        .chunks(IDS_PER_QUERY)
        .map(|chunk| {
            let ids: Vec<String> = chunk.iter().map(|t| hex_literal(&t.0)).collect();
            ids.join(",")
        })
        .collect()
}

/// The (trace, span) ids stored in the traces of `lists` (`trace_lists`).
async fn stored_in_traces(
    client: &Client,
    lists: &[String],
) -> Result<HashSet<(TraceId, SpanId)>, ClickHouseError> {
    let mut found = HashSet::new();
    for list in lists {
        let data = client
            .query(&format!(
                "SELECT trace_id, span_id FROM spans_by_trace PREWHERE trace_id IN ({list})"
            ))
            .await?;
        let mut reader = Reader::new(&data);
        while !reader.is_empty() {
            found.insert((TraceId(reader.fixed()?), SpanId(reader.fixed()?)));
        }
    }
    Ok(found)
}

async fn insert_counts(client: &Client, counts: &[Count]) -> Result<(), ClickHouseError> {
    let mut out = Writer::default();
    let mut any = false;
    for (service, stage, minute, n) in counts.iter().filter(|c| c.3 != 0) {
        count_row(&mut out, service, *stage, *minute, *n);
        any = true;
    }
    if !any {
        return Ok(());
    }
    client
        .insert(
            "stage_counts",
            "day, service, stage, minute, n",
            out.0.into(),
        )
        .await
}

/// Spans lost before the store, each with the minute its batch arrived.
async fn insert_losses(client: &Client, lost: &[(&Lost, i64)]) -> Result<(), ClickHouseError> {
    let mut out = Writer::default();
    for (loss, minute) in lost.iter().filter(|(l, _)| l.n != 0) {
        loss_row(
            &mut out,
            &loss.service,
            loss.stage,
            &loss.reason,
            *minute,
            loss.n,
        );
    }
    if out.0.is_empty() {
        return Ok(());
    }
    client
        .insert("stage_losses", LOSS_COLUMNS, out.0.into())
        .await
}

fn loss_row(out: &mut Writer, service: &str, stage: Stage, reason: &str, minute: i64, n: u64) {
    out.u16(day_of_minute(minute));
    out.str(service);
    out.str(stage.as_str());
    out.str(reason);
    out.i64(minute);
    out.u64(n);
}

fn count_row(out: &mut Writer, service: &str, stage: Stage, minute: i64, n: u64) {
    out.u16(day_of_minute(minute));
    out.str(service);
    out.str(stage.as_str());
    out.i64(minute);
    out.u64(n);
}

/// Last values of cumulative counter series, by (service, stage, series).
pub type SeriesMemory = HashMap<(String, Stage, String), u64>;

/// Exporter counter readings → per-minute increments, as the SQLite store
/// does (see `CounterPoint::increment`): a cumulative point adds what it
/// grew since the series' last reading (all of it after the app
/// restarted); what is taken from a stage (live spans from total) goes to
/// `stage_counts_taken`, `n` being unsigned. The caller serialises calls.
pub async fn counters(
    client: &Client,
    memory: &mut SeriesMemory,
    points: &[CounterPoint],
) -> Result<(), ClickHouseError> {
    let mut counts = Writer::default();
    let mut taken = Writer::default();
    let mut losses = Writer::default();
    let mut series = Writer::default();
    let mut any_series = false;
    let version = crate::stage::now_ns();
    for point in points {
        let last = if point.cumulative {
            let key = (point.service.clone(), point.stage, point.series.clone());
            let last = match memory.get(&key) {
                Some(last) => Some(*last),
                None => last_value(client, point).await?,
            };
            memory.insert(key, point.value);
            series.str(&point.service);
            series.str(point.stage.as_str());
            series.str(&point.series);
            series.u64(point.value);
            series.u64(version);
            any_series = true;
            last
        } else {
            None
        };
        let increment = point.increment(last);
        let minute = minute_of(point.time_ns);
        let (service, stage) = (&point.service, point.stage);
        match &point.reason {
            // Spans lost at the stage, by the SDK's `error.type`.
            Some(reason) if increment > 0 => loss_row(
                &mut losses,
                service,
                stage,
                reason,
                minute,
                increment.unsigned_abs(),
            ),
            Some(_) => {}
            None if increment > 0 => count_row(
                &mut counts,
                service,
                stage,
                minute,
                increment.unsigned_abs(),
            ),
            None if increment < 0 => {
                count_row(&mut taken, service, stage, minute, increment.unsigned_abs())
            }
            None => {}
        }
    }
    if !losses.0.is_empty() {
        client
            .insert("stage_losses", LOSS_COLUMNS, losses.0.into())
            .await?;
    }
    if any_series {
        client
            .insert(
                "exporter_series",
                "service, stage, series, value, version",
                series.0.into(),
            )
            .await?;
    }
    for (table, rows) in [("stage_counts", counts), ("stage_counts_taken", taken)] {
        if !rows.0.is_empty() {
            client
                .insert(table, "day, service, stage, minute, n", rows.0.into())
                .await?;
        }
    }
    Ok(())
}

/// A series' last value as another process (or this one before a restart)
/// stored it.
async fn last_value(client: &Client, point: &CounterPoint) -> Result<Option<u64>, ClickHouseError> {
    use super::http::quote;
    let data = client
        .query(&format!(
            "SELECT argMax(value, version) FROM exporter_series \
             WHERE service = {} AND stage = {} AND series = {} GROUP BY service",
            quote(&point.service),
            quote(point.stage.as_str()),
            quote(&point.series)
        ))
        .await?;
    let mut reader = Reader::new(&data);
    if reader.is_empty() {
        return Ok(None);
    }
    Ok(Some(reader.u64()?))
}
