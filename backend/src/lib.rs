//! otelite's backend: an OTLP receiver (HTTP and gRPC) that keeps every span
//! in SQLite and counts, at each stage, how many spans got through.
//!
//! # Layout: the pipeline, in module order
//! - [`receive`]: `POST /v1/traces` and `/v1/metrics`; body limits, gzip,
//!   protobuf or JSON, OTLP status codes. `receive::grpc`: the same over
//!   OTLP/gRPC (`TraceService/Export`, `MetricsService/Export`, default
//!   port 4317), on the same pipeline and admission.
//! - [`process`]: OTLP → the trace-info model (`otelite_model`),
//!   rejecting invalid spans; exporter counters out of OTLP metrics.
//! - [`analyze`]: durations, roots, errors, per-trace summaries, service edges;
//!   the keep/drop rules of the config file (`analyze::policy`).
//! - [`storage`]: the seam (`TraceReader`, `TraceStore`) with the
//!   store-neutral vocabulary; `storage::sqlite` (one writer thread with
//!   group commit, read-only readers; its `retention` deletes the oldest
//!   traces by age and size) and `storage::clickhouse` side by side under
//!   it, and `storage::remote`, a running otelite read over HTTP.
//! - [`rates`] and [`query`]: the stage rates and the query API.
//! - [`cli`]: the `otelite` reading commands, through any `TraceReader`:
//!   the SQLite file, ClickHouse or a running server.
//! - [`metrics`]: the receiver's counters and request latencies, served with
//!   the store's gauges at `GET /metrics` on the query listener, next to
//!   `/healthz` and `/readyz`.
//!
//! # Configuration
//! `otelite serve` takes each setting as a flag, an `OTELITE_*` environment
//! variable or a key of a TOML file (`--config` / `OTELITE_CONFIG`), in that
//! order of precedence: each is declared once on [`Settings`], and
//! [`ServeArgs::load`] ranks the sources.
//!
//! # Use
//! ```no_run
//! # async fn example() -> Result<(), otelite_backend::Error> {
//! let server = otelite_backend::Server::bind(otelite_backend::Config::default()).await?;
//! println!("OTLP/HTTP on {}", server.otlp_addr());
//! println!("OTLP/gRPC on {}", server.otlp_grpc_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod admission;
pub mod analyze;
pub mod cli;
mod config;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub mod net;
pub mod process;
pub mod query;
pub mod rates;
pub mod receive;
pub mod stage;
pub mod storage;
#[cfg(test)]
mod test_fixtures;
pub mod text;
mod ui;

pub use config::{
    Config, ConfigError, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_QUEUED_SPANS, DEFAULT_WRITE_QUEUE, LogFormat, Secret, ServeArgs, Settings,
};
pub use config::{DEFAULT_CLICKHOUSE_URL, StoreKind};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use storage::Storage;
use storage::StoreError;
use storage::sqlite::{SqliteStore, WriterThread};
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] net::TlsError),
}

/// A backend whose listeners are bound and whose database is open.
pub struct Server {
    otlp: TcpListener,
    otlp_grpc: TcpListener,
    query: TcpListener,
    storage: Storage,
    /// The SQLite store's writer thread, when the store is SQLite.
    writer: Option<WriterThread>,
    max_body_bytes: usize,
    max_concurrent_requests: usize,
    max_inflight_bytes: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
    tokens: BearerTokens,
    limits: net::ConnectionLimits,
    query_limits: query::QueryLimits,
    retention: storage::retention::Policy,
    allowed_hosts: Vec<String>,
    /// Keep/drop rules applied at analyze.
    policy: Arc<analyze::Policy>,
}

/// The bearer tokens each listener requires, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct BearerTokens {
    pub ingest: Option<net::BearerToken>,
    pub query: Option<net::BearerToken>,
}

/// Paths of the query listener that hold data; the rest (health, the UI's
/// static files) stay open.
const QUERY_GUARDED: &[&str] = &["/api/", "/metrics"];

impl Server {
    pub async fn bind(config: Config) -> Result<Self, Error> {
        let limits = storage::QueueLimits {
            requests: config.write_queue_capacity,
            spans: config.max_queued_spans,
        };
        // Unusable TLS files are an error at start, not at the first client.
        let tls = config.tls.as_ref().map(net::server_config).transpose()?;
        // Ports before the store: a busy port must not leave behind a
        // database created and migrated for nothing.
        let otlp = listen(config.otlp_listen).await?;
        let otlp_grpc = listen(config.otlp_grpc_listen).await?;
        let query = listen(config.query_listen).await?;
        let (storage, writer) = match config.store {
            StoreKind::Sqlite => {
                let (store, writer) = SqliteStore::open(&config.db_path, limits)?;
                let store = store.with_query_timeout(config.query_limits.query_timeout);
                (Storage::from(store), Some(writer))
            }
            StoreKind::Clickhouse => {
                let store =
                    storage::clickhouse::ClickHouseStore::open(&config.clickhouse_url, limits)
                        .await?
                        .with_query_timeout(config.query_limits.query_timeout);
                (Storage::new(store), None)
            }
        };
        Ok(Self {
            otlp,
            otlp_grpc,
            query,
            storage,
            writer,
            max_body_bytes: config.max_body_bytes,
            max_concurrent_requests: config.max_concurrent_requests,
            max_inflight_bytes: config.max_inflight_bytes,
            tls,
            tokens: BearerTokens {
                ingest: config.ingest_token,
                query: config.query_token,
            },
            limits: config.connection_limits,
            query_limits: config.query_limits,
            retention: config.retention,
            allowed_hosts: config.allowed_hosts,
            policy: Arc::new(config.policy),
        })
    }

    pub fn otlp_addr(&self) -> SocketAddr {
        self.otlp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.otlp_grpc
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub fn query_addr(&self) -> SocketAddr {
        self.query
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Whether the listeners speak TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets
    /// in-flight requests finish (bounded) and waits for the last commit.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let limits = receive::Limits {
            max_body_bytes: self.max_body_bytes,
            max_concurrent_requests: self.max_concurrent_requests,
            body_read_timeout: self.limits.body_read_timeout,
            max_inflight_bytes: self.max_inflight_bytes,
        };
        let (receive, query, receive_state) = serving(
            &self.storage,
            limits,
            self.query_limits,
            &self.tokens,
            self.policy.clone(),
            &[self.otlp_addr(), self.otlp_grpc_addr()],
        );
        // Outermost, so a rebound name learns nothing, not even a 401.
        let hosts = net::HostPolicy::new(self.query_addr(), &self.allowed_hosts);
        let query = query.layer(axum::middleware::from_fn_with_state(hosts, net::check_host));
        let retention = tokio::spawn(self.storage.retention(self.retention, stop_rx.clone()));
        drop(self.storage);
        let limits = self.limits;
        let otlp = net::serve(
            self.otlp,
            receive,
            self.tls.clone(),
            limits,
            stop_rx.clone(),
        );
        let grpc = receive::grpc::serve(
            self.otlp_grpc,
            receive::grpc::GrpcServing {
                state: receive_state,
                token: self.tokens.ingest.clone(),
                tls: self.tls.clone(),
                limits,
            },
            stop_rx.clone(),
        );
        let query = net::serve(self.query, query, self.tls, limits, stop_rx);
        tokio::join!(otlp, grpc, query);
        // Retention stops between two batches and drops its SqliteStore handle.
        let _ = retention.await;
        // Every SqliteStore handle is gone with the routers: the writer drains and ends.
        if let Some(writer) = self.writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        Ok(())
    }
}

/// The OTLP and query routers, sharing one `Metrics`, timed per route and
/// guarded by their tokens.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn routers(
    store: impl Into<Storage>,
    limits: receive::Limits,
    query_limits: query::QueryLimits,
    tokens: &BearerTokens,
) -> (axum::Router, axum::Router) {
    let (receive, query, _) = serving(store, limits, query_limits, tokens, Arc::default(), &[]);
    (receive, query)
}

/// The routers, and the receiver's state the gRPC listener shares with
/// OTLP/HTTP: one admission, one `Metrics`, one policy.
fn serving(
    store: impl Into<Storage>,
    limits: receive::Limits,
    query_limits: query::QueryLimits,
    tokens: &BearerTokens,
    policy: Arc<analyze::Policy>,
    listeners: &[SocketAddr],
) -> (axum::Router, axum::Router, receive::ReceiveState) {
    let store: Storage = store.into();
    let metrics = Arc::new(metrics::Metrics::new(limits.max_inflight_bytes));
    let timed = axum::middleware::from_fn_with_state(metrics.clone(), metrics::record_latency);
    let state = receive::ReceiveState::new(store.clone(), limits, metrics.clone())
        .with_policy(policy)
        .with_listeners(listeners);
    let receive = receive::router(state.clone()).layer(timed.clone());
    let query = query::router_with(store.clone(), metrics, query_limits).layer(timed);
    let receive = guarded(receive, tokens.ingest.clone(), None);
    let query = guarded(query, tokens.query.clone(), Some(QUERY_GUARDED));
    (receive, query, state)
}

fn guarded(
    router: axum::Router,
    token: Option<net::BearerToken>,
    prefixes: Option<&'static [&'static str]>,
) -> axum::Router {
    match token {
        Some(token) => router.layer(axum::middleware::from_fn_with_state(
            net::Guard { token, prefixes },
            net::require_token,
        )),
        None => router,
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}
