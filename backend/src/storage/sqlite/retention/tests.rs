use super::*;
use crate::storage::retention::{Age, ByteSize};
use crate::storage::sqlite::{WriterThread, search};
use crate::storage::{QueueLimits, TraceQuery};
use crate::test_fixtures as fixtures;
use otelite_model::{AnyValue, Span, SpanKind, TraceId};
use std::path::Path;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MINUTE: i64 = 60_000_000_000;
/// The present of these tests: 2024-05-01T12:00:00Z.
const NOW: i64 = 1_714_564_800_000_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn open(path: &Path) -> Result<(SqliteStore, WriterThread), StoreError> {
    SqliteStore::open(
        path,
        QueueLimits {
            requests: 64,
            spans: 100_000,
        },
    )
}

fn trace_id(n: u32) -> TraceId {
    let mut id = [0xab; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    TraceId(id)
}

/// Trace `n`: a `shop` root at `start` and `children` `db` spans starting
/// `child_offset` later (an edge shop → db each), every span with a
/// searchable `order.id` and a body of about `padding` bytes.
fn trace(n: u32, start: i64, children: u8, child_offset: i64, padding: usize) -> Vec<Span> {
    let (shop, db) = (fixtures::resource("shop"), fixtures::resource("db"));
    (0..=children)
        .map(|i| {
            let start = (start + if i == 0 { 0 } else { child_offset }) as u64;
            let (resource, kind) = if i == 0 {
                (&shop, SpanKind::Server)
            } else {
                (&db, SpanKind::Client)
            };
            fixtures::span(0, i + 1)
                .trace_id(trace_id(n))
                .parent((i > 0).then_some(1))
                .resource(resource)
                .name(format!("op{i}"))
                .kind(kind)
                .times(start, start + 1000)
                .attribute("order.id", AnyValue::Int(i64::from(n)))
                .attribute("note", AnyValue::String("x".repeat(padding)))
                .build()
        })
        .collect()
}

/// Stores `spans` as one request received at `received_ns`.
async fn write(store: &SqliteStore, spans: Vec<Span>, received_ns: i64) -> Result<u64, StoreError> {
    let stored = fixtures::write(store, spans, received_ns as u64).await?;
    Ok(stored.inserted)
}

fn found_by_order(store_conn: &rusqlite::Connection, n: u32) -> Result<usize, StoreError> {
    let query = TraceQuery {
        attributes: vec![("order.id".into(), n.to_string())],
        limit: 10,
        ..TraceQuery::default()
    };
    Ok(search(store_conn, &query)?.len())
}

fn count(conn: &rusqlite::Connection, sql: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(sql, [], |r| r.get(0))?)
}

fn not_stopped() -> watch::Receiver<bool> {
    watch::channel(false).1
}

#[tokio::test]
async fn age_retention_deletes_the_traces_that_started_before_the_cutoff() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, writer) = open(&dir.path().join("t.db"))?;
    let cutoff = NOW - HOUR.as_nanos() as i64;
    // 1500 old traces of 3 spans (several batches), 10 kept ones, and one
    // that straddles the cutoff: it started before, so it goes whole.
    for chunk in 0..15 {
        let old: Vec<Span> = (0..100)
            .flat_map(|i| {
                trace(
                    chunk * 100 + i,
                    cutoff - 10 * MINUTE + i64::from(i),
                    2,
                    1000,
                    10,
                )
            })
            .collect();
        assert_eq!(write(&store, old, cutoff - 10 * MINUTE).await?, 300);
    }
    let kept: Vec<Span> = (5000..5010)
        .flat_map(|n| trace(n, cutoff + MINUTE, 2, 1000, 10))
        .collect();
    write(&store, kept.clone(), cutoff + MINUTE).await?;
    write(&store, trace(6000, cutoff - 1, 1, 2 * MINUTE, 10), cutoff).await?;

    let policy = Policy::new(Some(Age(HOUR)), None);
    let report = run_once(&store, &policy, NOW, &not_stopped()).await?;
    assert_eq!(report.deleted_spans, 4502);
    assert_eq!(report.deleted_traces, 1501);
    assert!(report.batches >= 3, "{report:?}");
    let totals = store.retention_totals();
    assert_eq!(
        (totals.deleted_spans, totals.batches, totals.runs),
        (4502, report.batches, 1)
    );

    let (spans, traces, oldest, edges_before, old_found, kept_found) = store
        .read(move |conn| {
            Ok((
                count(conn, "SELECT coalesce(sum(span_count), 0) FROM span_groups")?,
                count(conn, "SELECT count(*) FROM traces")?,
                count(conn, "SELECT min(start_ns) FROM span_groups")?,
                count(
                    conn,
                    &format!(
                        "SELECT count(*) FROM service_edges WHERE minute * 1000000000 < {cutoff}"
                    ),
                )?,
                found_by_order(conn, 7)? + found_by_order(conn, 6000)?,
                found_by_order(conn, 5003)?,
            ))
        })
        .await?;
    assert_eq!((spans, traces), (30, 10));
    assert!(oldest >= cutoff);
    assert_eq!(edges_before, 0, "edges of deleted minutes go too");
    assert_eq!(
        old_found, 0,
        "deleted spans are no longer found by attribute"
    );
    assert_eq!(kept_found, 1);
    // No search token of a deleted span is left behind.
    let old_token = crate::storage::sqlite::encode::attribute_match("order.id", "7");
    let tokens = store
        .read(move |conn| {
            count(
                conn,
                &format!("SELECT count(*) FROM group_terms WHERE group_terms MATCH '{old_token}'"),
            )
        })
        .await?;
    assert_eq!(tokens, 0);
    // Nor a block whose groups all went.
    let empty_blocks = store
        .read(|conn| {
            count(
                conn,
                "SELECT count(*) FROM blocks WHERE id NOT IN (SELECT block_id FROM span_groups)",
            )
        })
        .await?;
    assert_eq!(empty_blocks, 0);
    // Kept traces read back whole and unchanged.
    for n in 5000..5010 {
        let id = trace_id(n);
        let read = store
            .read(move |conn| crate::storage::sqlite::trace(conn, &id))
            .await?;
        let sent: Vec<Span> = kept.iter().filter(|s| s.trace_id == id).cloned().collect();
        assert_eq!(read, Some(sent));
    }
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn rates_over_a_deleted_window_keep_their_answer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, writer) = open(&dir.path().join("t.db"))?;
    let old = NOW - 48 * 60 * MINUTE;
    for n in 0..20 {
        write(
            &store,
            trace(n, old + i64::from(n) * MINUTE, 3, 10, 10),
            old + i64::from(n) * MINUTE,
        )
        .await?;
    }
    let window = (old / 1_000_000_000 - 60, old / 1_000_000_000 + 30 * 60);
    let rates = |store: SqliteStore| async move {
        store
            .read(move |conn| crate::storage::sqlite::stage_counts(conn, None, window.0, window.1))
            .await
            .map(|rows| crate::rates::report(&rows))
    };
    let before = rates(store.clone()).await?;
    let policy = Policy::new(Some(Age(HOUR)), None);
    let report = run_once(&store, &policy, NOW, &not_stopped()).await?;
    assert_eq!(report.deleted_spans, 80);
    let spans = store
        .read(|conn| count(conn, "SELECT coalesce(sum(span_count), 0) FROM span_groups"))
        .await?;
    assert_eq!(spans, 0);
    assert_eq!(rates(store.clone()).await?, before);
    assert!(
        before.all.stages.iter().any(|s| s.n == Some(80)),
        "the window counts the deleted spans: {before:?}"
    );
    drop(store);
    writer.join();
    Ok(())
}

fn file_len(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

#[tokio::test]
async fn size_retention_makes_the_file_shrink() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    let (store, writer) = open(&path)?;
    // 30 000 spans of about 300 bytes, in 100 requests, oldest first.
    for chunk in 0..100u32 {
        let spans: Vec<Span> = (0..30)
            .flat_map(|i| {
                trace(
                    chunk * 30 + i,
                    NOW - i64::from(100 - chunk) * MINUTE,
                    9,
                    10,
                    200,
                )
            })
            .collect();
        write(&store, spans, NOW).await?;
    }
    drop(store);
    writer.join(); // the last checkpoint truncates the WAL
    let before = file_len(&path)?;

    let limit = before / 2;
    let (store, writer) = open(&path)?;
    let policy = Policy::new(None, Some(ByteSize(limit)));
    let report = run_once(&store, &policy, NOW, &not_stopped()).await?;
    assert!(
        report.deleted_spans > 0 && report.bytes_before > limit,
        "{report:?}"
    );
    // Pages in use plus the WAL, which the deletes grew and the run truncated.
    assert!(report.bytes_after <= limit, "{report:?}");
    let (left, newest_deleted_kept) = store
        .read(|conn| {
            Ok((
                count(conn, "SELECT coalesce(sum(span_count), 0) FROM span_groups")?,
                // The oldest traces went first: every trace left is newer
                // than every deleted one, so none of the first trace's age.
                count(
                    conn,
                    &format!(
                        "SELECT count(*) FROM traces WHERE start_ns <= {}",
                        NOW - 100 * MINUTE
                    ),
                )?,
            ))
        })
        .await?;
    assert_eq!(newest_deleted_kept, 0);
    assert_eq!(left as u64, 30_000 - report.deleted_spans);
    drop(store);
    writer.join();
    let after = file_len(&path)?;
    assert!(
        after <= limit,
        "the file went from {before} to {after} bytes, over the {limit} limit"
    );
    // The data is kept under 95 % of its room, the cap less twice the
    // WAL's limit (a fifth of so small a cap), and a batch may overshoot.
    assert!(
        after * 10 >= limit * 6,
        "it deleted far more than needed: {after} of {limit}"
    );
    Ok(())
}

#[tokio::test]
async fn ingest_continues_while_retention_runs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, writer) = open(&dir.path().join("t.db"))?;
    let cutoff = NOW - HOUR.as_nanos() as i64;
    for chunk in 0..6 {
        let old: Vec<Span> = (0..250)
            .flat_map(|i| trace(chunk * 250 + i, cutoff - MINUTE, 3, 10, 50))
            .collect();
        write(&store, old, cutoff).await?;
    }
    let policy = Policy::new(Some(Age(HOUR)), None);
    let retention = {
        let store = store.clone();
        tokio::spawn(async move { run_once(&store, &policy, NOW, &not_stopped()).await })
    };
    let mut written = 0;
    for n in 0..200 {
        written += write(&store, trace(10_000 + n, NOW, 4, 10, 50), NOW).await?;
    }
    let report = retention.await??;
    assert_eq!(report.deleted_spans, 6_000);
    assert_eq!(written, 1000, "every ingest write committed");
    let new = store
        .read(move |conn| {
            count(
                conn,
                &format!("SELECT coalesce(sum(span_count), 0) FROM span_groups WHERE start_ns >= {cutoff}"),
            )
        })
        .await?;
    assert_eq!(new, 1000);
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn a_stopped_task_ends_and_releases_the_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, writer) = open(&dir.path().join("t.db"))?;
    let (stop, stopped) = watch::channel(false);
    let policy = Policy::new(Some(Age(HOUR)), None);
    let task = tokio::spawn(run(
        store.clone(),
        policy,
        Duration::from_secs(3600),
        stopped,
    ));
    drop(store);
    let _ = stop.send(true);
    task.await?;
    // The writer ends only once the task has dropped its handle.
    writer.join();
    Ok(())
}

/// The calls of the service graph over all time, as (parent, child, calls).
fn graph(conn: &rusqlite::Connection) -> Result<Vec<(String, String, u64)>, StoreError> {
    Ok(
        crate::storage::sqlite::dependencies(conn, 0, u64::MAX >> 1)?
            .into_iter()
            .map(|d| (d.parent, d.child, d.call_count))
            .collect(),
    )
}

#[tokio::test]
async fn age_retention_takes_away_exactly_the_deleted_traces_edges_services_and_operations()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let (store, writer) = open(&dir.path().join("t.db"))?;
    let cutoff = NOW - HOUR.as_nanos() as i64;
    // Trace 1 started before the cutoff, its child (shop → db) after it:
    // the trace goes, and with it the call in a minute that stays.
    write(
        &store,
        trace(1, cutoff - 10 * MINUTE, 1, 12 * MINUTE, 10),
        cutoff,
    )
    .await?;
    // Trace 2 is kept: one call shop → db in the same minute.
    write(&store, trace(2, cutoff + 2 * MINUTE, 1, 0, 10), cutoff).await?;
    // Trace 3, all old, is the only one of `legacy`, and of shop's `op-old`.
    let mut old = trace(3, cutoff - 20 * MINUTE, 1, 0, 10);
    old[0].resource = fixtures::resource("legacy");
    old[1].name = "op-old".into();
    write(&store, old, cutoff).await?;

    let before = store
        .read(|conn| Ok((graph(conn)?, crate::storage::sqlite::services(conn)?)))
        .await?;
    assert_eq!(
        before,
        (
            vec![
                ("legacy".into(), "db".into(), 1),
                ("shop".into(), "db".into(), 2)
            ],
            vec!["db".to_owned(), "legacy".into(), "shop".into()]
        )
    );

    let policy = Policy::new(Some(Age(HOUR)), None);
    let report = run_once(&store, &policy, NOW, &not_stopped()).await?;
    assert_eq!((report.deleted_traces, report.deleted_spans), (2, 4));

    let (edges, services, db_operations, waiting) = store
        .read(|conn| {
            let operations = crate::storage::sqlite::operations(conn, "db", None)?;
            Ok((
                graph(conn)?,
                crate::storage::sqlite::services(conn)?,
                operations
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
                count(conn, "SELECT count(*) FROM edge_waiting")?,
            ))
        })
        .await?;
    assert_eq!(edges, vec![("shop".into(), "db".into(), 1)]);
    assert_eq!(services, vec!["db".to_owned(), "shop".into()]);
    assert_eq!(db_operations, vec!["op1".to_owned()]);
    assert_eq!(waiting, 0);
    drop(store);
    writer.join();
    Ok(())
}
