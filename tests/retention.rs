//! Retention through the whole server: spans with old timestamps, stored by
//! a backend without retention, are gone after a restart with
//! `retention = 1h` (its first run is at start), while recent ones, the
//! stage rates and `/metrics` say what happened; shutdown does not wait
//! for the retention task.

use crate::support::{self, Backend};
use otelite_backend::storage::retention::{Age, Policy};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const OLD_TRACE: &str = "0101010101010101010101010101aaaa";
const NEW_TRACE: &str = "0202020202020202020202020202bbbb";

/// One OTLP/JSON request with a trace of two spans starting at `start_ns`.
fn request(trace_id: &str, start_ns: u128, order: &str) -> Vec<u8> {
    let span = |id: &str, parent: &str| {
        format!(
            r#"{{"traceId":"{trace_id}","spanId":"{id}","parentSpanId":"{parent}","name":"checkout",
                "kind":2,"startTimeUnixNano":"{start_ns}","endTimeUnixNano":"{}",
                "attributes":[{{"key":"order.id","value":{{"stringValue":"{order}"}}}}]}}"#,
            start_ns + 1_000_000
        )
    };
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"retained"}}}}]}},
            "scopeSpans":[{{"spans":[{},{}]}}]}}]}}"#,
        span("00000000000000a1", ""),
        span("00000000000000a2", "00000000000000a1")
    )
    .into_bytes()
}

async fn metric(backend: &Backend, name: &str) -> Option<f64> {
    let text = reqwest::get(backend.query_url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("read /metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_retention_deletes_old_traces_and_keeps_rates() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let two_days = Duration::from_secs(2 * 86_400).as_nanos();
    let backend = Backend::start().await;
    for body in [
        request(OLD_TRACE, now - two_days, "old-order"),
        request(NEW_TRACE, now, "new-order"),
    ] {
        let reply = backend
            .post("/v1/traces", "application/json", None, body)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(backend.wait_for_trace(OLD_TRACE, 2).await.len(), 2);
    let rates_before = backend
        .wait_for_rates("retained", |r| r.n("store") == Some(4))
        .await;

    let backend = Backend::restart_with(backend.stop().await, |config| {
        config.retention = Policy::new(Some(Age(Duration::from_secs(3600))), None);
    })
    .await;
    let runs = support::wait_until(
        "the retention run at start",
        || metric(&backend, "otelite_retention_runs_total"),
        |runs| runs.is_some_and(|n| n >= 1.0),
    )
    .await;
    assert_eq!(runs, Some(1.0), "one run at start, the next an hour away");
    assert_eq!(
        metric(&backend, "otelite_retention_deleted_spans_total").await,
        Some(2.0)
    );
    assert_eq!(backend.trace(OLD_TRACE).await, None);
    assert_eq!(backend.trace(NEW_TRACE).await.map(|s| s.len()), Some(2));
    assert!(
        backend
            .search("attribute=order.id=old-order")
            .await
            .is_empty()
    );
    assert_eq!(
        backend.search("attribute=order.id=new-order").await.len(),
        1
    );
    let rates_after = backend
        .rates("retained")
        .await
        .expect("service still listed");
    assert_eq!(
        rates_after.counts(),
        rates_before.counts(),
        "rates unchanged"
    );
    // Stopping must not wait for the next retention run (an hour away).
    backend.stop().await;
}
