//! The process stage: decoded OTLP requests → validated model values.
//! Spans go through the one OTLP → model conversion; metrics yield only the
//! pipeline counters (see `counters`).

mod counters;

pub use counters::{Destination, counter_points};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelite_model::Span;
use otelite_model::otlp::{self, SpansFromOtlp};
use std::collections::HashMap;

pub fn process(request: ExportTraceServiceRequest) -> SpansFromOtlp {
    otlp::from_otlp(request)
}

/// How many of the spans each service has, in first-seen order.
pub fn count_by_service(
    spans: impl IntoIterator<Item = impl std::borrow::Borrow<Span>>,
) -> Vec<(String, u64)> {
    let mut order: Vec<(String, u64)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for span in spans {
        let service = span.borrow().service_name();
        match index.get(service) {
            Some(i) => order[*i].1 += 1,
            None => {
                index.insert(service.to_owned(), order.len());
                order.push((service.to_owned(), 1));
            }
        }
    }
    order
}
