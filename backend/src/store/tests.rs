use super::*;
use crate::analyze;
use crate::stage::Stage;
use otelite_exporter::model::{
    AnyValue, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};
use std::sync::Arc;

fn spans(trace: u8, count: u8) -> Vec<Span> {
    let resource = Arc::new(Resource::new(
        vec![KeyValue::new(
            "service.name",
            AnyValue::String("shop".into()),
        )],
        0,
        String::new(),
    ));
    let scope = Arc::new(Scope {
        name: "lib".into(),
        ..Scope::default()
    });
    (1..=count)
        .map(|i| Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([i; 8]),
            parent_span_id: (i > 1).then_some(SpanId([1; 8])),
            trace_state: String::new(),
            flags: 1,
            resource: resource.clone(),
            scope: scope.clone(),
            name: format!("op{i}"),
            kind: SpanKind::Internal,
            start_time_unix_nano: 1_000 * u64::from(i),
            end_time_unix_nano: 1_000 * u64::from(i) + 500,
            status: Status {
                code: if i == 2 {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                },
                message: String::new(),
            },
            attributes: vec![KeyValue::new("user.id", AnyValue::Int(i64::from(i)))],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
        })
        .collect()
}

async fn write(store: &Store, spans: Vec<Span>) -> Result<Stored, StoreError> {
    let counted = vec![("shop".to_owned(), Stage::Process, spans.len() as u64)];
    let batch = SpanBatch {
        spans: analyze::analyze(spans)
            .into_iter()
            .map(SpanRow::new)
            .collect(),
        counted,
        received_ns: 60_000_000_000,
    };
    store
        .try_write_spans(batch)?
        .await
        .map_err(|_| StoreError::Closed)?
}

#[tokio::test]
async fn spans_read_back_equal_and_retries_are_not_stored_twice()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, writer) = Store::open(
        &dir.path().join("t.db"),
        QueueLimits {
            requests: 4,
            spans: 1000,
        },
    )?;
    let sent = spans(7, 3);
    assert_eq!(
        write(&store, sent.clone()).await?,
        Stored {
            inserted: 3,
            duplicates: 0
        }
    );
    assert_eq!(
        write(&store, sent.clone()).await?,
        Stored {
            inserted: 0,
            duplicates: 3
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
            attribute: Some((attribute.0.to_owned(), attribute.1.to_owned())),
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
    let dir = tempfile::tempdir()?;
    let (store, writer) = Store::open(
        &dir.path().join("t.db"),
        QueueLimits {
            requests: 4,
            spans: 1000,
        },
    )?;
    let point = |value| CounterPoint {
        service: "shop".into(),
        stage: Stage::Total,
        series: "s@1".into(),
        value,
        cumulative: true,
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
            n: 15
        }]
    );
    drop(store);
    writer.join();
    Ok(())
}
