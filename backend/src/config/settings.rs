//! Every `otelite serve` setting, declared once: the field's name is the
//! flag (`--otlp-listen`) and the file key (`otlp_listen`); its attribute
//! names the variable and the default; its doc comment is the help.

use super::{
    Config, ConfigError, DEFAULT_CLICKHOUSE_URL, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_QUEUED_SPANS, DEFAULT_WRITE_QUEUE, LogFormat,
    Secret, StoreKind,
};
use crate::net::{ConnectionLimits, TlsFiles};
use crate::storage::retention::{Age, ByteSize, Policy};
use clap::{Args, Command, FromArgMatches};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A key missing from the file keeps its default (`serde(default)`), so a
/// file read alone is already "file, else default".
#[derive(Debug, Clone, PartialEq, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// SQLite database file (created if missing; a file of another program is refused, untouched)
    #[arg(
        long,
        env = "OTELITE_DB",
        value_name = "PATH",
        default_value = "./otelite.db"
    )]
    pub db: PathBuf,
    /// Address of the OTLP/HTTP receiver; port 0 picks a free port
    #[arg(
        long,
        env = "OTELITE_OTLP_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:4318"
    )]
    pub otlp_listen: SocketAddr,
    /// Address of the OTLP/gRPC receiver (traces and metrics); port 0 picks a free port
    #[arg(
        long,
        env = "OTELITE_OTLP_GRPC_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:4317"
    )]
    pub otlp_grpc_listen: SocketAddr,
    /// Address of the query API, /healthz, /readyz and /metrics; port 0 picks a free port
    #[arg(
        long,
        env = "OTELITE_QUERY_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:16686"
    )]
    pub query_listen: SocketAddr,
    /// Largest request body in bytes, after decompression
    #[arg(
        long,
        env = "OTELITE_MAX_BODY_BYTES",
        value_name = "BYTES",
        default_value_t = DEFAULT_MAX_BODY_BYTES
    )]
    pub max_body_bytes: usize,
    /// Write requests that may wait for the writer before new ones get 503
    #[arg(
        long,
        env = "OTELITE_WRITE_QUEUE",
        value_name = "N",
        default_value_t = DEFAULT_WRITE_QUEUE
    )]
    pub write_queue: usize,
    /// Spans that may wait for the writer before new requests get 503
    #[arg(
        long,
        env = "OTELITE_MAX_QUEUED_SPANS",
        value_name = "N",
        default_value_t = DEFAULT_MAX_QUEUED_SPANS
    )]
    pub max_queued_spans: usize,
    /// OTLP requests read and decoded at once; more get 503 with Retry-After,
    /// which bounds memory
    #[arg(
        long,
        env = "OTELITE_MAX_CONCURRENT_REQUESTS",
        value_name = "N",
        default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS
    )]
    pub max_concurrent_requests: usize,
    /// Bytes of request bodies and their decoded form held at once (64MiB,
    /// 1GB); more get 503 with Retry-After, which bounds memory
    #[arg(
        long,
        env = "OTELITE_MAX_INFLIGHT_BYTES",
        value_name = "SIZE",
        default_value = "64MiB"
    )]
    pub max_inflight_bytes: ByteSize,
    /// Bearer token required on /v1/traces, /v1/metrics, /api/v2/spans and
    /// OTLP/gRPC (prefer the variable: flags show in `ps`); none by default
    #[arg(long, env = "OTELITE_INGEST_TOKEN", value_name = "TOKEN")]
    pub ingest_token: Option<Secret>,
    /// Bearer token required on /api/* and /metrics; /healthz, /readyz and
    /// the web UI's files stay open; none by default
    #[arg(long, env = "OTELITE_QUERY_TOKEN", value_name = "TOKEN")]
    pub query_token: Option<Secret>,
    /// PEM certificate chain: every listener speaks TLS (with --tls-key); none by default
    #[arg(long, env = "OTELITE_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert; none by default
    #[arg(long, env = "OTELITE_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Log lines as text or json (one object per line); the level comes
    /// from RUST_LOG
    #[arg(
        long,
        env = "OTELITE_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Delete traces that started longer ago than this (7d, 36h; 0 keeps all),
    /// in small batches in the background, and give the space back to the disk
    #[arg(
        long,
        env = "OTELITE_RETENTION",
        value_name = "AGE",
        default_value = "0"
    )]
    pub retention: Age,
    /// Cap on the database's files (10GB, 512MiB; 0 is no limit): the oldest
    /// traces are deleted, during ingest too, until the newest fit with room
    /// for the WAL; writes get 503 only while retention catches up
    #[arg(
        long,
        env = "OTELITE_MAX_DB_SIZE",
        value_name = "SIZE",
        default_value = "0"
    )]
    pub max_db_size: ByteSize,
    /// Where spans are kept: sqlite (the --db file) or clickhouse (--clickhouse-url)
    #[arg(
        long,
        env = "OTELITE_STORE",
        value_name = "STORE",
        default_value = "sqlite"
    )]
    pub store: StoreKind,
    /// ClickHouse's HTTP interface; a path names the database (default otelite),
    /// created if missing
    #[arg(
        long,
        env = "OTELITE_CLICKHOUSE_URL",
        value_name = "URL",
        default_value = DEFAULT_CLICKHOUSE_URL
    )]
    pub clickhouse_url: String,
    /// Queries answered at once; more get 503 with Retry-After, which bounds
    /// the memory and threads reads take
    #[arg(
        long,
        env = "OTELITE_MAX_CONCURRENT_READS",
        value_name = "N",
        default_value_t = crate::query::budget_defaults::MAX_CONCURRENT_READS
    )]
    pub max_concurrent_reads: usize,
    /// Distinct trace ids one request may ask for (`/api/traces?traceID=`); more get 400
    #[arg(
        long,
        env = "OTELITE_MAX_TRACE_IDS",
        value_name = "N",
        default_value_t = crate::query::budget_defaults::MAX_TRACE_IDS
    )]
    pub max_trace_ids: usize,
    /// Times one query parameter (attributePrefix, tag, …) may be given; more get 400
    #[arg(
        long,
        env = "OTELITE_MAX_REPEATED_PARAMS",
        value_name = "N",
        default_value_t = crate::query::budget_defaults::MAX_REPEATED_PARAMS
    )]
    pub max_repeated_params: usize,
    /// Spans in one query answer: a larger trace is answered in pages
    /// (`nextCursor`), the Jaeger APIs answer its first spans with a warning
    #[arg(
        long,
        env = "OTELITE_MAX_SPANS_PER_ANSWER",
        value_name = "N",
        default_value_t = crate::query::budget_defaults::MAX_SPANS_PER_ANSWER
    )]
    pub max_spans_per_answer: usize,
    /// A client that takes less than 16 KiB of a response within this time
    /// (30s, 1m) loses its connection
    #[arg(
        long,
        env = "OTELITE_WRITE_TIMEOUT",
        value_name = "AGE",
        default_value = "30s"
    )]
    pub write_timeout: Age,
    /// How long one query may run on SQLite (30s, 2m); past it the query is
    /// stopped and answered 503
    #[arg(
        long,
        env = "OTELITE_QUERY_TIMEOUT",
        value_name = "AGE",
        default_value = "30s"
    )]
    pub query_timeout: Age,
    /// How long after a span arrived its parent is waited for (60s, 5m): a
    /// span whose parent has not arrived by then is an orphan, counted in
    /// /api/rates' upstream loss estimate
    #[arg(
        long,
        env = "OTELITE_ORPHAN_GRACE",
        value_name = "AGE",
        default_value = "60s"
    )]
    pub orphan_grace: Age,
    /// Host names the query listener answers besides loopback's
    /// (comma-separated; the port is not compared). Bound to loopback, it
    /// answers only localhost, 127.0.0.1, [::1] and these, against DNS
    /// rebinding; bound elsewhere, every name unless this is given
    #[arg(
        long,
        env = "OTELITE_ALLOWED_HOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// `[[drop]]` rules: file only, so no flag or variable.
    #[arg(skip)]
    pub drop: Vec<super::rules::DropSpec>,
    /// `[[sample]]` rules: file only, so no flag or variable.
    #[arg(skip)]
    pub sample: Vec<super::rules::SampleSpec>,
}

impl Default for Settings {
    /// The defaults in the attributes above, read back through clap so
    /// that each is written once; with the variables unbound, so the result
    /// does not depend on the environment. A default that does not parse is
    /// a bug in this file, which every test that builds a `Config` finds.
    fn default() -> Self {
        let command = Self::augment_args(Command::new("defaults")).mut_args(|arg| arg.env(None));
        command
            .try_get_matches_from(["defaults"])
            .and_then(|matches| Self::from_arg_matches(&matches))
            .expect("the defaults declared on Settings parse")
    }
}

impl Settings {
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source,
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Checks what one source cannot check alone (a TLS half may come from
    /// the file and the other from a flag) and builds the server's `Config`.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        for (name, value) in [
            ("max_body_bytes", self.max_body_bytes),
            ("write_queue", self.write_queue),
            ("max_queued_spans", self.max_queued_spans),
            ("max_concurrent_requests", self.max_concurrent_requests),
            (
                "max_inflight_bytes",
                usize::try_from(self.max_inflight_bytes.0).unwrap_or(usize::MAX),
            ),
            ("max_concurrent_reads", self.max_concurrent_reads),
            ("max_trace_ids", self.max_trace_ids),
            ("max_repeated_params", self.max_repeated_params),
            ("max_spans_per_answer", self.max_spans_per_answer),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        for (name, age) in [
            ("write_timeout", self.write_timeout),
            ("query_timeout", self.query_timeout),
        ] {
            if age.0.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        let policy = super::rules::policy(&self.drop, &self.sample)?;
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::TlsHalf("tls_key")),
            (None, Some(_)) => return Err(ConfigError::TlsHalf("tls_cert")),
        };
        Ok(Config {
            db_path: self.db,
            otlp_listen: self.otlp_listen,
            otlp_grpc_listen: self.otlp_grpc_listen,
            query_listen: self.query_listen,
            max_body_bytes: self.max_body_bytes,
            write_queue_capacity: self.write_queue,
            max_queued_spans: self.max_queued_spans,
            max_concurrent_requests: self.max_concurrent_requests,
            max_inflight_bytes: usize::try_from(self.max_inflight_bytes.0).unwrap_or(usize::MAX),
            ingest_token: self.ingest_token.map(Secret::into_bearer),
            query_token: self.query_token.map(Secret::into_bearer),
            tls,
            log_format: self.log_format,
            connection_limits: ConnectionLimits {
                write_timeout: self.write_timeout.0,
                ..ConnectionLimits::default()
            },
            query_limits: crate::query::QueryLimits {
                max_concurrent_reads: self.max_concurrent_reads,
                max_trace_ids: self.max_trace_ids,
                max_repeated_params: self.max_repeated_params,
                max_spans_per_answer: self.max_spans_per_answer,
                query_timeout: self.query_timeout.0,
                orphan_grace: self.orphan_grace.0,
            },
            retention: Policy::new(Some(self.retention), Some(self.max_db_size)),
            store: self.store,
            clickhouse_url: self.clickhouse_url,
            allowed_hosts: self.allowed_hosts,
            policy,
        })
    }
}
