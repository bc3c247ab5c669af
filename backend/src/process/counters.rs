//! Pipeline counters reported by SDKs over OTLP metrics, named by
//! OpenTelemetry's SDK self-observability semantic conventions, so any SDK
//! that emits them gets the exporter-side stages:
//! - total: `otel.sdk.span.ended`, or where an SDK sends the newer pair
//!   instead, `otel.sdk.span.started` less `otel.sdk.span.live` (spans
//!   started and not yet ended); only sampled spans (`RECORD_AND_SAMPLE`),
//!   the only ones a processor exports;
//! - collect: `otel.sdk.processor.span.processed`, of one processor when
//!   the app has several (see [`pipeline`]); the JS SDK also counts a span
//!   there once its export failed, under the export's error: such a span
//!   did reach the exporter (see [`handed_to_exporter`]);
//! - transmit: `otel.sdk.exporter.span.exported`, only from the exporter
//!   that sends to this backend when the app has several (see
//!   [`pipeline`]).
//!
//! A point with `error.type` counts spans lost at its stage, under that
//! reason. Series are told apart by attributes, `service.instance.id` and
//! start time, so instances and restarts of an app each count their own.
//! An OpenTelemetry Collector's own counters give the `collector` hop
//! ([`collector`]). Other metrics are ignored.

mod collector;
mod pipeline;

use crate::stage::Stage;
use crate::storage::CounterPoint;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, NumberDataPoint, metric, number_data_point,
};
use otelite_model::otlp::attributes_from_otlp;
use otelite_model::{AnyValue, KeyValue, Resource};
pub use pipeline::Destination;

const ENDED: &str = "otel.sdk.span.ended";
const STARTED: &str = "otel.sdk.span.started";
const LIVE: &str = "otel.sdk.span.live";
const PROCESSED: &str = "otel.sdk.processor.span.processed";
const EXPORTED: &str = "otel.sdk.exporter.span.exported";
/// The `error.type`s a span processor drops spans under itself.
const PROCESSOR_DROPS: [&str; 2] = ["queue_full", "already_shutdown"];

/// How a metric's points count toward a stage.
#[derive(Debug, Clone, Copy)]
struct Counts {
    stage: Stage,
    subtracts: bool,
    /// Only sampled spans: the span counters split by sampling result.
    sampled_only: bool,
    /// Every point counts spans lost, under this reason (a Collector's).
    lost_as: Option<&'static str>,
    /// Only points of a Collector's forwarding exporters.
    forwarding_only: bool,
}

impl Counts {
    fn hop(count: collector::HopCount) -> Self {
        Counts {
            stage: Stage::Collector,
            subtracts: false,
            sampled_only: false,
            lost_as: match count {
                collector::HopCount::Passed => None,
                collector::HopCount::Lost(reason) => Some(reason),
            },
            forwarding_only: true,
        }
    }
}

fn counts_of(name: &str, has_ended: bool) -> Option<Counts> {
    let total = |subtracts| Counts {
        stage: Stage::Total,
        subtracts,
        sampled_only: true,
        lost_as: None,
        forwarding_only: false,
    };
    let stage = |stage| Counts {
        stage,
        subtracts: false,
        sampled_only: false,
        lost_as: None,
        forwarding_only: false,
    };
    match name {
        ENDED => Some(total(false)),
        // An SDK that sends `ended` counts total with it alone.
        STARTED if !has_ended => Some(total(false)),
        LIVE if !has_ended => Some(total(true)),
        PROCESSED => Some(stage(Stage::Collect)),
        EXPORTED => Some(stage(Stage::Transmit)),
        _ => None,
    }
}

pub fn counter_points(
    request: ExportMetricsServiceRequest,
    destination: &Destination,
) -> Vec<CounterPoint> {
    let mut points = Vec::new();
    for resource_metrics in request.resource_metrics {
        let resource = resource_metrics.resource.unwrap_or_default();
        let resource = Resource::new(attributes_from_otlp(resource.attributes), 0, String::new());
        let instance = string_attr(&resource.attributes, "service.instance.id").unwrap_or("");
        let has_ended = resource_metrics
            .scope_metrics
            .iter()
            .flat_map(|s| &s.metrics)
            .any(|m| m.name == ENDED);
        let mut sums: Vec<(Series, Vec<Reading>)> = Vec::new();
        for metric in resource_metrics
            .scope_metrics
            .into_iter()
            .flat_map(|s| s.metrics)
        {
            let Some(counts) = counts_of(&metric.name, has_ended)
                .or_else(|| collector::hop_count(&metric).map(Counts::hop))
            else {
                continue;
            };
            let Some(metric::Data::Sum(sum)) = metric.data else {
                continue;
            };
            let series = Series {
                service: &resource.service_name,
                instance,
                name: metric.name,
                counts,
                cumulative: sum.aggregation_temporality != AggregationTemporality::Delta as i32,
                monotonic: sum.is_monotonic,
                has_exported: false,
            };
            let readings = sum
                .data_points
                .into_iter()
                .map(|mut p| (attributes_from_otlp(std::mem::take(&mut p.attributes)), p))
                .collect();
            sums.push((series, readings));
        }
        let has_exported = sums.iter().any(|(s, _)| s.name == EXPORTED);
        let attributes_of = |name: &str| -> Vec<&[KeyValue]> {
            sums.iter()
                .filter(|(s, _)| s.name == name)
                .flat_map(|(_, readings)| readings.iter().map(|(a, _)| a.as_slice()))
                .collect()
        };
        let counted = pipeline::counted(
            &attributes_of(PROCESSED),
            &attributes_of(EXPORTED),
            destination,
        );
        for (mut series, mut readings) in sums {
            series.has_exported = has_exported;
            match series.name.as_str() {
                PROCESSED => readings.retain(|(a, _)| counted.processor(a)),
                EXPORTED => readings.retain(|(a, _)| counted.exporter(a)),
                _ => {}
            }
            points.extend(
                readings
                    .into_iter()
                    .filter_map(|(attributes, point)| series.point(attributes, point)),
            );
        }
    }
    points
}

/// A data point with its attributes in otelite's model.
type Reading = (Vec<KeyValue>, NumberDataPoint);

/// What one metric's points share.
struct Series<'a> {
    service: &'a str,
    instance: &'a str,
    name: String,
    counts: Counts,
    cumulative: bool,
    monotonic: bool,
    /// The app also reports its exporter's counts.
    has_exported: bool,
}

impl Series<'_> {
    fn point(&self, attributes: Vec<KeyValue>, point: NumberDataPoint) -> Option<CounterPoint> {
        if self.counts.sampled_only
            && !matches!(
                string_attr(&attributes, "otel.span.sampling_result"),
                None | Some("RECORD_AND_SAMPLE")
            )
        {
            return None;
        }
        if self.counts.forwarding_only && !collector::forwards(&attributes) {
            return None;
        }
        let (value, negative) = self.magnitude(point.value?)?;
        let error = string_attr(&attributes, "error.type");
        let reason = match self.counts.lost_as {
            Some(lost) => Some(collector::reason(lost, error)),
            None => error
                .filter(|reason| !handed_to_exporter(&self.name, reason, self.has_exported))
                .map(str::to_owned),
        };
        let mut series = format!("{}@{}", self.name, point.start_time_unix_nano);
        if !self.instance.is_empty() {
            series.push_str(&format!(";service.instance.id={}", self.instance));
        }
        for kv in &attributes {
            match &kv.value {
                AnyValue::String(text) => series.push_str(&format!(";{}={text}", kv.key)),
                AnyValue::Int(n) => series.push_str(&format!(";{}={n}", kv.key)),
                _ => {}
            }
        }
        Some(CounterPoint {
            service: self.service.to_owned(),
            stage: self.counts.stage,
            reason,
            series,
            value,
            cumulative: self.cumulative,
            monotonic: self.monotonic,
            // A decrease of what is taken away adds, and the reverse.
            subtracts: self.counts.subtracts != negative,
            time_ns: point.time_unix_nano,
        })
    }

    /// A reading's size and whether it is negative: only a delta of an
    /// up-down counter may be (live spans that ended since the last export,
    /// from an SDK set to send every sum as deltas); anything else below
    /// zero is no count.
    fn magnitude(&self, value: number_data_point::Value) -> Option<(u64, bool)> {
        use number_data_point::Value::{AsDouble, AsInt};
        let may_fall = !self.cumulative && !self.monotonic;
        match value {
            AsInt(v) if v >= 0 || may_fall => Some((v.unsigned_abs(), v < 0)),
            AsDouble(v) if v.is_finite() && (v >= 0.0 || may_fall) => {
                Some((v.abs() as u64, v < 0.0))
            }
            _ => None,
        }
    }
}

/// Whether spans a processor counts under `reason` still passed collect.
/// The conventions count a batching processor's span as processed once it
/// is handed to the exporter, and name its own drops (`queue_full`,
/// `already_shutdown`); the JS SDK 2.x counts it when the export is over
/// instead, a failed one under the export's error (`Error`, while its
/// exporter says `export_failed`). Such a span reached the exporter, whose
/// own counter places its loss at transmit; counted at collect too, it
/// would be lost twice. Without exporter counters it stays lost at collect,
/// where its reason at least shows.
fn handed_to_exporter(metric: &str, reason: &str, has_exported: bool) -> bool {
    metric == PROCESSED && has_exported && !PROCESSOR_DROPS.contains(&reason)
}

pub(super) fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

pub(super) fn string_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)? {
        AnyValue::String(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
