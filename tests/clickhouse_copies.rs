//! Copies of a batch at two receivers on one ClickHouse database (issue
//! 20): each span is counted once at process, analyze and store, whether
//! the copies reach the receivers at the same moment (both find the batch
//! not yet stored and both store it) or one after the other (a retry, found
//! stored).

use crate::support::clickhouse::ClickHouseServer;
use crate::support::fixtures::{otlp_request, span};
use crate::support::{Backend, metric_sample, unique_trace_id, wait_until};
use otelite_model::SpanId;
use prost::Message;

const SERVICE: &str = "copied";
const SPANS: u64 = 3;

fn batch(tag: u8) -> (String, Vec<u8>) {
    let trace = unique_trace_id(tag);
    let spans: Vec<_> = (1..=SPANS as u8)
        .map(|i| span(trace, SpanId([i; 8])).service(SERVICE).build())
        .collect();
    (hex::encode(trace.0), otlp_request(&spans).encode_to_vec())
}

async fn post(receiver: &Backend, body: &[u8]) -> u16 {
    receiver
        .post("/v1/traces", "application/x-protobuf", None, body.to_vec())
        .await
        .status
}

/// The write requests `receiver` has queued for ClickHouse.
async fn queued(receiver: &Backend) -> Option<f64> {
    metric_sample(
        receiver.query_url("/metrics"),
        "otelite_write_queue_requests",
    )
    .await
}

/// One number from `server`'s database `copies`.
async fn number(server: &ClickHouseServer, sql: &str) -> u64 {
    let text = server.sql_in("copies", sql).await;
    text.trim().parse().unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_at_two_receivers_are_counted_once_at_every_stage() {
    let server = ClickHouseServer::start().await;
    let url = server.otelite_url("copies");
    let start = || {
        let url = url.clone();
        Backend::start_with(move |config| {
            config.store = otelite_backend::StoreKind::Clickhouse;
            config.clickhouse_url = url;
        })
    };
    // One after the other: the first creates the schema.
    let one = start().await;
    let two = start().await;

    // At the same moment: ClickHouse is frozen until both receivers have
    // the batch queued, so both usually find it not stored and store it; a
    // writer slow to ask (a busy machine) finds the other's copy, so new
    // batches are sent until one was stored twice. Each is counted once.
    let mut sent: u8 = 0;
    let raced = loop {
        sent += 1;
        let (trace, body) = batch(sent);
        server.signal("STOP");
        let release = async {
            for receiver in [&one, &two] {
                wait_until("the batch queued", || queued(receiver), |n| *n == Some(1.0)).await;
            }
            server.signal("CONT");
        };
        let (first, second, ()) = tokio::join!(post(&one, &body), post(&two, &body), release);
        assert_eq!((first, second), (200, 200));
        let stored = number(
            &server,
            &format!("SELECT count() FROM spans_by_trace WHERE trace_id = unhex('{trace}')"),
        )
        .await;
        if stored == 2 * SPANS || sent == 5 {
            break stored == 2 * SPANS;
        }
    };
    assert!(raced, "no batch of {sent} stored by both receivers");
    let counted = number(
        &server,
        "SELECT sum(n) FROM stage_counts WHERE stage = 'store'",
    )
    .await;
    assert_eq!(
        counted,
        (u64::from(sent) + 1) * SPANS,
        "each INSERT counted its copy"
    );

    // One after the other: the second copy is found stored.
    let (_, body) = batch(100);
    assert_eq!(post(&one, &body).await, 200);
    assert_eq!(post(&two, &body).await, 200);

    for receiver in [&one, &two] {
        let rates = receiver.rates(SERVICE).await;
        let counts = rates
            .as_ref()
            .map(|r| ["process", "analyze", "store"].map(|stage| r.n(stage)));
        assert_eq!(
            counts,
            Some([Some((u64::from(sent) + 1) * SPANS); 3]),
            "process, analyze, store: each span once: {rates:#?}"
        );
    }
}
