//! Replication (issue 20): two ClickHouse 18.16 replicas of one shard over
//! a ZooKeeper, otelite on `?replicas=2` (replicated tables, INSERTs that
//! wait for both replicas). Every span acknowledged while both were up is
//! on the survivor the moment the other is killed (no waiting: the quorum
//! had both before the 200), and the killed one, restarted, has everything
//! written while it was gone.

use crate::support::clickhouse::ClickHouseServer;
use crate::support::fixtures::{otlp_request, span};
use crate::support::zookeeper::ZooKeeper;
use crate::support::{Backend, eventually, unique_trace_id};
use otelite_model::SpanId;
use prost::Message;

const SPANS_PER_BATCH: u8 = 5;

async fn backend_on(url: String) -> Backend {
    Backend::start_with(|config| {
        config.store = otelite_backend::StoreKind::Clickhouse;
        config.clickhouse_url = url;
    })
    .await
}

/// Sends `batches` batches of one new trace each; the trace ids
/// acknowledged (200).
async fn send(backend: &Backend, tag: u8, batches: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for _ in 0..batches {
        let trace = unique_trace_id(tag);
        let spans: Vec<_> = (1..=SPANS_PER_BATCH)
            .map(|i| span(trace, SpanId([i; 8])).service("replicated").build())
            .collect();
        let body = otlp_request(&spans).encode_to_vec();
        let reply = backend
            .post("/v1/traces", "application/x-protobuf", None, body)
            .await;
        if reply.status == 200 {
            acked.push(hex::encode(trace.0));
        }
    }
    acked
}

/// Spans of each trace stored on `server`, in the order of `traces`.
async fn spans_on(server: &ClickHouseServer, traces: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    for trace in traces {
        let n = server
            .sql_in(
                "replicated",
                &format!("SELECT count() FROM spans_by_trace WHERE trace_id = unhex('{trace}')"),
            )
            .await;
        out.push(n.trim().parse().unwrap_or(u64::MAX));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails: the second replica's migration creates version 1 tables, which ZooKeeper \
            (holding the first replica's version 3 columns) refuses: Code 122 'Table structure \
            in ZooKeeper is too different'; replicated tables must be created in their final form"]
async fn an_acknowledged_span_survives_the_loss_of_a_replica_and_the_replica_catches_up() {
    let zookeeper = ZooKeeper::start().await;
    let mut a = ClickHouseServer::start_replica(zookeeper.port, "a").await;
    let b = ClickHouseServer::start_replica(zookeeper.port, "b").await;
    // Each replica's tables are created by an otelite talking to it.
    let through_a = backend_on(format!("{}?replicas=2", a.otelite_url("replicated"))).await;
    let through_b = backend_on(format!("{}?replicas=2", b.otelite_url("replicated"))).await;
    let engine = b
        .sql(
            "SELECT engine FROM system.tables WHERE database = 'replicated' AND name = 'spans_by_trace'",
        )
        .await;
    assert_eq!(engine.trim(), "ReplicatedMergeTree");

    let acked = send(&through_a, 1, 10).await;
    assert_eq!(
        acked.len(),
        10,
        "both replicas up: every batch acknowledged"
    );
    a.stop();
    let every = vec![u64::from(SPANS_PER_BATCH); acked.len()];
    assert_eq!(
        spans_on(&b, &acked).await,
        every,
        "on b as soon as a is gone"
    );

    a.start_again().await;
    // Writes need both replicas again: wait until a is back in the quorum.
    let later = eventually(|| send(&through_b, 2, 1), |acked| acked.len() == 1).await;
    assert_eq!(later.len(), 1, "b takes writes once a is back");
    let mut all = acked.clone();
    all.extend(later);
    let more = send(&through_b, 3, 5).await;
    assert_eq!(more.len(), 5);
    all.extend(more);
    let every = vec![u64::from(SPANS_PER_BATCH); all.len()];
    let on_a = eventually(|| spans_on(&a, &all), |n| *n == every).await;
    assert_eq!(on_a, every, "a has caught up");
    assert_eq!(spans_on(&b, &all).await, every);
    let rates = through_b
        .wait_for_rates("replicated", |r| r.n("store") == Some(80))
        .await;
    assert_eq!(rates.n("process"), Some(80), "{rates:#?}");
    drop((through_a, through_b));
}
