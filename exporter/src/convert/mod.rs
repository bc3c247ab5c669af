//! Conversions, and only here: `SpanData` → model (exporter side), model →
//! OTLP (exporter side), OTLP → model (backend side). Protobuf and JSON
//! requests share the OTLP types, so each direction has one path.

mod otlp;
mod sdk;

pub use otlp::{InvalidSpan, SpansFromOtlp, from_otlp, to_otlp};
pub use sdk::SdkConverter;

#[cfg(test)]
mod tests;
