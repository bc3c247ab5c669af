//! Replication (issue 20): two ClickHouse 18.16 replicas of one shard over
//! a ZooKeeper, otelite on `?replicas=2` (replicated tables, INSERTs that
//! wait for both replicas), one receiver on each. One replica is killed
//! under load: every span acknowledged is on the survivor at once (no
//! waiting: the quorum had both before the 200), writes are refused (503)
//! until the killed one is back, and it then has everything.

use crate::support::clickhouse::ClickHouseServer;
use crate::support::fixtures::{otlp_request, span};
use crate::support::zookeeper::ZooKeeper;
use crate::support::{Backend, eventually_within, unique_trace_id, wait_until, wait_until_within};
use otelite_model::SpanId;
use prost::Message;
use std::cell::{Cell, RefCell};
use std::time::Duration;

const SPANS_PER_BATCH: u8 = 5;

/// How long the replicas get to be whole again once the killed one is back
/// (0.2–0.3 s on an idle machine here). A write the kill cut short can
/// leave a quorum unfinished, and every later write is refused until
/// ClickHouse's background fetch has put that part on both replicas; a
/// busy CI slows those fetches down.
const RECOVERY: Duration = Duration::from_secs(180);

async fn backend_on(url: String) -> Backend {
    Backend::start_with(|config| {
        config.store = otelite_backend::StoreKind::Clickhouse;
        config.clickhouse_url = url;
    })
    .await
}

/// Sends one batch of one new trace: its id if acknowledged (200), else
/// the refusal's status and body.
async fn send(backend: &Backend, tag: u8) -> Result<String, String> {
    let trace = unique_trace_id(tag);
    let spans: Vec<_> = (1..=SPANS_PER_BATCH)
        .map(|i| span(trace, SpanId([i; 8])).service("replicated").build())
        .collect();
    let body = otlp_request(&spans).encode_to_vec();
    let reply = backend
        .post("/v1/traces", "application/x-protobuf", None, body)
        .await;
    if reply.status == 200 {
        Ok(hex::encode(trace.0))
    } else {
        Err(format!(
            "{} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ))
    }
}

/// Sends batches through `backend` until one is acknowledged; fails the
/// test, with the last refusal, if none is within [`RECOVERY`].
async fn send_until_acked(what: &str, backend: &Backend, tag: u8) -> String {
    let last = wait_until_within(RECOVERY, what, || send(backend, tag), Result::is_ok).await;
    last.unwrap_or_default()
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

/// What the load has heard so far: trace ids acknowledged, and refusals
/// since the kill per receiver (a's, b's).
#[derive(Default)]
struct Heard {
    acked: RefCell<Vec<String>>,
    refused: [Cell<usize>; 2],
}

/// Sends one batch at a time through each receiver in turn until `stop`.
async fn load(receivers: [&Backend; 2], heard: &Heard, stop: &Cell<bool>) {
    while !stop.get() {
        for (at, receiver) in receivers.iter().enumerate() {
            match send(receiver, 1).await {
                Ok(trace) => heard.acked.borrow_mut().push(trace),
                Err(_) => heard.refused[at].set(heard.refused[at].get() + 1),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

    // Load through both receivers; a is killed once ten batches are in,
    // and the load goes on until each receiver has refused one.
    let (heard, stop) = (Heard::default(), Cell::new(false));
    let kill = async {
        wait_until(
            "ten batches acknowledged",
            || async { heard.acked.borrow().len() },
            |n| *n >= 10,
        )
        .await;
        a.stop();
        heard.refused.iter().for_each(|n| n.set(0));
        wait_until(
            "each receiver refuses a batch without replica a",
            || async { heard.refused.iter().map(Cell::get).min() },
            |n| *n >= Some(1),
        )
        .await;
        stop.set(true);
    };
    tokio::join!(load([&through_a, &through_b], &heard, &stop), kill);
    let acked = heard.acked.take();
    let every = vec![u64::from(SPANS_PER_BATCH); acked.len()];
    assert_eq!(
        spans_on(&b, &acked).await,
        every,
        "every acknowledged span on b, with a gone"
    );

    a.start_again().await;
    // Writes need both replicas again: wait until a is back in the quorum.
    let mut all = acked;
    all.push(send_until_acked("b takes writes once a is back", &through_b, 2).await);
    all.push(send_until_acked("a takes writes once it is back", &through_a, 3).await);
    for _ in 0..4 {
        all.push(send_until_acked("a keeps taking writes", &through_a, 3).await);
    }
    let every = vec![u64::from(SPANS_PER_BATCH); all.len()];
    let on_a = eventually_within(RECOVERY, || spans_on(&a, &all), |n| *n == every).await;
    assert_eq!(on_a, every, "a has caught up");
    assert_eq!(spans_on(&b, &all).await, every);
    drop((through_a, through_b));
}
