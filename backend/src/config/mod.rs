//! The backend's settings: each declared once on [`Settings`] (flag,
//! variable, file key, default, help); [`ServeArgs`] ranks the sources and
//! yields the validated [`Config`] the server runs with.

use crate::net::{BearerToken, ConnectionLimits, TlsFiles};
use crate::storage::retention::Policy;
use std::net::SocketAddr;
use std::path::PathBuf;

mod layers;
mod rules;
mod settings;
#[cfg(test)]
mod tests;
mod values;

pub use layers::ServeArgs;
pub use settings::Settings;
pub use values::{LogFormat, Secret, StoreKind};

/// Largest request body accepted, after decompression.
pub const DEFAULT_MAX_BODY_BYTES: usize = 20 * 1024 * 1024;
/// Write requests that may wait for the writer before new ones get 503.
pub const DEFAULT_WRITE_QUEUE: usize = 256;
/// Spans that may wait for the writer before new requests get 503.
pub const DEFAULT_MAX_QUEUED_SPANS: usize = 100_000;
/// OTLP requests read and decoded at once; more get 503 at once, so memory
/// stays bounded by this times the body limit (and its decoded size).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 16;
/// Where `--store clickhouse` finds ClickHouse's HTTP interface; the path
/// names the database (default `otelite`).
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

/// The settings `Server::bind` runs with, resolved and validated; tests
/// build it directly (`Config { db_path, ..Config::default() }`).
#[derive(Debug, Clone)]
pub struct Config {
    pub db_path: PathBuf,
    /// OTLP/HTTP receiver; port 0 picks a free port.
    pub otlp_listen: SocketAddr,
    /// OTLP/gRPC receiver; port 0 picks a free port.
    pub otlp_grpc_listen: SocketAddr,
    /// Query API; port 0 picks a free port.
    pub query_listen: SocketAddr,
    pub max_body_bytes: usize,
    pub write_queue_capacity: usize,
    pub max_queued_spans: usize,
    pub max_concurrent_requests: usize,
    /// Bytes of bodies and their decoded form held at once (`admission`).
    pub max_inflight_bytes: usize,
    /// Required on `/v1/*` and over OTLP/gRPC when set.
    pub ingest_token: Option<BearerToken>,
    /// Required on `/api/*` and `/metrics` when set.
    pub query_token: Option<BearerToken>,
    /// Every listener speaks TLS when set.
    pub tls: Option<TlsFiles>,
    pub log_format: LogFormat,
    /// Timeouts and size caps per connection; not a flag (the defaults
    /// suit every deployment seen so far), settable for tests.
    pub connection_limits: ConnectionLimits,
    /// What one query may cost (repeats, trace ids, reads at once).
    pub query_limits: crate::query::QueryLimits,
    /// Off by default: deleting spans is for the operator to choose.
    pub retention: Policy,
    pub store: StoreKind,
    /// Used when `store` is ClickHouse.
    pub clickhouse_url: String,
    /// `Host` names the query listener answers besides loopback's
    /// (`net::HostPolicy`).
    pub allowed_hosts: Vec<String>,
    /// Keep/drop rules applied at analyze (the file's `[[drop]]` and
    /// `[[sample]]`); none by default.
    pub policy: crate::analyze::Policy,
}

impl Default for Config {
    /// The defaults declared on [`Settings`], which always validate.
    fn default() -> Self {
        Settings::default()
            .into_config()
            .expect("the declared defaults validate")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Only if `Settings` and its matches disagree on a type: clap itself
    /// reports bad flags and variables before this.
    #[error(transparent)]
    CommandLine(#[from] clap::Error),
    #[error("cannot read the config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {source}", path.display())]
    ParseFile {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("tls_cert and tls_key go together: {0} is missing")]
    TlsHalf(&'static str),
    #[error("rule `{rule}`: {reason}")]
    Rule { rule: String, reason: String },
}
