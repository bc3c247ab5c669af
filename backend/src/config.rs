//! The backend's settings, with the defaults `otelite serve` documents.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest request body accepted, after decompression.
pub const DEFAULT_MAX_BODY_BYTES: usize = 20 * 1024 * 1024;
/// Write requests that may wait for the writer before new ones get 503.
pub const DEFAULT_WRITE_QUEUE: usize = 256;
/// Spans that may wait for the writer before new requests get 503.
pub const DEFAULT_MAX_QUEUED_SPANS: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub db_path: PathBuf,
    /// OTLP/HTTP receiver; port 0 picks a free port.
    pub otlp_listen: SocketAddr,
    /// Query API; port 0 picks a free port.
    pub query_listen: SocketAddr,
    pub max_body_bytes: usize,
    pub write_queue_capacity: usize,
    pub max_queued_spans: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db_path: PathBuf::from("otelite.db"),
            otlp_listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
            query_listen: SocketAddr::from(([127, 0, 0, 1], 16686)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            write_queue_capacity: DEFAULT_WRITE_QUEUE,
            max_queued_spans: DEFAULT_MAX_QUEUED_SPANS,
        }
    }
}
