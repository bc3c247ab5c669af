//! Writing a group of batches: drop spans already stored (a retried batch),
//! insert the rest into `spans_in` in one INSERT (the materialized views
//! fill the query tables and the stage counts within it), then the spans
//! lost before the store (invalid, dropped by a rule) into `stage_losses`,
//! then the service edges (`edges`). Each INSERT is synchronous: the callers hear `Ok`
//! only after ClickHouse has written it.

use super::encode::{Rows, SPAN_COLUMNS, day_of_minute};
use super::http::{ClickHouseError, Client, hex_literal};
use super::rowbinary::{Reader, Writer};
use crate::analyze::SpanFacts;
use crate::analyze::policy;
use crate::stage::{Stage, minute_of};
use crate::storage::{CounterPoint, Lost, Stored};
use otelite_model::{SpanId, TraceId};
use std::collections::{HashMap, HashSet};

/// Trace ids per "already stored?" query: keeps the SQL under ClickHouse's
/// `max_query_size` (256 KiB).
const IDS_PER_QUERY: usize = 2000;

/// One stage count: service, stage, minute (unix seconds), spans.
type Count = (String, Stage, i64, u64);

/// Columns of a `stage_losses` row, as `loss_row` writes them.
const LOSS_COLUMNS: &str = "day, service, stage, reason, minute, n";

/// Why spans were lost at the store: their INSERT failed (as on SQLite).
const WRITE_FAILED: &str = "write_failed";

/// Writes a group of prepared batches in one INSERT (ClickHouse wants few,
/// large inserts: its CPU per span falls as inserts grow, see
/// BENCHMARKS.md); one `Stored` per batch, in order. `Err` when
/// the spans were not stored (their process and analyze counts are still
/// recorded, so the loss shows at the store stage).
pub async fn spans(client: &Client, group: &[&Rows]) -> Result<Vec<Stored>, ClickHouseError> {
    let stored = match stored_already(client, group).await {
        Ok(stored) => stored,
        Err(error) => {
            record_counts(client, group).await;
            return Err(error);
        }
    };
    let mut out = Writer::default();
    let mut seen: HashSet<(TraceId, SpanId)> = HashSet::new();
    let mut inserted: Vec<&SpanFacts> = Vec::new();
    let mut results = Vec::with_capacity(group.len());
    for rows in group {
        let before = inserted.len();
        for span in &rows.spans {
            let key = (span.facts.trace_id, span.facts.span_id);
            // A span already stored was counted when it first came.
            if stored.contains(&key) || !seen.insert(key) {
                continue;
            }
            rows.row(&mut out, span);
            inserted.push(&span.facts);
        }
        let new = (inserted.len() - before) as u64;
        results.push(Stored {
            inserted: new,
            duplicates: rows.len() as u64 - new,
            conflicts: 0,
        });
    }
    // The INSERT also counts each new span at process, analyze and store
    // (`stage_counts_mv`): spans and their counts are written together.
    if !inserted.is_empty()
        && let Err(error) = client.insert("spans_in", SPAN_COLUMNS, out.0.into()).await
    {
        record_counts(client, group).await;
        return Err(error);
    }
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
    // The spans are stored: a failure past here loses edges, not spans.
    if let Err(error) = super::edges::write(client, group).await {
        tracing::error!(%error, "ClickHouse: cannot record service edges");
    }
    Ok(results)
}

/// What SQLite keeps of batches that could not be stored: their kept spans
/// counted at process and analyze and lost at the store (`write_failed`),
/// their invalid spans lost at process. Spans dropped by a rule are left
/// to the retry, which counts them when it is stored, as the kept ones.
async fn record_counts(client: &Client, group: &[&Rows]) {
    let mut counts: Vec<Count> = Vec::new();
    let mut lost: Vec<(Lost, i64)> = Vec::new();
    for rows in group {
        let minute = minute_of(rows.received_ns);
        for (service, stage, n) in &rows.counted {
            let dropped: u64 = rows
                .lost
                .iter()
                .filter(|l| &l.service == service && policy::rule_of(&l.reason).is_some())
                .map(|l| l.n)
                .sum();
            // Process counted the dropped spans too; analyze only the kept.
            let n = match stage {
                Stage::Process => n.saturating_sub(dropped),
                _ => *n,
            };
            counts.push((service.clone(), *stage, minute, n));
            if *stage == Stage::Analyze && n > 0 {
                let failed = Lost {
                    service: service.clone(),
                    stage: Stage::Store,
                    reason: WRITE_FAILED.to_owned(),
                    n,
                };
                lost.push((failed, minute));
            }
        }
        lost.extend(
            rows.lost
                .iter()
                .filter(|l| policy::rule_of(&l.reason).is_none())
                .map(|l| (l.clone(), minute)),
        );
    }
    if let Err(error) = insert_counts(client, &counts).await {
        tracing::error!(%error, "ClickHouse: cannot record the stage counts of a failed write");
    }
    let lost: Vec<(&Lost, i64)> = lost.iter().map(|(l, minute)| (l, *minute)).collect();
    if let Err(error) = insert_losses(client, &lost).await {
        tracing::error!(%error, "ClickHouse: cannot record the losses of a failed write");
    }
}

/// The (trace, span) ids of the group that are already in `spans_by_trace`.
async fn stored_already(
    client: &Client,
    group: &[&Rows],
) -> Result<HashSet<(TraceId, SpanId)>, ClickHouseError> {
    let traces: Vec<TraceId> = group
        .iter()
        .flat_map(|rows| &rows.spans)
        .map(|s| s.facts.trace_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut found = HashSet::new();
    for chunk in traces.chunks(IDS_PER_QUERY) {
        let list: Vec<String> = chunk.iter().map(|t| hex_literal(&t.0)).collect();
        let data = client
            .query(&format!(
                "SELECT trace_id, span_id FROM spans_by_trace WHERE trace_id IN ({})",
                list.join(",")
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
    for (service, stage, minute, n) in counts.iter().filter(|c| c.3 > 0) {
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
    for (loss, minute) in lost.iter().filter(|(l, _)| l.n > 0) {
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
