//! Typed errors: what building the exporter can fail with (`ConfigError`) and
//! what one export can fail with (`ExportError`). Nothing here panics.

use std::time::Duration;

/// Why the configuration (builder + `OTEL_EXPORTER_OTLP_*` variables) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An endpoint is not an absolute `http(s)://host[:port][/path]` URL.
    #[error("{source_name}: invalid endpoint {value:?}: {reason}")]
    InvalidEndpoint {
        source_name: String,
        value: String,
        reason: String,
    },
    /// A timeout is not a positive number of milliseconds.
    #[error(
        "{source_name}: invalid timeout {value:?} (expected a positive number of milliseconds)"
    )]
    InvalidTimeout { source_name: String, value: String },
    /// A compression is neither `gzip` nor `none`.
    #[error("{source_name}: invalid compression {value:?} (expected \"gzip\" or \"none\")")]
    InvalidCompression { source_name: String, value: String },
    /// A header list entry is not `key=value`, or the name/value is not valid HTTP.
    #[error("{source_name}: invalid header {entry:?}: {reason}")]
    InvalidHeader {
        source_name: String,
        entry: String,
        reason: String,
    },
    /// The trusted-certificate file cannot be used.
    #[error(transparent)]
    Tls(#[from] otelite_model::tls::TlsError),
    /// The spool size is not a positive number of bytes.
    #[error("{source_name}: invalid spool size {value:?} (expected a positive number of bytes)")]
    InvalidSpoolSize { source_name: String, value: String },
    /// The exporter's own runtime thread could not be started.
    #[error("cannot start the exporter runtime: {0}")]
    Runtime(String),
}

/// Why one POST (with its retries) did not get an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The deadline passed while a request was in flight.
    #[error("export timed out after {0:?}")]
    Timeout(Duration),
    /// The endpoint answered with a status that is not 2xx (after retries if retryable).
    #[error("endpoint answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// No HTTP answer: connection refused/reset, DNS, protocol error.
    #[error("transport error: {0}")]
    Transport(String),
    /// Encoding the request or reaching the exporter's runtime failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// Shutdown cut the request short to keep within its own deadline.
    #[error("cut short by shutdown")]
    CutByShutdown,
}
