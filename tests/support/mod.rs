//! Fixtures shared by the end-to-end modules: a real backend on port 0 in a
//! temporary directory, HTTP helpers for its two listeners, SDK helpers, and
//! a TCP proxy that can hold connections back.
//!
//! Helpers panic with a message instead of returning errors: a failed fixture
//! is a failed test, and the message is what the reader needs.

#![allow(dead_code)] // not every module uses every helper

pub mod clickhouse;
pub mod collector;
pub mod fixtures;
pub mod foreign;
pub mod ledger;
pub mod pki;
pub mod process;
pub mod proxy;
pub mod small_disk;
pub mod stores;
pub mod unavailable;
pub mod zookeeper;

pub use proxy::GatedProxy;
pub use stores::Store;
pub(crate) use stores::for_each_store;

use otelite_model as model;
use serde::Deserialize;
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any poll for "the data has arrived" waits before giving up.
pub const WAIT: Duration = Duration::from_secs(30);

/// A backend served in-process, as `otelite` would run it.
pub struct Backend {
    pub otlp: SocketAddr,
    /// The OTLP/gRPC listener.
    pub grpc: SocketAddr,
    pub query: SocketAddr,
    dir: Arc<TempDir>,
    /// `--clickhouse-url` when on `--store clickhouse`, kept for restarts.
    clickhouse_url: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), otelite_backend::Error>>>,
    http: reqwest::Client,
}

/// A stopped backend: its data directory and the addresses to restart on.
pub struct Stopped {
    pub otlp: SocketAddr,
    pub grpc: SocketAddr,
    pub query: SocketAddr,
    dir: Arc<TempDir>,
    clickhouse_url: Option<String>,
}

impl Backend {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a backend on fresh ports and a fresh database, after letting
    /// the caller adjust the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut otelite_backend::Config)) -> Self {
        Self::start_on(Store::Sqlite, "", tweak).await
    }

    /// Starts a backend on fresh ports and a fresh store of the given kind
    /// (on ClickHouse: a database `<tag>_<n>` of its own on the shared
    /// server), after letting the caller adjust the configuration.
    pub async fn start_on(
        store: Store,
        tag: &str,
        tweak: impl FnOnce(&mut otelite_backend::Config),
    ) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("create temp dir"));
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let clickhouse_url = match store {
            Store::Sqlite => None,
            Store::ClickHouse => {
                let server = clickhouse::shared().await;
                Some(server.otelite_url(&clickhouse::database(tag)))
            }
        };
        Self::start_at(dir, [any; 3], clickhouse_url, tweak).await
    }

    /// Starts the backend again on the same database and ports.
    pub async fn restart(stopped: Stopped) -> Self {
        let url = stopped.clickhouse_url;
        let addrs = [stopped.otlp, stopped.grpc, stopped.query];
        Self::start_at(stopped.dir, addrs, url, |_| {}).await
    }

    /// Starts the backend again on the same database and ports, after
    /// letting the caller adjust the configuration.
    pub async fn restart_with(
        stopped: Stopped,
        tweak: impl FnOnce(&mut otelite_backend::Config),
    ) -> Self {
        let url = stopped.clickhouse_url;
        let addrs = [stopped.otlp, stopped.grpc, stopped.query];
        Self::start_at(stopped.dir, addrs, url, tweak).await
    }

    async fn start_at(
        dir: Arc<TempDir>,
        [otlp, grpc, query]: [SocketAddr; 3],
        clickhouse_url: Option<String>,
        tweak: impl FnOnce(&mut otelite_backend::Config),
    ) -> Self {
        let mut config = otelite_backend::Config {
            db_path: dir.path().join("otelite.db"),
            otlp_listen: otlp,
            otlp_grpc_listen: grpc,
            query_listen: query,
            ..Default::default()
        };
        if let Some(url) = &clickhouse_url {
            config.store = otelite_backend::StoreKind::Clickhouse;
            config.clickhouse_url = url.clone();
        }
        tweak(&mut config);
        let server = otelite_backend::Server::bind(config)
            .await
            .expect("backend binds its listeners and opens the database");
        let (otlp, grpc, query) = (
            server.otlp_addr(),
            server.otlp_grpc_addr(),
            server.query_addr(),
        );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            otlp,
            grpc,
            query,
            dir,
            clickhouse_url,
            shutdown: Some(tx),
            task: Some(task),
            http: reqwest::Client::new(),
        }
    }

    /// Asks the server to shut down and waits until it has; the data stays.
    pub async fn stop(mut self) -> Stopped {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("backend task");
        let result = tokio::time::timeout(WAIT, task)
            .await
            .expect("backend shuts down within the wait")
            .expect("backend task did not panic");
        result.expect("backend run() returns Ok after shutdown");
        Stopped {
            otlp: self.otlp,
            grpc: self.grpc,
            query: self.query,
            dir: self.dir.clone(),
            clickhouse_url: self.clickhouse_url.clone(),
        }
    }

    /// The database file, for reading it beside the running backend (the
    /// `otelite` reading commands' `--db`).
    pub fn db_path(&self) -> std::path::PathBuf {
        self.dir.path().join("otelite.db")
    }

    /// The ClickHouse database a `--store clickhouse` backend writes (the
    /// reading commands' `--clickhouse-url`).
    pub fn clickhouse_url(&self) -> Option<String> {
        self.clickhouse_url.clone()
    }

    /// Base URL of the OTLP listener, as exporters take it.
    pub fn otlp_url(&self) -> String {
        format!("http://{}", self.otlp)
    }

    pub fn query_url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.query, path_and_query)
    }

    /// POSTs a body to the OTLP listener.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .http
            .post(format!("http://{}{}", self.otlp, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        Reply::read(request.send().await.expect("POST reaches the backend")).await
    }

    /// GETs a query-API path; the body is parsed as JSON.
    pub async fn get_json(&self, path_and_query: &str) -> (u16, Value) {
        let reply = self
            .http
            .get(self.query_url(path_and_query))
            .send()
            .await
            .expect("GET reaches the query listener");
        let status = reply.status().as_u16();
        let text = reply.text().await.expect("read query reply");
        let json = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{path_and_query} answered {status} with non-JSON {text:?}: {e}")
        });
        (status, json)
    }

    /// The spans stored for a trace, every page of it (a trace past
    /// `max_spans_per_answer` comes in pages), or `None` on 404.
    pub async fn trace(&self, trace_id: &str) -> Option<Vec<model::Span>> {
        let mut spans = Vec::new();
        let mut path = format!("/api/otelite/traces/{trace_id}");
        loop {
            let (status, body) = self.get_json(&path).await;
            match status {
                404 if spans.is_empty() => return None,
                200 => {
                    assert_eq!(body["traceId"], trace_id, "traceId echoed in {body}");
                    let page: Vec<model::Span> = serde_json::from_value(body["spans"].clone())
                        .unwrap_or_else(|e| {
                            panic!("spans of {trace_id} deserialize into model::Span: {e}\n{body}")
                        });
                    spans.extend(page);
                    match body["nextCursor"].as_str() {
                        Some(cursor) => {
                            path = format!("/api/otelite/traces/{trace_id}?cursor={cursor}")
                        }
                        None => return Some(spans),
                    }
                }
                other => panic!("GET {path} answered {other}: {body}"),
            }
        }
    }

    /// Polls a trace until it holds `count` spans (or the wait ends) and
    /// returns what was last seen, so the caller asserts on the real content.
    pub async fn wait_for_trace(&self, trace_id: &str, count: usize) -> Vec<model::Span> {
        eventually(
            || async { self.trace(trace_id).await.unwrap_or_default() },
            |spans| spans.len() >= count,
        )
        .await
    }

    /// `/api/otelite/search` results.
    pub async fn search(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get_json(&format!("/api/otelite/search?{query}")).await;
        assert_eq!(status, 200, "search {query}: {body}");
        body["traces"]
            .as_array()
            .unwrap_or_else(|| panic!("search {query}: no traces array in {body}"))
            .clone()
    }

    /// One service's entry of `/api/rates`, if the backend knows the service.
    pub async fn rates(&self, service: &str) -> Option<ServiceRates> {
        let (status, body) = self
            .get_json(&format!("/api/rates?service={service}"))
            .await;
        assert_eq!(status, 200, "rates for {service}: {body}");
        let services: Vec<ServiceRates> = serde_json::from_value(body["services"].clone())
            .unwrap_or_else(|e| {
                panic!("rates for {service} have the documented shape: {e}\n{body}")
            });
        services.into_iter().find(|s| s.service == service)
    }

    /// Polls `/api/rates` until `ready` holds for the service (or the wait
    /// ends) and returns the last entry seen.
    pub async fn wait_for_rates(
        &self,
        service: &str,
        ready: impl Fn(&ServiceRates) -> bool,
    ) -> ServiceRates {
        let last = eventually(
            || async { self.rates(service).await },
            |rates| rates.as_ref().is_some_and(&ready),
        )
        .await;
        last.unwrap_or_else(|| panic!("/api/rates never listed service {service}"))
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A reply from the OTLP listener.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, retry_after) = (header("content-type"), header("retry-after"));
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("read reply body").to_vec();
        Self {
            status,
            content_type,
            retry_after,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "reply {} is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// What `/api/rates` says about one service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRates {
    pub service: String,
    pub exporter_counters: bool,
    pub baseline: String,
    pub stages: Vec<StageRate>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StageRate {
    pub stage: String,
    pub n: Option<u64>,
    pub rate: Option<f64>,
    /// Spans lost at this stage, `None` when unknown.
    #[serde(default)]
    pub lost: Option<u64>,
    /// `lost` by reason.
    #[serde(default)]
    pub reasons: std::collections::BTreeMap<String, u64>,
    /// Spans keep/drop rules dropped here, by rule: not in `lost`.
    #[serde(default)]
    pub dropped: Vec<PolicyDrop>,
}

/// Spans one keep/drop rule dropped at a stage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PolicyDrop {
    pub rule: String,
    pub n: u64,
    pub share: Option<f64>,
}

/// The stages `/api/rates` lists, in pipeline order.
pub const STAGES: [&str; 6] = [
    "total", "collect", "transmit", "process", "analyze", "store",
];

impl ServiceRates {
    pub fn stage(&self, name: &str) -> &StageRate {
        self.stages
            .iter()
            .find(|s| s.stage == name)
            .unwrap_or_else(|| panic!("stage {name} missing from {self:#?}"))
    }

    pub fn n(&self, name: &str) -> Option<u64> {
        self.stage(name).n
    }

    /// The stage names in the order the backend listed them.
    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.stage.as_str()).collect()
    }

    /// Every stage's `n`, in pipeline order.
    pub fn counts(&self) -> Vec<Option<u64>> {
        STAGES.iter().map(|s| self.n(s)).collect()
    }
}

/// Asserts a rate equals `numerator / denominator` (up to float rounding).
pub fn assert_rate(rates: &ServiceRates, stage: &str, numerator: u64, denominator: u64) {
    let expected = numerator as f64 / denominator as f64;
    let got = rates.stage(stage).rate;
    assert!(
        got.is_some_and(|r| (r - expected).abs() < 1e-9),
        "rate of {stage} for {}: expected {numerator}/{denominator} = {expected}, got {got:?}\n{rates:#?}",
        rates.service
    );
}

/// Calls `fetch` until `done` accepts its value or [`WAIT`] passes; returns
/// the last value either way.
pub async fn eventually<T, F, Fut>(fetch: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    eventually_within(WAIT, fetch, done).await
}

/// [`eventually`] with a limit of its own.
pub async fn eventually_within<T, F, Fut>(
    limit: Duration,
    mut fetch: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + limit;
    loop {
        let value = fetch().await;
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls `fetch` until `done` accepts its value and returns that value;
/// fails the test, naming `what` and the last value, if [`WAIT`] passes
/// first. For outcomes a timeout must not pass for.
pub async fn wait_until<T: std::fmt::Debug, F, Fut>(
    what: &str,
    fetch: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    wait_until_within(WAIT, what, fetch, done).await
}

/// [`wait_until`] with a limit of its own.
pub async fn wait_until_within<T: std::fmt::Debug, F, Fut>(
    limit: Duration,
    what: &str,
    fetch: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let value = eventually_within(limit, fetch, &done).await;
    assert!(
        done(&value),
        "{what}: not within {limit:?}, last seen {value:?}"
    );
    value
}

/// A JSON number that may be written as a string (OTLP's 64-bit integers).
pub fn as_u64(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// A resource for a test service, without the SDK's environment detectors so
/// that `OTEL_*` variables of the machine cannot change it.
pub fn resource(service: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "deployment.environment.name",
            "e2e",
        ))
        .build()
}

/// A provider exporting through otelite to `endpoint`.
pub fn otelite_provider(
    endpoint: &str,
    service: &str,
    batch: Option<opentelemetry_sdk::trace::BatchConfig>,
) -> opentelemetry_sdk::trace::SdkTracerProvider {
    let mut builder = otelite_exporter::OteliteExporter::builder().with_endpoint(endpoint);
    if let Some(batch) = batch {
        builder = builder.with_batch_config(batch);
    }
    builder
        .build_provider(resource(service))
        .expect("otelite exporter builds a provider")
}

/// Shuts a provider down off the async threads (the SDK blocks). The SDK's
/// default 5 s can be too short on a loaded 2-core CI machine for the last
/// export plus the final counter report, so tests allow 30 s.
pub async fn shutdown(provider: opentelemetry_sdk::trace::SdkTracerProvider) {
    tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(30)))
        .await
        .expect("shutdown thread")
        .expect("provider shuts down cleanly");
}

/// Sorts resource and scope attributes: the SDK keeps a resource in a hash
/// map, so only span-level attribute order is meaningful.
pub fn normalized(mut span: model::Span) -> model::Span {
    let mut resource = (*span.resource).clone();
    resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
    span.resource = Arc::new(resource);
    span
}

/// A random-enough trace id for building OTLP requests by hand.
pub fn unique_trace_id(tag: u8) -> model::TraceId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let mut bytes = [0u8; 16];
    bytes[..15].copy_from_slice(&nanos.to_be_bytes()[1..]);
    bytes[15] = tag;
    bytes[0] |= 0x40; // never all zeros
    model::TraceId(bytes)
}

/// One sample from a `/metrics` page at `url`, by its full series name;
/// `None` when the page has no such sample.
pub async fn metric_sample(url: String, series: &str) -> Option<f64> {
    let text = reqwest::get(url)
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("read /metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
}
