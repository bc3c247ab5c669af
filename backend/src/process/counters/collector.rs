//! The OpenTelemetry Collector's own span counters (its internal telemetry,
//! pushed over OTLP by a `service::telemetry::metrics` reader), as the
//! `collector` hop: what its exporters handed on, and what they lost.
//! Names and attributes as Collector v0.165 emits them:
//! - `otelcol_exporter_sent_spans` (`exporter`): passed the hop;
//! - `otelcol_exporter_send_failed_spans` (`exporter`, `error.type`): lost
//!   after the last retry, as `send_failed(<error.type>)`;
//! - `otelcol_exporter_enqueue_failed_spans` (`exporter`): lost to a full
//!   sending queue, as `enqueue_failed`.
//!
//! Only OTLP exporters count (`otlp_http`, `otlp_grpc` and their old names),
//! the ones that forward spans to a backend; a `debug` exporter's copies
//! would count every span twice. Receiver refusals are not losses here: the
//! sender got an error for them, and retries or counts them itself.

use opentelemetry_proto::tonic::metrics::v1::Metric;
use otelite_model::{AnyValue, KeyValue};

const SENT: &str = "otelcol_exporter_sent_spans";
const SEND_FAILED: &str = "otelcol_exporter_send_failed_spans";
const ENQUEUE_FAILED: &str = "otelcol_exporter_enqueue_failed_spans";

/// The exporter types that forward spans over OTLP (v0.165 names, then the
/// deprecated aliases it still accepts).
const FORWARDING: [&str; 4] = ["otlp_http", "otlp_grpc", "otlphttp", "otlp"];

/// How a Collector metric counts toward the hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopCount {
    Passed,
    /// Lost, under this reason (with the point's `error.type` when it has one).
    Lost(&'static str),
}

pub fn hop_count(metric: &Metric) -> Option<HopCount> {
    match metric.name.as_str() {
        SENT => Some(HopCount::Passed),
        SEND_FAILED => Some(HopCount::Lost("send_failed")),
        ENQUEUE_FAILED => Some(HopCount::Lost("enqueue_failed")),
        _ => None,
    }
}

/// The reason a lost point is filed under: `send_failed(Unavailable)`.
pub fn reason(lost: &str, error_type: Option<&str>) -> String {
    match error_type {
        Some(error) => format!("{lost}({error})"),
        None => lost.to_owned(),
    }
}

/// Whether the point's `exporter` (`type/name`) forwards spans over OTLP.
pub fn forwards(attributes: &[KeyValue]) -> bool {
    attributes.iter().any(|kv| {
        kv.key == "exporter"
            && matches!(&kv.value, AnyValue::String(id)
                if FORWARDING.contains(&id.split('/').next().unwrap_or_default()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporter(id: &str) -> Vec<KeyValue> {
        vec![KeyValue {
            key: "exporter".into(),
            value: AnyValue::String(id.into()),
        }]
    }

    #[test]
    fn only_otlp_exporters_forward() {
        for id in ["otlp_http/otelite", "otlp_grpc", "otlphttp/x", "otlp/y"] {
            assert!(forwards(&exporter(id)), "{id}");
        }
        for id in ["debug", "file/x", "otlp_httpx"] {
            assert!(!forwards(&exporter(id)), "{id}");
        }
        assert!(!forwards(&[]));
    }

    #[test]
    fn reasons_carry_the_collectors_error_type() {
        assert_eq!(
            reason("send_failed", Some("Unavailable")),
            "send_failed(Unavailable)"
        );
        assert_eq!(reason("enqueue_failed", None), "enqueue_failed");
    }
}
