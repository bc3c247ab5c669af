//! The counters as an OTLP metrics report (`ExportMetricsServiceRequest`,
//! cumulative monotonic int sums named after the SDK self-observability
//! conventions), POSTed to `/v1/metrics` periodically and once at shutdown.

use crate::counters::{CountersSnapshot, FailureKind};
use crate::error::ExportError;
use crate::export::retry::worth_retrying;
use crate::export::runtime::RuntimeThread;
use crate::export::spool::Kind;
use crate::export::{Shared, deadline_after, drain, encode_body};
use crate::model;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use otelite_model::otlp;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Scope name of the report.
pub const SCOPE_NAME: &str = "otelite-exporter";
/// N_total: spans ended.
pub const SPAN_ENDED: &str = "otel.sdk.span.ended";
/// N_collect (no `error.type`), and `error.type=queue_full` drops when known.
pub const PROCESSOR_SPAN_PROCESSED: &str = "otel.sdk.processor.span.processed";
/// N_transmit (no `error.type`), and failures per `error.type`.
pub const EXPORTER_SPAN_EXPORTED: &str = "otel.sdk.exporter.span.exported";

/// When and what a report covers.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput {
    pub snapshot: CountersSnapshot,
    /// Spans dropped by the batch queue, when exactly known (after its shutdown).
    pub queue_full: Option<u64>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
}

/// Builds the report for `resource`.
pub fn metrics_request(
    resource: &model::Resource,
    input: &ReportInput,
) -> ExportMetricsServiceRequest {
    let point = |value: u64, error_type: Option<&str>, component: &str| NumberDataPoint {
        attributes: std::iter::once(string_kv("otel.component.type", component))
            .chain(error_type.map(|e| string_kv("error.type", e)))
            .collect(),
        start_time_unix_nano: input.start_time_unix_nano,
        time_unix_nano: input.time_unix_nano,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(number_data_point::Value::AsInt(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
    };
    let snap = &input.snapshot;
    let ended = NumberDataPoint {
        attributes: Vec::new(),
        ..point(snap.spans_ended, None, "")
    };
    let mut processed = vec![point(snap.spans_collected, None, PROCESSOR)];
    if let Some(dropped) = input.queue_full {
        processed.push(point(dropped, Some("queue_full"), PROCESSOR));
    }
    let mut exported = vec![point(snap.spans_exported, None, EXPORTER)];
    exported.extend(
        FailureKind::ALL
            .iter()
            .filter(|kind| snap.failed(**kind) > 0)
            .map(|kind| point(snap.failed(*kind), Some(kind.as_str()), EXPORTER)),
    );
    let metrics = vec![
        sum(
            SPAN_ENDED,
            "The number of created spans for which the end operation was called.",
            vec![ended],
        ),
        sum(
            PROCESSOR_SPAN_PROCESSED,
            "The number of spans for which the processing has finished, either successful or failed.",
            processed,
        ),
        sum(
            EXPORTER_SPAN_EXPORTED,
            "The number of spans for which the export has finished, either successful or failed.",
            exported,
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(PbResource {
                attributes: otlp::attributes_to_otlp(&resource.attributes),
                dropped_attributes_count: resource.dropped_attributes_count,
                entity_refs: Vec::new(),
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: resource.schema_url.clone(),
        }],
    }
}

const PROCESSOR: &str = "batching_span_processor";
const EXPORTER: &str = "otlp_http_span_exporter";

fn sum(name: &str, description: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit: "{span}".into(),
        metadata: Vec::new(),
        data: Some(metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Builds and POSTs one report, retries included, within `budget`. A final
/// report the endpoint could not take goes to the spool, if there is one:
/// the next run sends it, so the stages of this run still add up.
pub(crate) async fn push(
    shared: &Shared,
    queue_full: Option<u64>,
    budget: Duration,
    is_final: bool,
) -> Result<(), ExportError> {
    let deadline = deadline_after(budget);
    let input = ReportInput {
        snapshot: shared.counters.snapshot(),
        queue_full,
        start_time_unix_nano: unix_nanos(shared.start_time),
        time_unix_nano: unix_nanos(SystemTime::now()),
    };
    let request = metrics_request(shared.converter().resource(), &input);
    let body = encode_body(&request, shared.config.compression)?;
    let url = &shared.config.metrics_url;
    let spooling = is_final && shared.spool.is_some();
    // With a spool, one try in half the budget, so that spooling fits.
    let sent = if spooling {
        let deadline = deadline_after(budget / 2);
        shared.post_once(url, body.clone(), deadline).await
    } else {
        shared.post(url, body.clone(), deadline).await
    };
    match sent.map(drop) {
        Err(error) if spooling && worth_retrying(&error) => shared
            .spool(Kind::Metrics, 0, body)
            .await
            .map_err(|e| ExportError::Internal(e.to_string())),
        other => other,
    }
}

/// The periodic report loop, run on the exporter's runtime until aborted.
pub(crate) async fn periodic(shared: Arc<Shared>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = push(&shared, None, shared.config.timeout, false).await {
            tracing::debug!(%error, "otelite-exporter: metrics report failed");
        }
    }
}

/// What a `CountingProcessor` holds to count and report; from
/// `OteliteExporter::metrics_reporter`.
#[derive(Debug, Clone)]
pub struct MetricsReporter {
    shared: Arc<Shared>,
    runtime: Arc<RuntimeThread>,
}

impl MetricsReporter {
    pub(crate) fn new(shared: Arc<Shared>, runtime: Arc<RuntimeThread>) -> Self {
        Self { shared, runtime }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Sends a report now and waits for it (bounded by the configured timeout).
    pub fn report(&self, queue_full: Option<u64>) -> Result<(), ExportError> {
        self.report_within(queue_full, self.shared.config.timeout)
    }

    /// Sends a report now and waits for it, at most about `budget`.
    pub fn report_within(
        &self,
        queue_full: Option<u64>,
        budget: Duration,
    ) -> Result<(), ExportError> {
        self.send_within(queue_full, budget)
    }

    fn send_within(&self, queue_full: Option<u64>, budget: Duration) -> Result<(), ExportError> {
        self.wait_for(budget, |shared| async move {
            push(&shared, queue_full, budget, false).await
        })
    }

    /// Runs `work` on the exporter's runtime and waits for it from this
    /// (plain) thread, about `budget` at most: `work` honours it itself.
    fn wait_for<F, Fut>(&self, budget: Duration, work: F) -> Result<(), ExportError>
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<(), ExportError>> + Send + 'static,
    {
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let work = work(self.shared.clone());
        self.runtime.spawn(async move {
            let _ = done_tx.send(work.await);
        });
        // A little slack over the deadline the work itself honours.
        let wait = budget.saturating_add(Duration::from_millis(200));
        match done_rx.recv_timeout(wait) {
            Ok(outcome) => outcome,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(ExportError::Timeout(wait)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(ExportError::Internal("exporter runtime is gone".into()))
            }
        }
    }

    /// Stops the periodic reports and the background drainer, sends what
    /// the spool holds in the first half of `budget` (so that a short-lived
    /// app empties it too), then the last report (best effort, logged): all
    /// within `budget`, but never longer than the configured timeout.
    pub fn final_report(&self, queue_full: Option<u64>, budget: Duration) {
        self.shared.stop_periodic_reports();
        let budget = budget.min(self.shared.config.timeout);
        let outcome = self.wait_for(budget, |shared| async move {
            let drain_by = deadline_after(budget / 2);
            let report_by = deadline_after(budget);
            // Without a `CountingProcessor` no export is left by now: this
            // only bounds the background drainer's request in flight.
            shared.begin_shutdown(drain_by, Duration::ZERO);
            shared.stop_drainer(drain_by).await;
            drain::drain_before(&shared, drain_by).await;
            let left = report_by.saturating_duration_since(tokio::time::Instant::now());
            push(&shared, queue_full, left, true).await
        });
        if let Err(error) = outcome {
            tracing::warn!(%error, "otelite-exporter: final metrics report failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;

    fn value(point: &NumberDataPoint) -> i64 {
        match point.value {
            Some(number_data_point::Value::AsInt(v)) => v,
            _ => -1,
        }
    }

    fn error_type(point: &NumberDataPoint) -> Option<String> {
        point
            .attributes
            .iter()
            .find(|kv| kv.key == "error.type")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
    }

    #[test]
    fn report_carries_resource_counters_and_error_types() {
        let counters = Counters::default();
        counters.record_ended(10);
        counters.record_collected(8);
        counters.record_acknowledged(6, 1);
        counters.record_failed(FailureKind::Http5xx, 2);
        let resource = model::Resource::new(
            vec![model::KeyValue::new(
                "service.name",
                model::AnyValue::String("svc".into()),
            )],
            0,
            String::new(),
        );
        let input = ReportInput {
            snapshot: counters.snapshot(),
            queue_full: Some(2),
            start_time_unix_nano: 1,
            time_unix_nano: 2,
        };
        let request = metrics_request(&resource, &input);
        let rm = &request.resource_metrics[0];
        let pb_resource = rm.resource.clone().unwrap_or_default();
        assert_eq!(
            otlp::attributes_from_otlp(pb_resource.attributes),
            resource.attributes
        );
        let sm = &rm.scope_metrics[0];
        assert_eq!(sm.scope.as_ref().map(|s| s.name.as_str()), Some(SCOPE_NAME));
        let points = |name: &str| -> Vec<(Option<String>, i64)> {
            let metric = sm.metrics.iter().find(|m| m.name == name);
            match metric.and_then(|m| m.data.as_ref()) {
                Some(metric::Data::Sum(sum)) => {
                    assert!(sum.is_monotonic);
                    assert_eq!(
                        sum.aggregation_temporality,
                        AggregationTemporality::Cumulative as i32
                    );
                    sum.data_points
                        .iter()
                        .inspect(|p| assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1, 2)))
                        .map(|p| (error_type(p), value(p)))
                        .collect()
                }
                _ => panic!("{name} missing or not a sum"),
            }
        };
        assert_eq!(points(SPAN_ENDED), vec![(None, 10)]);
        assert_eq!(
            points(PROCESSOR_SPAN_PROCESSED),
            vec![(None, 8), (Some("queue_full".into()), 2)]
        );
        assert_eq!(
            points(EXPORTER_SPAN_EXPORTED),
            vec![
                (None, 5),
                (Some("rejected".into()), 1),
                (Some("http_5xx".into()), 2)
            ]
        );
    }
}
