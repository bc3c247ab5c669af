//! The ClickHouse store when ClickHouse fails (issue 17): a server stopped
//! while otelite serves makes it answer 503 and count the spans lost at
//! the store with their cause (`write_failed`), written once the server is
//! back; the client's retry stores them and takes the loss back, so
//! nothing counts twice. An INSERT that ClickHouse took but whose answer
//! was lost is stored and counted once, not lost.

use crate::support::clickhouse::ClickHouseServer;
use crate::support::fixtures::{otlp_request, span};
use crate::support::{Backend, ServiceRates, unique_trace_id};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use otelite_model::SpanId;
use prost::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::TcpListener;

const PROTOBUF: &str = "application/x-protobuf";

/// `n` spans of `service` in one new trace, as an OTLP request.
fn batch(service: &str, tag: u8, n: u8) -> (String, Vec<u8>) {
    let trace = unique_trace_id(tag);
    let spans: Vec<_> = (1..=n)
        .map(|i| span(trace, SpanId([i; 8])).service(service).build())
        .collect();
    (hex::encode(trace.0), otlp_request(&spans).encode_to_vec())
}

async fn backend_on(url: String) -> Backend {
    Backend::start_with(|config| {
        config.store = otelite_backend::StoreKind::Clickhouse;
        config.clickhouse_url = url;
    })
    .await
}

/// The store stage's passed spans and its losses by reason.
fn store(rates: &ServiceRates) -> (Option<u64>, Vec<(String, u64)>) {
    let stage = rates.stage("store");
    let reasons = stage.reasons.iter().map(|(r, n)| (r.clone(), *n)).collect();
    (stage.n, reasons)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_clickhouse_loses_spans_at_the_store_until_they_come_again() {
    let mut server = ClickHouseServer::start().await;
    let backend = backend_on(server.otelite_url("outage")).await;
    let (_, before) = batch("outage", 1, 3);
    let reply = backend.post("/v1/traces", PROTOBUF, None, before).await;
    assert_eq!(reply.status, 200, "stored while ClickHouse is up");

    server.stop();
    let (trace, during) = batch("outage", 2, 4);
    for _ in 0..2 {
        let reply = backend
            .post("/v1/traces", PROTOBUF, None, during.clone())
            .await;
        assert_eq!(reply.status, 503, "a client retries a 503");
        assert!(reply.retry_after.is_some(), "with Retry-After");
    }

    // Kept in memory while ClickHouse is down, written once it is back
    // without new traffic: 4 spans lost once, though sent twice.
    server.start_again().await;
    let rates = backend
        .wait_for_rates("outage", |r| {
            r.stage("store").reasons.get("write_failed") == Some(&4)
        })
        .await;
    assert_eq!(rates.n("process"), Some(7), "{rates:#?}");
    assert_eq!(rates.n("analyze"), Some(7), "{rates:#?}");
    assert_eq!(
        store(&rates),
        (Some(3), vec![("write_failed".to_owned(), 4)]),
        "{rates:#?}"
    );

    // The client's retry: stored, and the loss taken back (before the
    // answer: the rates read now are final).
    let reply = backend.post("/v1/traces", PROTOBUF, None, during).await;
    assert_eq!(reply.status, 200, "stored once ClickHouse is back");
    let rates = backend
        .rates("outage")
        .await
        .expect("/api/rates lists the service");
    assert_eq!(rates.n("process"), Some(7), "{rates:#?}");
    assert_eq!(rates.n("analyze"), Some(7), "{rates:#?}");
    assert_eq!(store(&rates), (Some(7), vec![]), "{rates:#?}");
    assert_eq!(rates.stage("store").lost, Some(0), "{rates:#?}");
    assert_eq!(backend.wait_for_trace(&trace, 4).await.len(), 4);
    let rows = server
        .sql_in(
            "outage",
            &format!("SELECT count() FROM spans_by_trace WHERE trace_id = unhex('{trace}')"),
        )
        .await;
    assert_eq!(rows.trim(), "4", "stored once");
}

/// An INSERT that ClickHouse took but whose answer never reached otelite
/// (the connection dropped): the store's own retry finds the spans stored
/// and answers 200; they are counted once and lost nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_whose_answer_was_lost_is_stored_and_counted_once() {
    let server = crate::support::clickhouse::shared().await;
    let database = crate::support::clickhouse::database("lost_answer");
    let proxy = AnswerDropper::start(server.http_port).await;
    let backend = backend_on(format!("{}/{database}", proxy.url())).await;

    proxy.drop_next_inserts(1);
    let (trace, body) = batch("lost-answer", 3, 5);
    let reply = backend.post("/v1/traces", PROTOBUF, None, body).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(proxy.dropped(), 1, "the first INSERT's answer was dropped");

    let rates = backend
        .wait_for_rates("lost-answer", |r| r.stage("store").n == Some(5))
        .await;
    assert_eq!(rates.n("process"), Some(5), "{rates:#?}");
    assert_eq!(rates.n("analyze"), Some(5), "{rates:#?}");
    assert_eq!(store(&rates), (Some(5), vec![]), "{rates:#?}");
    let rows = server
        .sql_in(
            &database,
            &format!("SELECT count() FROM spans_by_trace WHERE trace_id = unhex('{trace}')"),
        )
        .await;
    assert_eq!(rows.trim(), "5", "stored once");
}

/// An HTTP proxy in front of ClickHouse that forwards every request and,
/// for the next N span INSERTs, waits for ClickHouse's answer and then
/// closes the connection instead of passing it on.
struct AnswerDropper {
    port: u16,
    to_drop: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl AnswerDropper {
    async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("its address").port();
        let to_drop = Arc::new(AtomicU32::new(0));
        let dropped = Arc::new(AtomicU32::new(0));
        let (drop_next, counted) = (to_drop.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (client, drop_next, counted) =
                    (client.clone(), drop_next.clone(), counted.clone());
                tokio::spawn(async move {
                    let serve = hyper::service::service_fn(move |request| {
                        forward(
                            client.clone(),
                            upstream_port,
                            drop_next.clone(),
                            counted.clone(),
                            request,
                        )
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, serve)
                        .await;
                });
            }
        });
        Self {
            port,
            to_drop,
            dropped,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn drop_next_inserts(&self, n: u32) {
        self.to_drop.store(n, Ordering::SeqCst);
    }

    fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for AnswerDropper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer was dropped on purpose.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped")
    }
}

impl std::error::Error for Dropped {}

async fn forward(
    client: reqwest::Client,
    upstream_port: u16,
    to_drop: Arc<AtomicU32>,
    dropped: Arc<AtomicU32>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Dropped> {
    let target = request.uri().path_and_query().map(|p| p.to_string());
    let target = target.unwrap_or_default();
    let is_span_insert = target.contains("spans_in");
    let method = request.method().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|_| Dropped)?
        .to_bytes();
    let answer = client
        .request(method, format!("http://127.0.0.1:{upstream_port}{target}"))
        .body(body)
        .send()
        .await
        .map_err(|_| Dropped)?;
    let status = answer.status();
    let bytes = answer.bytes().await.map_err(|_| Dropped)?;
    let drop_it = is_span_insert
        && to_drop
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if drop_it {
        dropped.fetch_add(1, Ordering::SeqCst);
        // An error from the service closes the connection unanswered.
        return Err(Dropped);
    }
    let mut response = http::Response::new(Full::new(bytes));
    *response.status_mut() = status;
    Ok(response)
}
