use super::*;
use crate::stage::Stage;
use crate::storage::RateRow;
use crate::storage::ServiceCount;
use crate::storage::TraceQuery;
use crate::test_fixtures as fixtures;
use otelite_model::{AnyValue, KeyValue, Scope, Span, SpanKind, TraceId};
use std::sync::Arc;

/// Trace `trace`: `count` spans of `shop`, op1 the root of the others,
/// op2 an error, each with its `user.id`.
pub(crate) fn spans(trace: u8, count: u8) -> Vec<Span> {
    let resource = fixtures::resource("shop");
    let scope = Arc::new(Scope {
        name: "lib".into(),
        ..Scope::default()
    });
    (1..=count)
        .map(|i| {
            fixtures::span(trace, i)
                .parent((i > 1).then_some(1))
                .resource(&resource)
                .scope(&scope)
                .error(i == 2)
                .attribute("user.id", AnyValue::Int(i64::from(i)))
                .build()
        })
        .collect()
}

/// Stores `spans` as one request received in the second minute.
async fn write(store: &SqliteStore, spans: Vec<Span>) -> Result<Stored, StoreError> {
    fixtures::write(store, spans, 60_000_000_000).await
}

/// A store on a new file in a new directory (kept alive by the caller).
fn fresh_store()
-> Result<(tempfile::TempDir, SqliteStore, WriterThread), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, writer) = SqliteStore::open(
        &dir.path().join("t.db"),
        QueueLimits {
            requests: 4,
            spans: 1000,
        },
    )?;
    Ok((dir, store, writer))
}

#[tokio::test]
async fn spans_read_back_equal_and_retries_are_not_stored_twice()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    let sent = spans(7, 3);
    assert_eq!(
        write(&store, sent.clone()).await?,
        Stored {
            inserted: 3,
            duplicates: 0,
            conflicts: 0
        }
    );
    assert_eq!(
        write(&store, sent.clone()).await?,
        Stored {
            inserted: 0,
            duplicates: 3,
            conflicts: 0
        }
    );

    let read = store.read(|conn| trace(conn, &TraceId([7; 16]))).await?;
    assert_eq!(read, Some(sent));
    assert_eq!(
        store.read(|conn| trace(conn, &TraceId([8; 16]))).await?,
        None
    );

    let found = store
        .read(|conn| {
            search(
                conn,
                &TraceQuery {
                    service: Some("shop".into()),
                    limit: 10,
                    ..TraceQuery::default()
                },
            )
        })
        .await?;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].span_count, found[0].error_count),
        (3, 1),
        "a retry must not inflate the summary"
    );

    for (attribute, expected) in [
        (("user.id", "2"), 1),
        (("user.id", "9"), 0),
        (("user.name", "2"), 0),
    ] {
        let query = TraceQuery {
            attributes: vec![(attribute.0.to_owned(), attribute.1.to_owned())],
            limit: 10,
            ..TraceQuery::default()
        };
        let found = store.read(move |conn| search(conn, &query)).await?;
        assert_eq!(found.len(), expected, "attribute {attribute:?}");
    }
    let by_other_service = TraceQuery {
        service: Some("nobody".into()),
        limit: 10,
        ..TraceQuery::default()
    };
    assert!(
        store
            .read(move |conn| search(conn, &by_other_service))
            .await?
            .is_empty()
    );

    let counts = store
        .read(|conn| stage_counts(conn, None, 0, i64::MAX))
        .await?;
    let store_count = counts.iter().find(|r| r.stage == Stage::Store).map(|r| r.n);
    assert_eq!(store_count, Some(3));
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn cumulative_counters_become_increments() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    let point = |value| CounterPoint {
        service: "shop".into(),
        stage: Stage::Total,
        reason: None,
        series: "s@1".into(),
        value,
        cumulative: true,
        monotonic: true,
        subtracts: false,
        time_ns: 120_000_000_000,
    };
    for value in [5, 12, 12, 3] {
        store.try_write_counters(vec![point(value)])?.await??;
    }
    let counts = store
        .read(|conn| stage_counts(conn, Some("shop"), 0, i64::MAX))
        .await?;
    // 5, +7, +0, then a restart from zero: +3.
    assert_eq!(
        counts,
        vec![RateRow {
            service: "shop".into(),
            stage: Stage::Total,
            reason: None,
            n: 15
        }]
    );
    drop(store);
    writer.join();
    Ok(())
}

async fn seeded()
-> Result<(tempfile::TempDir, SqliteStore, WriterThread), Box<dyn std::error::Error>> {
    let (dir, store, writer) = fresh_store()?;
    // Trace 1: op1 (root) → op2 (error) → op3; trace 2 lacks its root.
    write(&store, spans(1, 3)).await?;
    let mut orphaned = spans(2, 3);
    orphaned.remove(0);
    write(&store, orphaned).await?;
    Ok((dir, store, writer))
}

async fn found(store: &SqliteStore, query: TraceQuery) -> Result<Vec<String>, StoreError> {
    let summaries = store.read(move |conn| search(conn, &query)).await?;
    Ok(summaries
        .into_iter()
        .map(|s| s.trace_id[..2].to_owned())
        .collect())
}

#[tokio::test]
async fn search_filters_compose_and_summaries_list_services_and_orphans()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let q = |f: fn(&mut TraceQuery)| {
        let mut query = TraceQuery {
            limit: 10,
            ..TraceQuery::default()
        };
        f(&mut query);
        query
    };
    // Both traces start with span 2 at 2000 ns or span 1 at 1000 ns: trace 1 is older.
    assert_eq!(found(&store, q(|_| {})).await?, ["02", "01"]);
    assert_eq!(
        found(&store, q(|q| q.operation = Some("op1".into()))).await?,
        ["01"]
    );
    assert_eq!(
        found(&store, q(|q| q.kind = Some(SpanKind::Server))).await?,
        Vec::<String>::new()
    );
    assert_eq!(
        found(&store, q(|q| q.kind = Some(SpanKind::Internal)))
            .await?
            .len(),
        2
    );
    assert_eq!(
        found(&store, q(|q| q.error_only = true)).await?,
        ["02", "01"]
    );
    // With a span filter, the error must be on the matching span.
    let error_on_op3 = q(|q| {
        q.operation = Some("op3".into());
        q.error_only = true;
    });
    assert!(found(&store, error_on_op3).await?.is_empty());
    let two_attributes = q(|q| {
        q.attributes = vec![
            ("user.id".into(), "2".into()),
            ("user.id".into(), "3".into()),
        ]
    });
    assert!(
        found(&store, two_attributes).await?.is_empty(),
        "both must hold on one span"
    );
    let by_resource = q(|q| q.attributes = vec![("service.name".into(), "shop".into())]);
    assert_eq!(
        found(&store, by_resource).await?.len(),
        2,
        "resource attributes are searchable"
    );
    let span_and_resource = q(|q| {
        q.attributes = vec![
            ("service.name".into(), "shop".into()),
            ("user.id".into(), "1".into()),
        ]
    });
    assert_eq!(found(&store, span_and_resource).await?, ["01"]);
    assert_eq!(
        found(&store, q(|q| q.min_duration_ns = Some(500)))
            .await?
            .len(),
        2
    );
    assert!(
        found(&store, q(|q| q.min_duration_ns = Some(501)))
            .await?
            .is_empty()
    );
    assert!(
        found(&store, q(|q| q.max_duration_ns = Some(499)))
            .await?
            .is_empty()
    );
    assert_eq!(
        found(&store, q(|q| q.start_ns = Some(1_500))).await?,
        ["02", "01"]
    );
    assert_eq!(found(&store, q(|q| q.end_ns = Some(1_500))).await?, ["01"]);
    assert_eq!(found(&store, q(|q| q.limit = 1)).await?, ["02"]);

    let summaries = store
        .read(|conn| {
            search(
                conn,
                &TraceQuery {
                    limit: 10,
                    ..TraceQuery::default()
                },
            )
        })
        .await?;
    let orphaned = &summaries[0];
    assert_eq!(
        (
            orphaned.span_count,
            orphaned.orphan_span_count,
            orphaned.root_service.clone()
        ),
        (2, 2, None)
    );
    assert_eq!(summaries[1].orphan_span_count, 0);
    assert_eq!(
        summaries[1].services,
        vec![ServiceCount {
            name: "shop".into(),
            span_count: 3,
            error_count: 1
        }]
    );
    drop(store);
    writer.join();
    Ok(())
}

#[tokio::test]
async fn prefixes_match_string_starts_on_the_span_that_meets_every_filter()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let mut routed = spans(3, 3);
    for (i, span) in routed.iter_mut().enumerate() {
        let route = format!("/api/v{}/cart/items-with-a-long-name", i + 1);
        span.attributes
            .push(KeyValue::new("http.route", AnyValue::String(route)));
    }
    write(&store, routed).await?;
    let search_for = |prefixes: &[(&str, &str)], operation: Option<&str>| TraceQuery {
        attribute_prefixes: prefixes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        operation: operation.map(str::to_owned),
        limit: 10,
        ..TraceQuery::default()
    };
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a [&'a str]);
    let cases: &[Case] = &[
        (&[("http.route", "/api/v2")], None, &["03"]),
        (&[("http.route", "/api/v")], None, &["03"]),
        (&[("http.route", "/api/v4")], None, &[]),
        (&[("http.route", "")], None, &["03"]),
        // Past the 16 bytes the index keeps, the spans decide.
        (&[("http.route", "/api/v2/cart/items-with")], None, &["03"]),
        (&[("http.route", "/api/v2/cart/items-without")], None, &[]),
        // Every filter on one span.
        (&[("http.route", "/api/v2")], Some("op2"), &["03"]),
        (&[("http.route", "/api/v2")], Some("op3"), &[]),
        // Resource attributes too; numbers are not strings.
        (&[("service.name", "sh")], None, &["03", "02", "01"]),
        (&[("service.name", "x")], None, &[]),
        (&[("user.id", "1")], None, &[]),
    ];
    for (prefixes, operation, expected) in cases {
        assert_eq!(
            found(&store, search_for(prefixes, *operation)).await?,
            *expected,
            "{prefixes:?} {operation:?}"
        );
    }
    drop(store);
    writer.join();
    Ok(())
}

/// A prefix search reads the newest groups first and checks their spans;
/// past `PREFIX_SCAN_GROUPS` of them it asks the index instead. Both
/// answers are the newest matching traces, page after page.
#[tokio::test]
async fn a_prefix_is_found_by_the_newest_groups_or_else_by_the_index()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    let routed = |trace: u16, route: &str| {
        let mut id = [0u8; 16];
        id[..2].copy_from_slice(&trace.to_be_bytes());
        fixtures::span(0, 1)
            .trace_id(TraceId(id))
            .attribute("http.route", AnyValue::String(route.into()))
            .build()
    };
    // The oldest two traces hold the rare route; then, one group each,
    // more traces with a common one than the first pass reads.
    write(&store, vec![routed(1, "/rare/1"), routed(2, "/rare/2")]).await?;
    let common = 2 + super::search::PREFIX_SCAN_GROUPS as u16 + 10;
    for first in (3..=common).step_by(500) {
        let batch = (first..=common.min(first + 499)).map(|t| routed(t, "/common/x"));
        write(&store, batch.collect()).await?;
    }
    let pages = |prefix: &'static str, limit: usize| {
        let store = &store;
        async move {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let query = TraceQuery {
                    attribute_prefixes: vec![("http.route".into(), prefix.into())],
                    limit,
                    cursor,
                    ..TraceQuery::default()
                };
                let page = store.read(move |conn| search_page(conn, &query)).await?;
                seen.extend(page.traces.iter().map(|t| t.trace_id[..4].to_owned()));
                match page.next {
                    Some(next) if seen.len() < 6 => cursor = Some(next),
                    _ => break,
                }
            }
            Ok::<_, StoreError>(seen)
        }
    };
    let newest = |n: u16| format!("{n:04x}");
    assert_eq!(
        pages("/com", 2).await?,
        [0, 1, 2, 3, 4, 5].map(|i| newest(common - i))
    );
    // Only the index finds these: the first pass gives up before them.
    assert_eq!(pages("/rare", 1).await?, ["0002", "0001"]);
    assert_eq!(pages("/rare/1", 5).await?, ["0001"]);
    assert!(pages("/nothing", 5).await?.is_empty());
    drop(store);
    writer.join();
    Ok(())
}

/// The writer's connection indexes through otelite's tokenizer on a new
/// file and on one that an upgrade rebuilt the index of: FTS5 keeps the
/// tokenizer a table first found on a connection, and the built-in one
/// gives the same tokens, only slower, so nothing else would tell.
#[test]
fn the_writer_indexes_through_the_fast_tokenizer_after_any_upgrade()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let old = dir.path().join("v9.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/databases/v9.db"
        ),
        &old,
    )?;
    for path in [dir.path().join("new.db"), old] {
        let conn = open_writer_connection(&path)?;
        let before = tokenizer::FAST_TEXTS.with(std::cell::Cell::get);
        conn.execute(
            "INSERT INTO group_terms (rowid, tokens) VALUES (1000000, 'k2 sabc')",
            [],
        )?;
        let after = tokenizer::FAST_TEXTS.with(std::cell::Cell::get);
        assert_eq!(after, before + 1, "{}", path.display());
    }
    Ok(())
}

#[tokio::test]
async fn operations_and_read_only_open() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, store, writer) = seeded().await?;
    let found_operations = store.read(|conn| operations(conn, "shop", None)).await?;
    let names: Vec<&str> = found_operations
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(names, ["op1", "op2", "op3"]);
    assert!(
        store
            .read(|conn| operations(conn, "shop", Some(SpanKind::Client)))
            .await?
            .is_empty()
    );
    drop(store);
    writer.join();

    let conn = open_read_only(&dir.path().join("t.db"))?;
    assert_eq!(services(&conn)?, ["shop"]);
    assert!(matches!(
        open_read_only(&dir.path().join("missing.db")),
        Err(StoreError::Open { .. })
    ));
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)?.execute_batch("CREATE TABLE notes (x)")?;
    let error = open_read_only(&other)
        .map(|_| ())
        .expect_err("a database without otelite tables is refused");
    assert!(
        error.to_string().contains("not an otelite database"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_repeats() -> Result<(), Box<dyn std::error::Error>>
{
    let (_dir, store, writer) = fresh_store()?;
    for trace in 1..=5 {
        write(&store, spans(trace, 2)).await?;
    }
    for filtered in [false, true] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let query = TraceQuery {
                service: filtered.then(|| "shop".to_owned()),
                limit: 2,
                cursor,
                ..TraceQuery::default()
            };
            let page = store.read(move |conn| search_page(conn, &query)).await?;
            seen.extend(page.traces.iter().map(|t| t.trace_id[..2].to_owned()));
            match page.next {
                Some(next) => {
                    cursor = Some(next.to_string().parse().map_err(|_| "cursor round trip")?)
                }
                None => break,
            }
        }
        // Equal start times: the trace id breaks the tie, descending.
        assert_eq!(
            seen,
            ["05", "04", "03", "02", "01"],
            "filtered by service: {filtered}"
        );
    }
    drop(store);
    writer.join();
    Ok(())
}

/// Short strings are found by their whole-value prefix token, long ones by
/// their exact token; neither ever matches a longer string with the same
/// start, and text matches numbers and strings alike.
#[tokio::test]
async fn exact_attribute_search_is_exact_at_every_string_length()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = seeded().await?;
    let sixteen = "0123456789abcdef";
    let values = [
        AnyValue::String(sixteen[..15].into()),
        AnyValue::String(sixteen.into()),
        AnyValue::String(format!("{sixteen}X")),
        AnyValue::String("7".into()),
        AnyValue::Int(7),
    ];
    // Traces 03..=07, one value each.
    for (i, value) in values.into_iter().enumerate() {
        let mut trace = spans(3 + i as u8, 1);
        trace[0].attributes.push(KeyValue::new("code", value));
        write(&store, trace).await?;
    }
    let search_for = |value: &str| TraceQuery {
        attributes: vec![("code".into(), value.into())],
        limit: 10,
        ..TraceQuery::default()
    };
    let cases: [(&str, &[&str]); 5] = [
        (&sixteen[..15], &["03"]),
        (sixteen, &["04"]),
        (&format!("{sixteen}X"), &["05"]),
        ("7", &["07", "06"]),
        (&sixteen[..14], &[]),
    ];
    for (value, expected) in cases {
        assert_eq!(found(&store, search_for(value)).await?, expected, "{value}");
    }
    drop(store);
    writer.join();
    Ok(())
}

/// A trace whose root runs in `front` and whose other spans, its children,
/// run in `shop`; span 2 is an error (see `spans`).
fn calls_from_front(trace: u8, count: u8) -> Vec<Span> {
    let mut sent = spans(trace, count);
    sent[0].resource = fixtures::resource("front");
    sent
}

#[tokio::test]
async fn service_edges_add_up_every_call_and_error_per_minute()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    // Three calls, one failed, in one batch; then two more, one failed,
    // of which one starts a minute later.
    write(&store, calls_from_front(1, 4)).await?;
    let mut later = calls_from_front(2, 3);
    later[2].start_time_unix_nano += 60_000_000_000;
    later[2].end_time_unix_nano += 60_000_000_000;
    write(&store, later).await?;
    let edges = |start_ns, end_ns| {
        store.read(move |conn| {
            Ok(dependencies(conn, start_ns, end_ns)?
                .into_iter()
                .map(|d| (d.parent, d.child, d.call_count, d.error_count))
                .collect::<Vec<_>>())
        })
    };
    let pair = |calls, errors| vec![("front".into(), "shop".into(), calls, errors)];
    assert_eq!(edges(0, 120_000_000_000).await?, pair(5, 2));
    assert_eq!(edges(0, 59_000_000_000).await?, pair(4, 2));
    assert_eq!(edges(60_000_000_000, 120_000_000_000).await?, pair(1, 0));
    drop(store);
    writer.join();
    Ok(())
}

/// Search documents are built with the batch (see `documents`), but the
/// writer's groups can differ from the batch's: a span already stored
/// leaves its group, and two copies of one resource are one group. The
/// group must then be found by every span it holds.
#[tokio::test]
async fn a_group_unlike_the_batchs_is_found_by_each_of_its_spans()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    let mut sent = spans(7, 3);
    // Span 3 comes with its own copy of the resource: the batch makes it a
    // group of its own, the writer puts it with spans 1 and 2.
    sent[2].resource = Arc::new((*sent[2].resource).clone());
    // Span 2 is stored already, so the writer's group is spans 1 and 3: as
    // many rows as the batch's group of spans 1 and 2, but not the same.
    write(&store, vec![sent[1].clone()]).await?;
    assert_eq!(
        write(&store, sent.clone()).await?,
        Stored {
            inserted: 2,
            duplicates: 1,
            conflicts: 0
        }
    );
    for user in ["1", "2", "3"] {
        let query = TraceQuery {
            attributes: vec![("user.id".to_owned(), user.to_owned())],
            limit: 10,
            ..TraceQuery::default()
        };
        let found = store.read(move |conn| search(conn, &query)).await?;
        assert_eq!(found.len(), 1, "user.id {user}");
    }
    assert_eq!(
        store.read(|conn| trace(conn, &TraceId([7; 16]))).await?,
        Some(sent)
    );
    drop(store);
    writer.join();
    Ok(())
}

/// `serve` makes only an empty file or an otelite database its own: another
/// program's file is refused before its journal mode, tables or version
/// change.
#[test]
fn serve_refuses_another_programs_file_and_leaves_it_as_it_was()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let limits = QueueLimits {
        requests: 8,
        spans: 1000,
    };
    for (name, schema) in [
        ("notes.db", "CREATE TABLE notes (x);"),
        (
            "traces.db",
            "CREATE TABLE traces (id INTEGER PRIMARY KEY, body BLOB);",
        ),
    ] {
        let path = dir.path().join(name);
        rusqlite::Connection::open(&path)?.execute_batch(schema)?;
        let opened = SqliteStore::open(&path, limits);
        assert!(
            matches!(&opened, Err(StoreError::NotOtelite(p)) if *p == path),
            "{name}: {:?}",
            opened.as_ref().err()
        );
        let conn = rusqlite::Connection::open(&path)?;
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        assert_eq!(
            (journal.as_str(), version, tables),
            ("delete", 0, 1),
            "{name}"
        );
    }
    let not_sqlite = dir.path().join("notes.txt");
    std::fs::write(
        &not_sqlite,
        "plain text, long enough to be read as a header\n".repeat(10),
    )?;
    assert!(matches!(
        SqliteStore::open(&not_sqlite, limits),
        Err(StoreError::NotOtelite(_))
    ));
    // An empty file is a new database.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"")?;
    let (store, writer) = SqliteStore::open(&empty, limits)?;
    drop(store);
    writer.join();
    Ok(())
}

/// The calls of the service graph over all time, as (parent, child, calls, errors).
async fn graph(store: &SqliteStore) -> Result<Vec<(String, String, u64, u64)>, StoreError> {
    store
        .read(|conn| {
            Ok(dependencies(conn, 0, u64::MAX >> 1)?
                .into_iter()
                .map(|d| (d.parent, d.child, d.call_count, d.error_count))
                .collect())
        })
        .await
}

/// A parent and its children can arrive in any order, any distance apart
/// and across restarts: each call is counted once, when its second span
/// is stored, and a retry counts nothing again.
#[tokio::test]
async fn a_call_is_counted_once_whatever_order_and_restarts_its_spans_come_in()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    let limits = QueueLimits {
        requests: 4,
        spans: 1000,
    };
    // Trace 1: front's root first, a restart, then shop's children (one an
    // error). Trace 2: shop's children first, a restart, then the root.
    let (first, second) = (calls_from_front(1, 3), calls_from_front(2, 3));
    let (store, writer) = SqliteStore::open(&path, limits)?;
    write(&store, vec![first[0].clone()]).await?;
    write(&store, second[1..].to_vec()).await?;
    assert_eq!(graph(&store).await?, vec![]);
    drop(store);
    writer.join();

    let (store, writer) = SqliteStore::open(&path, limits)?;
    write(&store, first[1..].to_vec()).await?;
    assert_eq!(
        graph(&store).await?,
        vec![("front".into(), "shop".into(), 2, 1)]
    );
    drop(store);
    writer.join();

    let (store, writer) = SqliteStore::open(&path, limits)?;
    write(&store, vec![second[0].clone()]).await?;
    let both = vec![("front".into(), "shop".into(), 4, 2)];
    assert_eq!(graph(&store).await?, both);
    // Every span again, in one batch: all duplicates, no new call.
    let again: Vec<Span> = first.iter().chain(&second).cloned().collect();
    assert_eq!(write(&store, again).await?.inserted, 0);
    assert_eq!(graph(&store).await?, both);
    let waiting: i64 = store
        .read(|conn| Ok(conn.query_row("SELECT count(*) FROM edge_waiting", [], |r| r.get(0))?))
        .await?;
    assert_eq!(waiting, 0, "no child still waits for its parent");
    drop(store);
    writer.join();
    Ok(())
}

/// A commit that fails (the file may not grow: a full disk) loses its
/// spans at the store, with the cause; that they were processed and
/// analyzed stays counted, once however often it fails. Stored on a later
/// try, they are no loss and still counted once.
#[tokio::test]
async fn a_failed_commit_is_lost_at_the_store_as_write_failed()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    write(&store, spans(1, 2)).await?;
    store
        .run_job(|conn| -> rusqlite::Result<()> {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.pragma_update(None, "max_page_count", pages)
        })
        .await??;
    // 200 spans with 4 KiB that do not compress: the file has to grow.
    let mut seed: u64 = 17;
    let big: Vec<Span> = spans(2, 200)
        .into_iter()
        .map(|mut span| {
            let noise: String = (0..2048)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    format!("{:02x}", (seed >> 56) as u8)
                })
                .collect();
            span.attributes
                .push(KeyValue::new("noise", AnyValue::String(noise)));
            span
        })
        .collect();
    assert!(
        write(&store, big.clone()).await.is_err(),
        "the file is full"
    );
    // Failing again books nothing twice.
    assert!(write(&store, big.clone()).await.is_err(), "still full");
    let counts = || store.read(|conn| stage_counts(conn, Some("shop"), 0, i64::MAX));
    let row = |stage, reason: Option<&str>, n| RateRow {
        service: "shop".into(),
        stage,
        reason: reason.map(Into::into),
        n,
    };
    assert_eq!(
        counts().await?,
        vec![
            row(Stage::Analyze, None, 202),
            row(Stage::Process, None, 202),
            row(Stage::Store, None, 2),
            row(Stage::Store, Some("write_failed"), 200),
        ]
    );
    // Room again, and the sender retries what got no 2xx: the spans are
    // stored, counted once at every stage, and no longer a loss.
    store
        .run_job(|conn| conn.pragma_update(None, "max_page_count", 1_073_741_823))
        .await??;
    assert_eq!(write(&store, big).await?.inserted, 200);
    let after: Vec<RateRow> = counts().await?.into_iter().filter(|r| r.n > 0).collect();
    assert_eq!(
        after,
        vec![
            row(Stage::Analyze, None, 202),
            row(Stage::Process, None, 202),
            row(Stage::Store, None, 202),
        ]
    );
    drop(store);
    writer.join();
    Ok(())
}

/// The SDKs' failure counts keep their reason, as losses at their stage;
/// live spans (an up-down counter) are taken from total as they change.
#[tokio::test]
async fn counter_failures_are_losses_with_their_reason() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    let point =
        |name: &str, stage, reason: Option<&str>, value: u64, subtracts: bool| CounterPoint {
            service: "py".into(),
            stage,
            reason: reason.map(Into::into),
            series: format!("{name}@1"),
            value,
            cumulative: true,
            monotonic: !subtracts,
            subtracts,
            time_ns: 120_000_000_000,
        };
    // Mid-run: 100 started, 30 still live, 40 dropped by a full queue.
    store
        .try_write_counters(vec![
            point("started", Stage::Total, None, 100, false),
            point("live", Stage::Total, None, 30, true),
            point("processed", Stage::Collect, None, 30, false),
            point("dropped", Stage::Collect, Some("queue_full"), 40, false),
        ])?
        .await??;
    // At the end: 200 started, none live, 120 dropped.
    store
        .try_write_counters(vec![
            point("started", Stage::Total, None, 200, false),
            point("live", Stage::Total, None, 0, true),
            point("processed", Stage::Collect, None, 80, false),
            point("dropped", Stage::Collect, Some("queue_full"), 120, false),
        ])?
        .await??;
    let counts = store
        .read(|conn| stage_counts(conn, Some("py"), 0, i64::MAX))
        .await?;
    let row = |stage, reason: Option<&str>, n| RateRow {
        service: "py".into(),
        stage,
        reason: reason.map(Into::into),
        n,
    };
    assert_eq!(
        counts,
        vec![
            row(Stage::Collect, None, 80),
            row(Stage::Collect, Some("queue_full"), 120),
            row(Stage::Total, None, 200),
        ]
    );
    drop(store);
    writer.join();
    Ok(())
}

/// A span sent again as it was is a retry; another span under the same
/// trace and span ids (in the same batch or after the first was stored)
/// is refused and counted as such, and the stored one stays as it was.
#[tokio::test]
async fn another_span_under_stored_ids_is_refused_and_a_retry_is_not()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, writer) = fresh_store()?;
    let sent = spans(7, 3);
    write(&store, sent.clone()).await?;
    let mut renamed = sent[1].clone();
    renamed.name = "another".into();
    let mut moved = sent[2].clone();
    moved.resource = fixtures::resource("elsewhere");
    // One batch: a retry of span 1, two conflicts, and a new span 4 that
    // comes twice, the second time with another name.
    let new = spans(7, 4).pop().expect("span 4");
    let mut new_renamed = new.clone();
    new_renamed.name = "also another".into();
    let batch = vec![sent[0].clone(), renamed, moved, new.clone(), new_renamed];
    assert_eq!(
        write(&store, batch).await?,
        Stored {
            inserted: 1,
            duplicates: 1,
            conflicts: 3
        }
    );
    let mut kept = sent;
    kept.push(new);
    assert_eq!(
        store.read(|conn| trace(conn, &TraceId([7; 16]))).await?,
        Some(kept)
    );
    let counts = store
        .read(|conn| stage_counts(conn, None, 0, i64::MAX))
        .await?;
    let at = |stage| {
        counts
            .iter()
            .filter(|row| row.stage == stage && row.reason.is_none())
            .map(|row| row.n)
            .sum::<u64>()
    };
    // 3 + 5 spans came through process and analyze, less the one retry;
    // 4 were stored: the three conflicts show as lost at the store.
    assert_eq!(
        (at(Stage::Process), at(Stage::Analyze), at(Stage::Store)),
        (7, 7, 4)
    );
    // Each conflict is lost by the service that sent it.
    let losses: Vec<(&str, Stage, &str, u64)> = counts
        .iter()
        .filter_map(|row| {
            Some((
                row.service.as_str(),
                row.stage,
                row.reason.as_deref()?,
                row.n,
            ))
        })
        .collect();
    assert_eq!(
        losses,
        vec![
            ("elsewhere", Stage::Store, "conflict", 1),
            ("shop", Stage::Store, "conflict", 2)
        ]
    );
    drop(store);
    writer.join();
    Ok(())
}

/// Spans are the user's data: a database `serve` creates, and the files
/// SQLite keeps beside it, are readable by their owner only.
#[tokio::test]
async fn a_new_database_and_its_wal_are_private() -> Result<(), Box<dyn std::error::Error>> {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store, writer) = fresh_store()?;
    write(&store, spans(3, 2)).await?;
    for name in ["t.db", "t.db-wal", "t.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))?
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    drop(store);
    writer.join();
    Ok(())
}

/// Spans dropped by a rule in a batch whose commit fails are not counted
/// then (the sender gets no 2xx and retries); stored on the retry, they are
/// counted once, at process and as dropped by their rule.
#[tokio::test]
async fn a_failed_commit_leaves_its_policy_drops_to_the_retry()
-> Result<(), Box<dyn std::error::Error>> {
    use crate::analyze::policy::{DropRule, Pattern, Policy};
    let (_dir, store, writer) = fresh_store()?;
    write(&store, spans(1, 2)).await?;
    store
        .run_job(|conn| -> rusqlite::Result<()> {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.pragma_update(None, "max_page_count", pages)
        })
        .await??;
    let policy = Policy {
        drops: vec![DropRule {
            name: "noise".into(),
            service: None,
            span_name: Some(Pattern::new("op3")),
            attribute: None,
        }],
        samples: Vec::new(),
    };
    // 50 spans with 4 KiB that do not compress (the file has to grow);
    // span 3 is named op3 and dropped.
    let mut seed: u64 = 29;
    let mut batch: Vec<Span> = spans(2, 50);
    for span in &mut batch {
        let noise: String = (0..2048)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                format!("{:02x}", (seed >> 56) as u8)
            })
            .collect();
        span.attributes
            .push(KeyValue::new("noise", AnyValue::String(noise)));
    }
    batch[2].name = "op3".into();
    let send = |spans: Vec<Span>| {
        let ingest = crate::receive::ingest_kept(&policy, spans, 60_000_000_000);
        crate::storage::TraceStore::try_write_spans(&store, ingest)
    };
    assert!(send(batch.clone())?.await.is_err(), "the file is full");
    let counts = || store.read(|conn| stage_counts(conn, Some("shop"), 0, i64::MAX));
    let row = |stage, reason: Option<&str>, n| RateRow {
        service: "shop".into(),
        stage,
        reason: reason.map(Into::into),
        n,
    };
    assert_eq!(
        counts().await?,
        vec![
            row(Stage::Analyze, None, 51),
            row(Stage::Process, None, 51),
            row(Stage::Store, None, 2),
            row(Stage::Store, Some("write_failed"), 49),
        ]
    );
    store
        .run_job(|conn| conn.pragma_update(None, "max_page_count", 1_073_741_823))
        .await??;
    assert_eq!(send(batch)?.await?.inserted, 49);
    let after: Vec<RateRow> = counts().await?.into_iter().filter(|r| r.n > 0).collect();
    assert_eq!(
        after,
        vec![
            row(Stage::Analyze, None, 51),
            row(Stage::Analyze, Some("policy:noise"), 1),
            row(Stage::Process, None, 52),
            row(Stage::Store, None, 51),
        ]
    );
    drop(store);
    writer.join();
    Ok(())
}
