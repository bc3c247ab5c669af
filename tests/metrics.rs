//! `/metrics` read by the Prometheus project's own text-format parser
//! (`prometheus_client`, Python), after real traffic: every family parses,
//! and the counts agree with what was sent; on both stores.

use crate::support::foreign::{MetricFamily as Family, parse_prometheus};
use crate::support::{Backend, Store, for_each_store, otelite_provider, shutdown};
use opentelemetry::trace::{Tracer, TracerProvider};
use std::collections::BTreeMap;

/// Runs the parser over `text`; panics with its message if it refuses it.
fn parse(text: &str) -> Vec<Family> {
    parse_prometheus(text, "/metrics")
}

fn value(families: &[Family], sample: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .flat_map(|f| &f.samples)
        .find(|s| {
            s.name == sample
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread")]
    prometheus_parses_metrics_that_count_the_traffic
);
async fn prometheus_parses_metrics_that_count_the_traffic(store: Store) {
    const SPANS: usize = 7;
    let backend = Backend::start_on(store, "metrics", |_| {}).await;
    let provider = otelite_provider(&backend.otlp_url(), "metrics-svc", None);
    let tracer = provider.tracer("metrics");
    for i in 0..SPANS {
        tracer.in_span(format!("op-{i}"), |_| {});
    }
    shutdown(provider).await;
    // Give the final counter report its stage rows before reading.
    backend
        .wait_for_rates("metrics-svc", |r| r.n("store") == Some(SPANS as u64))
        .await;

    let text = reqwest::get(backend.query_url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let families = parse(&text);
    let kinds: BTreeMap<&str, &str> = families
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(
        kinds.get("otelite_spans_accepted"),
        Some(&"counter"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.get("otelite_http_request_duration_seconds"),
        Some(&"histogram"),
        "{kinds:?}"
    );
    let accepted = value(&families, "otelite_spans_accepted_total", &[]);
    assert_eq!(accepted, Some(SPANS as f64), "{text}");
    let stored = value(
        &families,
        "otelite_stage_spans_total",
        &[("service", "metrics-svc"), ("stage", "store")],
    );
    assert_eq!(stored, Some(SPANS as f64), "{text}");
    // A histogram's +Inf bucket counts every observation.
    let route = [("route", "/v1/traces")];
    let count = value(
        &families,
        "otelite_http_request_duration_seconds_count",
        &route,
    );
    let inf = value(
        &families,
        "otelite_http_request_duration_seconds_bucket",
        &[("route", "/v1/traces"), ("le", "+Inf")],
    );
    assert!(count.is_some_and(|c| c >= 1.0), "{text}");
    assert_eq!(inf, count, "{text}");
}
