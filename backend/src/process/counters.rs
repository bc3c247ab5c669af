//! Pipeline counters reported by exporters over OTLP metrics, named after
//! OpenTelemetry's SDK self-observability semantic conventions, so any SDK
//! that emits them gets rates:
//! - `otel.sdk.span.ended` → total (spans ended in the app);
//! - `otel.sdk.processor.span.processed` without `error.type` → collect;
//! - `otel.sdk.exporter.span.exported` without `error.type` → transmit.
//!
//! Points with `error.type` count failures, which the rates derive as the
//! gap between stages, so they are not stored. Other metrics are ignored.

use crate::stage::Stage;
use crate::storage::CounterPoint;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, NumberDataPoint, metric, number_data_point,
};
use otelite_model::otlp::attributes_from_otlp;
use otelite_model::{AnyValue, Resource};

fn stage_of(metric_name: &str) -> Option<Stage> {
    match metric_name {
        "otel.sdk.span.ended" => Some(Stage::Total),
        "otel.sdk.processor.span.processed" => Some(Stage::Collect),
        "otel.sdk.exporter.span.exported" => Some(Stage::Transmit),
        _ => None,
    }
}

pub fn counter_points(request: ExportMetricsServiceRequest) -> Vec<CounterPoint> {
    let mut points = Vec::new();
    for resource_metrics in request.resource_metrics {
        let resource = resource_metrics.resource.unwrap_or_default();
        let service =
            Resource::new(attributes_from_otlp(resource.attributes), 0, String::new()).service_name;
        for metric in resource_metrics
            .scope_metrics
            .into_iter()
            .flat_map(|s| s.metrics)
        {
            let Some(stage) = stage_of(&metric.name) else {
                continue;
            };
            let Some(metric::Data::Sum(sum)) = metric.data else {
                continue;
            };
            let cumulative = sum.aggregation_temporality != AggregationTemporality::Delta as i32;
            for point in sum.data_points {
                if let Some(point) = counter_point(&service, stage, &metric.name, cumulative, point)
                {
                    points.push(point);
                }
            }
        }
    }
    points
}

fn counter_point(
    service: &str,
    stage: Stage,
    name: &str,
    cumulative: bool,
    point: NumberDataPoint,
) -> Option<CounterPoint> {
    let attributes = attributes_from_otlp(point.attributes);
    if attributes.iter().any(|kv| kv.key == "error.type") {
        return None;
    }
    let value = match point.value? {
        number_data_point::Value::AsInt(v) => u64::try_from(v).ok()?,
        number_data_point::Value::AsDouble(v) if v.is_finite() && v >= 0.0 => v as u64,
        number_data_point::Value::AsDouble(_) => return None,
    };
    let mut series = format!("{name}@{}", point.start_time_unix_nano);
    for kv in &attributes {
        if let AnyValue::String(text) = &kv.value {
            series.push_str(&format!(";{}={text}", kv.key));
        }
    }
    Some(CounterPoint {
        service: service.to_owned(),
        stage,
        series,
        value,
        cumulative,
        time_ns: point.time_unix_nano,
    })
}
