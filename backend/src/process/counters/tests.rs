use super::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue as PbValue, KeyValue as PbKv, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, Sum};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use std::net::SocketAddr;

fn kv(key: &str, value: any_value::Value) -> PbKv {
    PbKv {
        key: key.into(),
        value: Some(PbValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> PbKv {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn point(value: i64, attributes: Vec<PbKv>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: 7,
        time_unix_nano: 60_000_000_000,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn sum(name: &str, monotonic: bool, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn request(instance: &str, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(PbResource {
                attributes: vec![
                    text("service.name", "py"),
                    text("service.instance.id", instance),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// (stage, reason, value, subtracts) of each point, in order.
fn summary(points: &[CounterPoint]) -> Vec<(Stage, Option<&str>, u64, bool)> {
    points
        .iter()
        .map(|p| (p.stage, p.reason.as_deref(), p.value, p.subtracts))
        .collect()
}

/// What the Python SDK 1.45.1 sends with its internal metrics on, after a
/// burst that overflowed its queue (the names and attributes it uses).
fn python_sdk_report(exporter_ports: &[i64]) -> Vec<Metric> {
    let sampled = || vec![text("otel.span.sampling_result", "RECORD_AND_SAMPLE")];
    let processor = |error: Option<&str>| {
        let mut attributes = vec![
            text("otel.component.type", "batching_span_processor"),
            text("otel.component.name", "batching_span_processor/0"),
        ];
        attributes.extend(error.map(|e| text("error.type", e)));
        attributes
    };
    let exporter = |port: i64| {
        vec![
            text("otel.component.type", "otlp_http_span_exporter"),
            text("server.address", "127.0.0.1"),
            kv("server.port", any_value::Value::IntValue(port)),
        ]
    };
    vec![
        sum(
            STARTED,
            true,
            vec![
                point(20_000, sampled()),
                point(5, vec![text("otel.span.sampling_result", "DROP")]),
            ],
        ),
        sum(LIVE, false, vec![point(3, sampled())]),
        sum(
            PROCESSED,
            true,
            vec![
                point(12_030, processor(None)),
                point(7_967, processor(Some("queue_full"))),
            ],
        ),
        sum(
            EXPORTED,
            true,
            exporter_ports
                .iter()
                .map(|p| point(12_030, exporter(*p)))
                .collect(),
        ),
    ]
}

#[test]
fn the_current_conventions_give_every_stage_and_each_loss_its_reason() {
    let points = counter_points(
        request("i-1", python_sdk_report(&[4318])),
        &Destination::default(),
    );
    assert_eq!(
        summary(&points),
        vec![
            (Stage::Total, None, 20_000, false),
            (Stage::Total, None, 3, true),
            (Stage::Collect, None, 12_030, false),
            (Stage::Collect, Some("queue_full"), 7_967, false),
            (Stage::Transmit, None, 12_030, false),
        ]
    );
    assert!(points.iter().all(|p| p.service == "py" && p.cumulative));
    let live = &points[1];
    assert!(!live.monotonic, "live is an up-down counter");
}

#[test]
fn an_sdk_that_sends_ended_counts_total_by_it_alone() {
    let mut metrics = python_sdk_report(&[4318]);
    metrics.push(sum(ENDED, true, vec![point(19_997, vec![])]));
    let points = counter_points(request("i-1", metrics), &Destination::default());
    let total: Vec<_> = summary(&points)
        .into_iter()
        .filter(|p| p.0 == Stage::Total)
        .collect();
    assert_eq!(total, vec![(Stage::Total, None, 19_997, false)]);
}

#[test]
fn of_several_exporters_only_the_one_sending_here_counts() {
    let report = || request("i-1", python_sdk_report(&[4318, 9999]));
    let here = counter_points(report(), &sent_to(4318));
    let transmit: Vec<&str> = here
        .iter()
        .filter(|p| p.stage == Stage::Transmit)
        .map(|p| p.series.as_str())
        .collect();
    assert_eq!(transmit.len(), 1, "{transmit:?}");
    assert!(transmit[0].contains("server.port=4318"), "{transmit:?}");
    // When no exporter names this port (a proxy between), all count.
    let elsewhere = counter_points(report(), &sent_to(1234));
    assert_eq!(
        elsewhere
            .iter()
            .filter(|p| p.stage == Stage::Transmit)
            .count(),
        2
    );
}

#[test]
fn instances_of_a_service_keep_series_of_their_own() {
    let a = counter_points(
        request("i-1", python_sdk_report(&[4318])),
        &Destination::default(),
    );
    let b = counter_points(
        request("i-2", python_sdk_report(&[4318])),
        &Destination::default(),
    );
    for (a, b) in a.iter().zip(&b) {
        assert_ne!(a.series, b.series);
    }
}

fn reading(value: u64, cumulative: bool, monotonic: bool, subtracts: bool) -> CounterPoint {
    CounterPoint {
        service: "py".into(),
        stage: Stage::Total,
        reason: None,
        series: "s".into(),
        value,
        cumulative,
        monotonic,
        subtracts,
        time_ns: 0,
    }
}

#[test]
fn increments_follow_temporality_restarts_and_up_down_counters() {
    // Cumulative: what grew since the last reading; a drop is a restart.
    assert_eq!(reading(10, true, true, false).increment(None), 10);
    assert_eq!(reading(25, true, true, false).increment(Some(10)), 15);
    assert_eq!(reading(4, true, true, false).increment(Some(10)), 4);
    // Delta: the reading itself.
    assert_eq!(reading(4, false, true, false).increment(Some(10)), 4);
    // Live spans: an up-down counter taken away from total.
    assert_eq!(reading(3, true, false, true).increment(None), -3);
    assert_eq!(reading(1, true, false, true).increment(Some(3)), 2);
    assert_eq!(reading(5, true, false, true).increment(Some(3)), -2);
}

/// What the JS SDK 2.12 sends after exports to a dead endpoint: its
/// processor counts the failed spans under the export's error too.
fn js_sdk_failed_exports(with_exporter: bool) -> Vec<Metric> {
    let processor = |error: Option<&str>| {
        let mut attributes = vec![
            text("otel.component.type", "batching_span_processor"),
            text("otel.component.name", "batching_span_processor/0"),
        ];
        attributes.extend(error.map(|e| text("error.type", e)));
        attributes
    };
    let exporter = |error: Option<&str>| {
        let mut attributes = vec![
            text("otel.component.type", "otlp_http_span_exporter"),
            text("otel.component.name", "otlp_http_span_exporter/0"),
            text("server.address", "127.0.0.1"),
            kv("server.port", any_value::Value::IntValue(9)),
        ];
        attributes.extend(error.map(|e| text("error.type", e)));
        attributes
    };
    let mut metrics = vec![sum(
        PROCESSED,
        true,
        vec![
            point(20, processor(None)),
            point(50, processor(Some("Error"))),
            point(7, processor(Some("queue_full"))),
        ],
    )];
    if with_exporter {
        metrics.push(sum(
            EXPORTED,
            true,
            vec![
                point(20, exporter(None)),
                point(50, exporter(Some("export_failed"))),
            ],
        ));
    }
    metrics
}

#[test]
fn a_failed_export_the_processor_also_counts_is_lost_once_at_transmit() {
    let points = counter_points(request("i-1", js_sdk_failed_exports(true)), &sent_to(4318));
    assert_eq!(
        summary(&points),
        vec![
            (Stage::Collect, None, 20, false),
            (Stage::Collect, None, 50, false),
            (Stage::Collect, Some("queue_full"), 7, false),
            (Stage::Transmit, None, 20, false),
            (Stage::Transmit, Some("export_failed"), 50, false),
        ]
    );
    // Its own series: the increments of the failed count stay apart.
    assert_ne!(points[0].series, points[1].series);
}

#[test]
fn without_exporter_counters_a_processor_error_stays_lost_at_collect() {
    let points = counter_points(
        request("i-1", js_sdk_failed_exports(false)),
        &Destination::default(),
    );
    assert_eq!(
        summary(&points),
        vec![
            (Stage::Collect, None, 20, false),
            (Stage::Collect, Some("Error"), 50, false),
            (Stage::Collect, Some("queue_full"), 7, false),
        ]
    );
}

#[test]
fn a_negative_delta_of_live_spans_adds_to_total() {
    let mut live = sum(LIVE, false, vec![point(-3, vec![]), point(2, vec![])]);
    if let Some(metric::Data::Sum(sum)) = &mut live.data {
        sum.aggregation_temporality = AggregationTemporality::Delta as i32;
    }
    let mut started = sum(STARTED, true, vec![point(-3, vec![])]);
    if let Some(metric::Data::Sum(sum)) = &mut started.data {
        sum.aggregation_temporality = AggregationTemporality::Delta as i32;
    }
    let points = counter_points(request("i-1", vec![live, started]), &Destination::default());
    // Three spans ended since the last export, two started and are live;
    // a counter below zero is no reading.
    let increments: Vec<i64> = points.iter().map(|p| p.increment(None)).collect();
    assert_eq!(increments, vec![3, -2]);
}

#[test]
fn a_named_exporter_without_a_port_beside_the_one_sending_here_does_not_count() {
    let exporter = |name: &str, port: Option<i64>, error: Option<&str>| {
        let mut attributes = vec![
            text(
                "otel.component.type",
                name.split('/').next().unwrap_or(name),
            ),
            text("otel.component.name", name),
        ];
        attributes.extend(port.map(|p| kv("server.port", any_value::Value::IntValue(p))));
        attributes.extend(error.map(|e| text("error.type", e)));
        attributes
    };
    let report = vec![sum(
        EXPORTED,
        true,
        vec![
            point(40, exporter("otlp_http_span_exporter/0", Some(4318), None)),
            point(
                2,
                exporter("otlp_http_span_exporter/0", Some(4318), Some("503")),
            ),
            point(42, exporter("stdout_span_exporter/0", None, None)),
        ],
    )];
    let points = counter_points(request("i-1", report), &sent_to(4318));
    assert_eq!(
        summary(&points),
        vec![
            (Stage::Transmit, None, 40, false),
            (Stage::Transmit, Some("503"), 2, false),
        ]
    );
}

/// What Collector v0.165 pushes about its exporters (names and attributes
/// as it sends them): the hop's passed and lost spans, the debug
/// exporter's copies left out.
#[test]
fn a_collectors_exporter_counters_are_the_collector_hop() {
    let exporter = |id: &str| text("exporter", id);
    let metrics = vec![
        sum(
            "otelcol_exporter_sent_spans",
            true,
            vec![
                point(10, vec![exporter("otlp_http/otelite")]),
                point(10, vec![exporter("debug")]),
            ],
        ),
        sum(
            "otelcol_exporter_send_failed_spans",
            true,
            vec![point(
                5,
                vec![
                    exporter("otlp_http/otelite"),
                    text("error.type", "Unavailable"),
                    kv("error.permanent", any_value::Value::BoolValue(false)),
                ],
            )],
        ),
        sum(
            "otelcol_exporter_enqueue_failed_spans",
            true,
            vec![point(30, vec![exporter("otlp_http/otelite")])],
        ),
        sum(
            "otelcol_receiver_accepted_spans",
            true,
            vec![point(45, vec![text("receiver", "otlp")])],
        ),
    ];
    let points = counter_points(request("c-1", metrics), &Destination::default());
    assert_eq!(
        summary(&points),
        vec![
            (Stage::Collector, None, 10, false),
            (Stage::Collector, Some("send_failed(Unavailable)"), 5, false),
            (Stage::Collector, Some("enqueue_failed"), 30, false),
        ]
    );
}

/// Metrics sent to `127.0.0.1:<port>`, where the backend listens.
fn sent_to(port: u16) -> Destination {
    Destination {
        host: Some("127.0.0.1".into()),
        port: Some(port),
        listeners: vec![SocketAddr::from(([127, 0, 0, 1], port))],
    }
}

/// What the Python SDK 1.45.1 sends for two batch pipelines made in turn:
/// one to a port nothing listens on, then one to this backend.
#[test]
fn of_two_pipelines_only_the_one_sending_here_counts_at_collect_and_transmit() {
    let component = |kind: &str, name: &str| {
        vec![
            text("otel.component.type", kind),
            text("otel.component.name", name),
        ]
    };
    let processor = |name: &str, error: Option<&str>| {
        let mut attributes = component("batching_span_processor", name);
        attributes.extend(error.map(|e| text("error.type", e)));
        attributes
    };
    let exporter = |name: &str, port: i64, error: Option<&str>| {
        let mut attributes = component("otlp_http_span_exporter", name);
        attributes.push(text("server.address", "localhost"));
        attributes.push(kv("server.port", any_value::Value::IntValue(port)));
        attributes.extend(error.map(|e| text("error.type", e)));
        attributes
    };
    let metrics = vec![
        sum(
            PROCESSED,
            true,
            vec![
                point(300, processor("batching_span_processor/0", None)),
                point(
                    19_700,
                    processor("batching_span_processor/0", Some("queue_full")),
                ),
                point(12_030, processor("batching_span_processor/1", None)),
                point(
                    7_970,
                    processor("batching_span_processor/1", Some("queue_full")),
                ),
            ],
        ),
        sum(
            EXPORTED,
            true,
            vec![
                point(
                    300,
                    exporter("otlp_http_span_exporter/0", 9, Some("ConnectionError")),
                ),
                point(12_030, exporter("otlp_http_span_exporter/1", 4318, None)),
            ],
        ),
    ];
    let points = counter_points(request("i-1", metrics), &sent_to(4318));
    assert_eq!(
        summary(&points),
        vec![
            (Stage::Collect, None, 12_030, false),
            (Stage::Collect, Some("queue_full"), 7_970, false),
            (Stage::Transmit, None, 12_030, false),
        ]
    );
}
