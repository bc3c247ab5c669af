//! `POST /api/v2/spans` through the receive router without sockets: the
//! answers Zipkin gives (202, 400 with a message), gzip, and that the spans
//! are stored and counted.

use crate::metrics::Metrics;
use crate::receive::{Limits, ReceiveState, router};
use crate::storage::sqlite::SqliteStore;
use crate::storage::{QueueLimits, Storage};
use axum::body::Body;
use flate2::{Compression, write::GzEncoder};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use otelite_model::TraceId;
use std::io::Write;
use std::sync::Arc;
use tower::ServiceExt;

const SPANS: &str = r#"[{"traceId":"86154a4ba6e91385","id":"4d1e00c0db9010db",
  "kind":"SERVER","name":"get /","timestamp":1700000000000000,"duration":2500,
  "localEndpoint":{"serviceName":"frontend"}}]"#;

async fn post(
    state: &ReceiveState,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Result<(StatusCode, String), Box<dyn std::error::Error>> {
    let mut request = Request::post("/api/v2/spans");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router(state.clone())
        .oneshot(request.body(Body::from(body))?)
        .await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(bytes.to_vec())?))
}

fn state(store: &SqliteStore) -> ReceiveState {
    ReceiveState::new(
        store.clone(),
        Limits::with_body_limit(1 << 20),
        Arc::new(Metrics::default()),
    )
}

#[tokio::test]
async fn spans_are_stored_and_answered_202() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, writer) = SqliteStore::open(
        &dir.path().join("z.db"),
        QueueLimits {
            requests: 4,
            spans: 100,
        },
    )?;
    let state = state(&store);
    let json = [("content-type", "application/json")];
    assert_eq!(
        post(&state, SPANS.into(), &json).await?,
        (StatusCode::ACCEPTED, String::new())
    );
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(SPANS.replace("4d1e", "5d1e").as_bytes())?;
    let gzipped = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    assert_eq!(
        post(&state, gz.finish()?, &gzipped).await?.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(state.metrics.accepted(), 2);

    let id = TraceId::from_hex("000000000000000086154a4ba6e91385").ok_or("hex")?;
    let traces = Storage::from(store.clone()).traces(vec![id], 100).await?;
    let mut names: Vec<_> = traces.found[0]
        .spans
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.service_name().to_owned(),
                s.end_time_unix_nano,
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            (
                "get /".to_owned(),
                "frontend".to_owned(),
                1_700_000_000_002_500_000
            ),
            (
                "get /".to_owned(),
                "frontend".to_owned(),
                1_700_000_000_002_500_000
            ),
        ]
    );
    drop((state, store));
    writer.join();
    Ok(())
}

#[tokio::test]
async fn bad_bodies_get_400_with_a_message() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, writer) = SqliteStore::open(
        &dir.path().join("z.db"),
        QueueLimits {
            requests: 4,
            spans: 100,
        },
    )?;
    let state = state(&store);
    let json = [("content-type", "application/json")];
    let (status, text) = post(&state, b"[{\"traceId\":".to_vec(), &json).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.starts_with("request body is not a valid Zipkin v2 JSON span list: "),
        "{text}"
    );
    let (status, text) = post(
        &state,
        br#"[{"traceId":"nothex","id":"1"}]"#.to_vec(),
        &json,
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains(r#"span 0: traceId "nothex" is not 32 hex digits"#),
        "{text}"
    );
    let proto = [("content-type", "application/x-protobuf")];
    let (status, text) = post(&state, vec![10, 0], &proto).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("JSON encoding only"), "{text}");
    assert_eq!(state.metrics.accepted(), 0);
    drop((state, store));
    writer.join();
    Ok(())
}
