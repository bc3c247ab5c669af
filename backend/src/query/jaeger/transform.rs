//! `POST /api/transform`: the Jaeger UI's upload of an OTLP JSON file. The
//! file's spans come back as Jaeger UI traces (one per trace id, in the
//! order they first appear), in v1's envelope; nothing is stored. A file
//! that is not OTLP JSON, or holds a span with a bad id, gets 400 in
//! Jaeger's error shape.

use super::Fault;
use super::shapes::{self, Trace};
use super::v1::{Answer, envelope};
use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelite_model::{Span, TraceId, otlp};

/// The largest file taken, as the OTLP receiver's default body limit.
pub const MAX_FILE_BYTES: usize = 20 << 20;

pub async fn transform(body: Bytes) -> Answer<Trace> {
    let request: ExportTraceServiceRequest = serde_json::from_slice(&body)
        .map_err(|e| Fault::BadParameter(format!("the file is not OTLP JSON: {e}")))?;
    let converted = otlp::from_otlp(request);
    if let Some(invalid) = converted.rejected.first() {
        return Err(
            Fault::BadParameter(format!("the file holds an invalid span: {invalid}")).into(),
        );
    }
    Ok(envelope(
        by_trace(converted.spans)
            .iter()
            .map(|spans| shapes::trace(spans))
            .collect(),
    ))
}

/// Spans grouped by trace id, traces in the order they first appear.
fn by_trace(spans: Vec<Span>) -> Vec<Vec<Span>> {
    let mut order: Vec<TraceId> = Vec::new();
    let mut traces: std::collections::HashMap<TraceId, Vec<Span>> = Default::default();
    for span in spans {
        let trace = traces.entry(span.trace_id).or_insert_with(|| {
            order.push(span.trace_id);
            Vec::new()
        });
        trace.push(span);
    }
    order
        .into_iter()
        .filter_map(|id| traces.remove(&id))
        .collect()
}
