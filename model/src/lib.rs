//! # otelite-model
//!
//! The trace-info model both sides of otelite share, and every conversion
//! of it that is not tied to one side:
//!
//! - [`span`] (re-exported at the root) holds one span as otelite
//!   understands it, with its resource, scope, events, links and status.
//! - [`otlp`] turns OTLP (`opentelemetry-proto`'s prost types, from
//!   protobuf or JSON) into the model, with the validation that decides
//!   which spans a receiver rejects, and the model back into OTLP.
//! - [`encode`] writes model spans directly as the protobuf bytes of an
//!   OTLP request or span: the exporter's wire format and the backend's
//!   stored span encoding.
//! - `fixtures` (tests only: the `test-fixtures` feature) builds spans
//!   with sensible defaults, for this crate's tests, the backend's and the
//!   end-to-end suite's.
//! - [`tls`] builds the client TLS configuration (Mozilla's roots plus a
//!   PEM file) that the exporter and the backend's reading commands share.
//!
//! The exporter builds the model from the SDK's `SpanData`; the backend
//! builds it from OTLP requests. Neither depends on the other.

pub mod encode;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;
pub mod otlp;
pub mod otlp_wire;
pub mod span;
pub mod tls;
pub mod wire;

pub use span::*;

#[cfg(test)]
mod tests;
