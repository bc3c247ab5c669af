//! The SDK counters in each shape an app may send them, on both stores:
//! cumulative and delta sums, `otel.sdk.span.live` taken from total (an
//! up-down counter that falls as spans end), a restart (a new start time,
//! the counts from zero again) and two instances of one service. Sent as
//! OTLP/HTTP metrics by hand, so every expected count is worked out from
//! the readings below, not from otelite.

use crate::support::{Backend, Store, for_each_store};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::time::{SystemTime, UNIX_EPOCH};

const SERVICE: &str = "counter-shapes";

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

#[derive(Clone, Copy)]
enum Temporality {
    Cumulative,
    Delta,
}

/// One export of an instance: spans started, live and processed, as read
/// at `start_ns`'s run of the app.
struct Export {
    instance: &'static str,
    start_ns: u64,
    temporality: Temporality,
    started: i64,
    live: i64,
    processed: i64,
}

impl Export {
    fn request(&self, now_ns: u64) -> Vec<u8> {
        let sum = |name: &str, monotonic: bool, value: i64, attributes: Vec<KeyValue>| Metric {
            name: name.into(),
            data: Some(metric::Data::Sum(Sum {
                aggregation_temporality: match self.temporality {
                    Temporality::Cumulative => AggregationTemporality::Cumulative,
                    Temporality::Delta => AggregationTemporality::Delta,
                } as i32,
                is_monotonic: monotonic,
                data_points: vec![NumberDataPoint {
                    attributes,
                    start_time_unix_nano: self.start_ns,
                    time_unix_nano: now_ns,
                    value: Some(number_data_point::Value::AsInt(value)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let sampled = || vec![text("otel.span.sampling_result", "RECORD_AND_SAMPLE")];
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![
                        text("service.name", SERVICE),
                        text("service.instance.id", self.instance),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        sum("otel.sdk.span.started", true, self.started, sampled()),
                        sum("otel.sdk.span.live", false, self.live, sampled()),
                        sum(
                            "otel.sdk.processor.span.processed",
                            true,
                            self.processed,
                            vec![text("otel.component.name", "batching_span_processor/0")],
                        ),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }
}

for_each_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_shape_counts_the_spans_that_ended
);

/// Instance a, cumulative: 10 started with 4 live, then 15 with 2 live (13
/// ended); restarted: 3 started with 1 live (2 ended). Instance b, as
/// deltas: 7 started and 2 more live, then 1 started and 2 fewer live (8
/// ended). Total: 13 + 2 + 8 = 23 ended; collect: 13 + 2 + 8 processed.
async fn every_shape_counts_the_spans_that_ended(store: Store) {
    use Temporality::{Cumulative, Delta};
    let backend = Backend::start_on(store, "counter_shapes", |_| {}).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let (first_run, second_run) = (now - 600_000_000_000, now - 60_000_000_000);
    let exports = [
        ("a", first_run, Cumulative, 10, 4, 5),
        ("a", first_run, Cumulative, 15, 2, 13),
        ("a", second_run, Cumulative, 3, 1, 2),
        ("b", first_run, Delta, 7, 2, 3),
        ("b", first_run, Delta, 1, -2, 5),
    ];
    for (instance, start_ns, temporality, started, live, processed) in exports {
        let export = Export {
            instance,
            start_ns,
            temporality,
            started,
            live,
            processed,
        };
        let reply = backend
            .post(
                "/v1/metrics",
                "application/x-protobuf",
                None,
                export.request(now),
            )
            .await;
        assert_eq!(reply.status, 200, "{instance}: {started}/{live}");
    }
    let rates = backend
        .wait_for_rates(SERVICE, |r| r.n("collect") == Some(23))
        .await;
    assert_eq!(
        (rates.n("total"), rates.n("collect")),
        (Some(23), Some(23)),
        "{rates:#?}"
    );
}
