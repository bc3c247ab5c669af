//! Evidence of loss without counters: spans whose parent never arrived
//! (orphans), counted after the grace period per service and window, as
//! `/api/rates`' `upstreamLossEstimate`, in `otelite rates` and as gauges
//! on `/metrics`. Both on each store.

use crate::support::fixtures::{self, otlp_request};
use crate::support::process::{blocking, otelite_bin};
use crate::support::{Backend, Store, for_each_store};
use otelite_model::{Span, SpanId, TraceId};
use prost::Message;
use serde_json::{Value, json};
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(1);

fn span(trace: u8, id: u8, parent: Option<u8>, service: &str) -> Span {
    fixtures::span(TraceId([trace; 16]), SpanId([0, 0, 0, 0, 0, 0, trace, id]))
        .parent_span_id(parent.map(|p| SpanId([0, 0, 0, 0, 0, 0, trace, p])))
        .service(service)
        .build()
}

async fn send(backend: &Backend, spans: &[Span]) {
    let body = otlp_request(spans).encode_to_vec();
    let reply = backend
        .post("/v1/traces", "application/x-protobuf", None, body)
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// The estimate of each service and of all (`""`), from `/api/rates`.
async fn estimates(backend: &Backend, query: &str) -> Vec<(String, Value)> {
    let (status, body) = backend.get_json(&format!("/api/rates{query}")).await;
    assert_eq!(status, 200, "{body}");
    let of = |rates: &Value| rates["upstreamLossEstimate"].clone();
    let mut out: Vec<(String, Value)> = body["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|r| (r["service"].as_str().unwrap_or("?").to_owned(), of(r)))
        .collect();
    out.push((String::new(), of(&body["all"])));
    out
}

fn estimate(lower_bound: u64, orphans: u64, grace_seconds: u64) -> Value {
    json!({ "lowerBound": lower_bound, "orphans": orphans, "graceSeconds": grace_seconds })
}

/// Waits until every service's spans are counted at the store.
async fn wait_stored(backend: &Backend, stored: &[(&str, u64)]) {
    for (service, n) in stored {
        backend
            .wait_for_rates(service, |r| r.n("store") == Some(*n))
            .await;
    }
}

/// gateway → shop → pay, five traces sent with parents missing:
/// - 1: gateway's root lost, its two shop children stored (2 orphans, 1 parent);
/// - 2: a shop span whose shop parent is lost (1 orphan), with a pay child
///   whose parent did arrive (no orphan);
/// - 3: whole, gateway → shop → pay (none);
/// - 4: a pay child first, its shop parent a moment later, within the grace
///   period (none);
/// - 5: a pay child whose parent is lost (1 orphan).
fn the_five_traces() -> (Vec<Span>, Vec<Span>) {
    let first = vec![
        span(1, 2, Some(1), "shop"),
        span(1, 3, Some(1), "shop"),
        span(2, 2, Some(1), "shop"),
        span(2, 3, Some(2), "pay"),
        span(3, 1, None, "gateway"),
        span(3, 2, Some(1), "shop"),
        span(3, 3, Some(2), "pay"),
        span(4, 3, Some(2), "pay"),
        span(5, 3, Some(2), "pay"),
    ];
    let late_parent = vec![span(4, 2, None, "shop")];
    (first, late_parent)
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    spans_whose_parent_never_came_count_for_their_own_service_after_the_grace_period
);

async fn spans_whose_parent_never_came_count_for_their_own_service_after_the_grace_period(
    store: Store,
) {
    let backend = Backend::start_on(store, "orphans", |config| {
        config.query_limits.orphan_grace = GRACE;
    })
    .await;
    let (first, late_parent) = the_five_traces();
    send(&backend, &first).await;
    send(&backend, &late_parent).await;
    // Past the grace period (ClickHouse keeps arrival in whole seconds).
    tokio::time::sleep(GRACE + Duration::from_millis(2_500)).await;
    wait_stored(&backend, &[("gateway", 1), ("shop", 5), ("pay", 4)]).await;
    assert_eq!(
        estimates(&backend, "").await,
        vec![
            ("gateway".to_owned(), estimate(0, 0, 1)),
            ("pay".to_owned(), estimate(1, 1, 1)),
            ("shop".to_owned(), estimate(2, 3, 1)),
            (String::new(), estimate(3, 4, 1)),
        ]
    );
    // One service: the sum is its own.
    assert_eq!(
        estimates(&backend, "?service=shop").await,
        vec![
            ("shop".to_owned(), estimate(2, 3, 1)),
            (String::new(), estimate(2, 3, 1)),
        ]
    );
    // A window that ended before they arrived has none.
    assert_eq!(
        estimates(&backend, "?start=0&end=60000000000").await,
        vec![(String::new(), estimate(0, 0, 1))]
    );
    // /metrics: the same per service, as gauges.
    let metrics = format!("http://{}/metrics", backend.query);
    for (series, value) in [
        (
            "otelite_upstream_loss_estimate_spans{service=\"shop\"}",
            2.0,
        ),
        ("otelite_orphan_spans{service=\"shop\"}", 3.0),
        ("otelite_upstream_loss_estimate_spans{service=\"pay\"}", 1.0),
    ] {
        let sample = crate::support::metric_sample(metrics.clone(), series).await;
        assert_eq!(sample, Some(value), "{series}");
    }
    // `otelite rates` reads the same store and shows it, labelled; with
    // --server, as the server counted it.
    let store_flags = match backend.clickhouse_url() {
        Some(url) => vec!["--clickhouse-url".to_owned(), url],
        None => vec!["--db".to_owned(), backend.db_path().display().to_string()],
    };
    let server_flags = vec!["--server".to_owned(), format!("http://{}", backend.query)];
    for source in [store_flags, server_flags] {
        let table = otelite_rates(source).await;
        assert!(table.contains("UPSTREAM LOSS (ESTIMATE)"), "{table}");
        let shop = table.lines().find(|l| l.starts_with("shop")).unwrap_or("");
        assert!(shop.trim_end().ends_with(">= 2 (3 orphans)"), "{table}");
        assert!(
            table.contains("upstream loss (estimate): at least 3 spans lost before otelite"),
            "{table}"
        );
    }
}

/// `otelite rates --orphan-grace 1s` with `source`'s flags: its table.
async fn otelite_rates(source: Vec<String>) -> String {
    blocking(move || {
        let mut args = vec![
            "rates".to_owned(),
            "--orphan-grace".to_owned(),
            "1s".to_owned(),
        ];
        args.extend(source);
        let out = std::process::Command::new(otelite_bin())
            .args(&args)
            .env_remove("OTELITE_ORPHAN_GRACE")
            .env_remove("OTELITE_SERVER")
            .env_remove("OTELITE_QUERY_TOKEN")
            .output()
            .expect("run otelite rates");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    within_the_grace_period_no_span_is_an_orphan_yet
);

/// The same traces under the default grace period (60 s): stored and
/// counted, but their parents may still come, so nothing is estimated lost.
async fn within_the_grace_period_no_span_is_an_orphan_yet(store: Store) {
    let backend = Backend::start_on(store, "orphans", |_| {}).await;
    let (first, _) = the_five_traces();
    send(&backend, &first).await;
    wait_stored(&backend, &[("gateway", 1), ("shop", 4), ("pay", 4)]).await;
    let estimates = estimates(&backend, "").await;
    assert_eq!(
        estimates.last(),
        Some(&(String::new(), estimate(0, 0, 60))),
        "{estimates:?}"
    );
}
