use super::latency::{Histogram, RouteLatency};
use super::*;
use crate::storage::WriteHealth;

#[test]
fn histogram_buckets_are_cumulative_and_end_with_the_total() {
    let histogram = Histogram::default();
    for seconds in [0.0005, 0.003, 0.003, 20.0] {
        histogram.observe(seconds);
    }
    let (cumulative, sum) = histogram.snapshot();
    assert_eq!(cumulative.len(), BUCKETS_SECONDS.len() + 1);
    assert_eq!(cumulative[0], 1); // ≤ 1 ms
    assert_eq!(cumulative[2], 3); // ≤ 5 ms
    assert_eq!(cumulative[BUCKETS_SECONDS.len() - 1], 3); // ≤ 10 s
    assert_eq!(cumulative.last(), Some(&4));
    assert!((sum - 20.0065).abs() < 1e-6);
}

#[test]
fn each_route_gets_one_histogram_and_unmatched_requests_count_as_other() {
    let latency = RouteLatency::default();
    latency.histogram(Some("/a")).observe(0.1);
    latency.histogram(Some("/b")).observe(0.1);
    latency.histogram(Some("/a")).observe(0.1);
    latency.histogram(None).observe(0.1);
    let counts: Vec<(&str, u64)> = latency
        .snapshot()
        .into_iter()
        .map(|(route, h)| (route, h.snapshot().0.last().copied().unwrap_or(0)))
        .collect();
    assert_eq!(counts, [("/a", 2), ("/b", 1), ("other", 1)]);
}

#[test]
fn label_values_are_escaped() {
    let gauges = StoreGauges {
        health: WriteHealth {
            writer_alive: true,
            last_write_failed: false,
            queued_requests: 0,
            request_capacity: 1,
            queued_spans: 0,
            span_capacity: 1,
        },
        stage_counts: Some(vec![("a\"b\\c\nd".into(), crate::stage::Stage::Store, 3)]),
        policy_drops: None,
        orphans: None,
        db_bytes: 0,
        db_peak_bytes: None,
        retention: crate::storage::retention::Totals::default(),
    };
    let text = render(&Metrics::default(), &gauges);
    assert!(
        text.contains(r#"otelite_stage_spans_total{service="a\"b\\c\nd",stage="store"} 3"#),
        "{text}"
    );
}

#[test]
fn retention_totals_are_exposed() {
    let gauges = StoreGauges {
        health: WriteHealth {
            writer_alive: true,
            last_write_failed: false,
            queued_requests: 0,
            request_capacity: 1,
            queued_spans: 0,
            span_capacity: 1,
        },
        stage_counts: None,
        policy_drops: None,
        orphans: None,
        db_bytes: 0,
        db_peak_bytes: None,
        retention: crate::storage::retention::Totals {
            deleted_spans: 4502,
            deleted_traces: 1501,
            batches: 3,
            runs: 1,
        },
    };
    let text = render(&Metrics::default(), &gauges);
    for line in [
        "otelite_retention_deleted_spans_total 4502",
        "otelite_retention_deleted_traces_total 1501",
        "otelite_retention_batches_total 3",
        "otelite_retention_runs_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}

#[test]
fn policy_drops_are_a_counter_by_rule_apart_from_the_stage_counts() {
    use crate::stage::Stage;
    use crate::storage::RateRow;
    let row = |stage, reason: Option<&str>, n| RateRow {
        service: "shop".into(),
        stage,
        reason: reason.map(Into::into),
        n,
    };
    let (counts, drops) = super::split_stage_rows(vec![
        row(Stage::Process, None, 10),
        row(Stage::Analyze, None, 7),
        row(Stage::Analyze, Some("policy:health-checks"), 3),
        row(Stage::Store, Some("conflict"), 1),
    ]);
    let gauges = StoreGauges {
        health: WriteHealth {
            writer_alive: true,
            last_write_failed: false,
            queued_requests: 0,
            request_capacity: 1,
            queued_spans: 0,
            span_capacity: 1,
        },
        stage_counts: Some(counts),
        policy_drops: Some(drops),
        orphans: None,
        db_bytes: 0,
        db_peak_bytes: None,
        retention: crate::storage::retention::Totals::default(),
    };
    let text = render(&Metrics::default(), &gauges);
    assert!(
        text.contains(
            "otelite_policy_dropped_spans_total{rule=\"health-checks\",service=\"shop\"} 3\n"
        ),
        "{text}"
    );
    assert!(text.contains("otelite_stage_spans_total{service=\"shop\",stage=\"analyze\"} 7\n"));
    // Neither a drop nor a loss is added to the stage it happened at.
    assert_eq!(text.matches("stage=\"analyze\"").count(), 1, "{text}");
    assert!(!text.contains("stage=\"store\""), "{text}");
}

#[test]
fn the_upstream_loss_estimate_is_a_gauge_per_service() {
    let orphans = |service: Option<&str>, spans, parents| crate::storage::Orphans {
        service: service.map(Into::into),
        spans,
        parents,
        grace: std::time::Duration::from_secs(60),
    };
    let gauges = StoreGauges {
        health: WriteHealth {
            writer_alive: true,
            last_write_failed: false,
            queued_requests: 0,
            request_capacity: 1,
            queued_spans: 0,
            span_capacity: 1,
        },
        stage_counts: None,
        policy_drops: None,
        orphans: Some(vec![orphans(Some("shop"), 3, 2), orphans(None, 3, 2)]),
        db_bytes: 0,
        db_peak_bytes: None,
        retention: crate::storage::retention::Totals::default(),
    };
    let text = render(&Metrics::default(), &gauges);
    for line in [
        "# TYPE otelite_upstream_loss_estimate_spans gauge",
        "otelite_upstream_loss_estimate_spans{service=\"shop\"} 2",
        "# TYPE otelite_orphan_spans gauge",
        "otelite_orphan_spans{service=\"shop\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    // Per service only: the row for all is no series.
    assert_eq!(text.matches("otelite_orphan_spans{").count(), 1, "{text}");
}
