//! Conversions, and only here: `SpanData` → model (exporter side), model →
//! OTLP (exporter side; straight to protobuf bytes in `encode`), OTLP → model
//! (backend side). Protobuf and JSON
//! requests share the OTLP types, so each direction has one path.

mod encode;
mod otlp;
mod sdk;

pub use encode::{encode_request, encode_span};
pub use otlp::{
    InvalidSpan, SpansFromOtlp, attributes_from_otlp, attributes_to_otlp, from_otlp,
    resource_to_otlp, scope_to_otlp, span_to_otlp, to_otlp,
};
pub use sdk::SdkConverter;

#[cfg(test)]
mod tests;
