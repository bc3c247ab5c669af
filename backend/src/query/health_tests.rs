//! `/healthz`, `/readyz` and `/metrics` through the routers without sockets.

use super::readiness;
use crate::storage::sqlite::{SqliteStore, WriterThread};
use crate::storage::{QueueLimits, WriteHealth};
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use tower::ServiceExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn open() -> Result<(tempfile::TempDir, SqliteStore, WriterThread), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let limits = QueueLimits {
        requests: 4,
        spans: 100,
    };
    let (store, writer) = SqliteStore::open(&dir.path().join("h.db"), limits)?;
    Ok((dir, store, writer))
}

async fn call(
    router: &Router,
    request: Request<Body>,
) -> Result<(StatusCode, String), Box<dyn std::error::Error>> {
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(bytes.to_vec())?))
}

fn get(uri: &str) -> Result<Request<Body>, http::Error> {
    Request::get(uri).body(Body::empty())
}

fn post(content_type: &str, body: &str) -> Result<Request<Body>, http::Error> {
    Request::post("/v1/traces")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
}

#[tokio::test]
async fn healthz_and_readyz_answer_200_on_a_working_store() -> TestResult {
    let (_dir, store, writer) = open()?;
    let (_, query) = crate::routers(
        &store,
        crate::receive::Limits::with_body_limit(1 << 20),
        crate::query::QueryLimits::default(),
        &crate::BearerTokens::default(),
    );
    assert_eq!(
        call(&query, get("/healthz")?).await?,
        (StatusCode::OK, "ok".to_owned())
    );
    let (status, body) = call(&query, get("/readyz")?).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body)?["status"],
        "ready"
    );
    drop((query, store));
    writer.join();
    Ok(())
}

#[test]
fn readiness_fails_with_a_reason_when_the_writer_cannot_keep_up() {
    let ready = WriteHealth {
        writer_alive: true,
        last_write_failed: false,
        queued_requests: 0,
        request_capacity: 1,
        queued_spans: 0,
        span_capacity: 100,
    };
    assert_eq!(readiness(&ready), Ok(()));
    let full_queue = WriteHealth {
        queued_requests: 1,
        ..ready
    };
    assert_eq!(readiness(&full_queue), Err("the write queue is saturated"));
    let spans = WriteHealth {
        queued_spans: 95,
        ..ready
    };
    assert_eq!(
        readiness(&spans),
        Err("the queued-span budget is saturated")
    );
    let failing = WriteHealth {
        last_write_failed: true,
        ..ready
    };
    assert!(readiness(&failing).is_err());
    let gone = WriteHealth {
        writer_alive: false,
        ..ready
    };
    assert_eq!(readiness(&gone), Err("the writer thread has stopped"));
}

/// Samples of the text format: (name, labels) → value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse(text: &str) -> Result<Samples, String> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').ok_or(line)?;
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').ok_or(line)?),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or(line)?;
            map.insert(key.to_owned(), value.trim_matches('"').to_owned());
        }
        let value: f64 = value.parse().map_err(|_| line.to_owned())?;
        samples.insert((name.to_owned(), map), value);
    }
    Ok(samples)
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples.get(&(name.to_owned(), labels)).copied()
}

const VALID_AND_INVALID_SPAN: &str = r#"{"resourceSpans":[{
  "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
  "scopeSpans":[{"spans":[
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"pay","kind":2,
     "startTimeUnixNano":"1000","endTimeUnixNano":"2000"},
    {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000000","name":"bad","kind":2,
     "startTimeUnixNano":"1000","endTimeUnixNano":"2000"}]}]}]}"#;

#[tokio::test]
async fn metrics_count_what_the_receiver_accepted_and_refused() -> TestResult {
    let (_dir, store, writer) = open()?;
    let (receive, query) = crate::routers(
        &store,
        crate::receive::Limits::with_body_limit(1 << 20),
        crate::query::QueryLimits::default(),
        &crate::BearerTokens::default(),
    );
    let (status, body) = call(&receive, post("application/json", VALID_AND_INVALID_SPAN)?).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("rejectedSpans"), "{body}");
    let (status, _) = call(&receive, post("application/json", "{not json")?).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&receive, post("text/plain", "hello")?).await?;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    call(&query, get("/healthz")?).await?;

    let (status, text) = call(&query, get("/metrics")?).await?;
    assert_eq!(status, StatusCode::OK);
    for family in [
        "# TYPE otelite_spans_received_total counter",
        "# TYPE otelite_http_request_duration_seconds histogram",
        "# TYPE otelite_stage_spans_total counter",
        "# TYPE otelite_write_queue_requests gauge",
        "# TYPE otelite_database_size_bytes gauge",
    ] {
        assert!(text.contains(family), "no {family} in\n{text}");
    }
    let samples = parse(&text)?;
    let at = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);
    assert_eq!(at("otelite_spans_received_total", &[]), Some(2.0));
    assert_eq!(at("otelite_spans_accepted_total", &[]), Some(1.0));
    assert_eq!(
        at(
            "otelite_spans_rejected_total",
            &[("reason", "invalid_span")]
        ),
        Some(1.0)
    );
    assert_eq!(
        at("otelite_spans_rejected_total", &[("reason", "overloaded")]),
        Some(0.0)
    );
    assert_eq!(
        at("otelite_requests_rejected_total", &[("reason", "decode")]),
        Some(1.0)
    );
    assert_eq!(
        at(
            "otelite_requests_rejected_total",
            &[("reason", "unsupported_media_type")]
        ),
        Some(1.0)
    );
    assert_eq!(
        at(
            "otelite_requests_rejected_total",
            &[("reason", "too_large")]
        ),
        Some(0.0)
    );
    assert_eq!(
        at(
            "otelite_requests_rejected_total",
            &[("reason", "overloaded")]
        ),
        Some(0.0)
    );
    for stage in ["process", "analyze", "store"] {
        let labels = [("service", "checkout"), ("stage", stage)];
        assert_eq!(
            at("otelite_stage_spans_total", &labels),
            Some(1.0),
            "{stage}"
        );
    }
    assert_eq!(at("otelite_write_queue_requests", &[]), Some(0.0));
    assert_eq!(at("otelite_write_queue_spans", &[]), Some(0.0));
    assert_eq!(at("otelite_write_queue_requests_capacity", &[]), Some(4.0));
    assert!(at("otelite_database_size_bytes", &[]).is_some_and(|bytes| bytes > 0.0));
    assert_eq!(at("otelite_retention_deleted_spans_total", &[]), Some(0.0));
    let route = |route: &str, le: &str| {
        at(
            "otelite_http_request_duration_seconds_bucket",
            &[("route", route), ("le", le)],
        )
    };
    assert_eq!(route("/v1/traces", "+Inf"), Some(3.0));
    assert_eq!(route("/healthz", "+Inf"), Some(1.0));
    assert_eq!(
        at(
            "otelite_http_request_duration_seconds_count",
            &[("route", "/v1/traces")]
        ),
        Some(3.0)
    );
    drop((receive, query, store));
    writer.join();
    Ok(())
}
