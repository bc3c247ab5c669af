//! ClickHouse's HTTP interface, through the workspace's hyper client: one
//! POST per statement. A 200 means ClickHouse has executed it; for an
//! `INSERT` that is the moment the rows are written to their parts (inserts
//! are synchronous over HTTP; `insert_distributed_sync=1` makes a
//! Distributed table wait for its shards too).
//!
//! 18.16 has no query parameters over HTTP, so values reach SQL only through
//! [`quote`] and [`hex_literal`]; data goes in and out as RowBinary.

use super::deadline;
use crate::text::percent_encode;
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Longest a statement may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Longest an INSERT waits for the other replicas to have its rows
/// (`insert_quorum_timeout`; ClickHouse's default is 10 minutes).
const QUORUM_WAIT: Duration = Duration::from_secs(10);
/// How long past its `max_execution_time` a read is waited for: ClickHouse
/// checks the limit between blocks, and the error has to travel back.
const READ_SLACK: Duration = Duration::from_secs(5);
/// How long a `KILL QUERY` is waited for.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most of an error body kept for the message.
const ERROR_BYTES: usize = 2000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClickHouseError {
    #[error("the ClickHouse URL {url:?} is not valid: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach ClickHouse at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("ClickHouse answered {status}: {message}")]
    Refused { status: StatusCode, message: String },
    #[error("ClickHouse did not answer within {0:?}")]
    Timeout(Duration),
    /// A read ran past the store's `query_timeout`.
    #[error("the query ran longer than its limit of {0:?} (query_timeout): narrow it")]
    QueryTimeout(Duration),
    #[error("unexpected data from ClickHouse: {0}")]
    Decode(String),
}

/// A client for one ClickHouse server (or the node in front of a cluster)
/// and one database; cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: String,
    database: String,
    /// With a cluster, `database` holds Distributed tables over local ones.
    cluster: Option<String>,
    /// With replicas (`?replicas=N`, N ≥ 2): replicated tables, and each
    /// INSERT answered only once N replicas have it (`insert_quorum`).
    replicas: Option<u32>,
    /// With a limit, [`Client::query`] is a read held to it (see `deadline`).
    query_timeout: Option<Duration>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// `url` is `http://host:port` with an optional database as its path
    /// (`http://127.0.0.1:8123/otelite`); the database defaults to `otelite`.
    /// `?replicas=N` makes the tables replicated (see `replicated`) and
    /// every INSERT wait for N replicas.
    /// `?cluster=NAME` names a cluster of the server's `remote_servers`:
    /// then the database holds Distributed tables over the shards' tables
    /// in `<database>_shard` (see `migrations`).
    pub fn new(url: &str) -> Result<Self, ClickHouseError> {
        let bad = |reason: &str| ClickHouseError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// is supported"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let database = uri.path().trim_matches('/');
        let database = if database.is_empty() {
            "otelite"
        } else {
            database
        };
        let name = |text: &str| {
            !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !name(database) {
            return Err(bad("the database name may hold only letters, digits and _"));
        }
        let (mut cluster, mut replicas) = (None, None);
        for param in uri.query().into_iter().flat_map(|q| q.split('&')) {
            if let Some(value) = param.strip_prefix("cluster=")
                && name(value)
            {
                cluster = Some(value.to_owned());
            } else if let Some(value) = param.strip_prefix("replicas=")
                && let Ok(n @ 2..) = value.parse::<u32>()
            {
                replicas = Some(n);
            } else {
                return Err(bad(
                    "the parameters are cluster=NAME (letters, digits, _) and replicas=N (N >= 2)",
                ));
            }
        }
        Ok(Self {
            base: format!("http://{authority}/"),
            database: database.to_owned(),
            cluster,
            replicas,
            query_timeout: None,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// How many replicas an INSERT waits for, when the tables are replicated.
    pub fn replicas(&self) -> Option<u32> {
        self.replicas
    }

    /// The same server, another database and no cluster: a shard's own tables.
    pub fn local(&self, database: &str) -> Self {
        Self {
            database: database.to_owned(),
            cluster: None,
            ..self.clone()
        }
    }

    /// The same client, whose queries are reads stopped after `timeout`
    /// (rounded up to whole seconds) or when their future is dropped.
    pub fn with_query_timeout(&self, timeout: Duration) -> Self {
        Self {
            query_timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// Runs a statement that returns nothing (DDL) in the database.
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        let params = format!("database={}", self.database);
        self.post(&params, Bytes::copy_from_slice(sql.as_bytes()))
            .await
            .map(drop)
    }

    /// A statement that may run longer than [`TIMEOUT`] (a migration's copy).
    pub async fn execute_within(&self, sql: &str, limit: Duration) -> Result<(), ClickHouseError> {
        let params = format!("database={}", self.database);
        self.post_within(&params, Bytes::copy_from_slice(sql.as_bytes()), limit)
            .await
            .map(drop)
    }

    /// Creates the database unless it exists.
    pub async fn create_database(&self) -> Result<(), ClickHouseError> {
        let sql = format!("CREATE DATABASE IF NOT EXISTS {}", self.database);
        self.post("", Bytes::from(sql)).await.map(drop)
    }

    /// Runs a query in the database and returns its RowBinary output. An
    /// `IN (subquery)` over a Distributed table runs on each shard against
    /// the shard's own tables (18.16 refuses it otherwise): otelite's only
    /// such subqueries are over tables sharded by trace (see `orphans`).
    pub async fn query(&self, sql: &str) -> Result<Bytes, ClickHouseError> {
        let sql = Bytes::from(format!("{sql} FORMAT RowBinary"));
        let params = format!("database={}&distributed_product_mode=local", self.database);
        match self.query_timeout {
            None => self.post(&params, sql).await,
            Some(limit) => self.read(&params, sql, limit).await,
        }
    }

    /// A query held to `limit`, killed if its future is dropped first.
    async fn read(
        &self,
        params: &str,
        sql: Bytes,
        limit: Duration,
    ) -> Result<Bytes, ClickHouseError> {
        let id = deadline::query_id();
        let params = format!("{params}&{}", deadline::settings(limit, &id));
        let guard = deadline::KillOnDrop::new(self.clone(), id);
        let answer = self.post_within(&params, sql, limit + READ_SLACK).await;
        match answer {
            Err(ClickHouseError::Refused { message, .. }) if deadline::is_timeout(&message) => {
                guard.disarm();
                Err(ClickHouseError::QueryTimeout(limit))
            }
            // ClickHouse never answered: the guard kills what may still run.
            Err(ClickHouseError::Timeout(_)) => Err(ClickHouseError::QueryTimeout(limit)),
            answer => {
                guard.disarm();
                answer
            }
        }
    }

    /// Asks the server to stop the query `id` (from [`deadline::query_id`]).
    pub(super) async fn kill_query(&self, id: &str) -> Result<(), ClickHouseError> {
        let sql = format!("KILL QUERY WHERE query_id = {} ASYNC", quote(id));
        self.post_within("", Bytes::from(sql), KILL_TIMEOUT)
            .await
            .map(drop)
    }

    /// Inserts RowBinary `rows` into `table (columns)`; returns once
    /// ClickHouse has written them.
    pub async fn insert(
        &self,
        table: &str,
        columns: &str,
        rows: Bytes,
    ) -> Result<(), ClickHouseError> {
        let statement = format!("INSERT INTO {table} ({columns}) FORMAT RowBinary");
        let mut params = format!(
            "database={}&insert_distributed_sync=1&query={}",
            self.database,
            percent_encode(&statement)
        );
        if let Some(replicas) = self.replicas {
            // A 200 only once every replica has the rows, so it survives
            // the loss of one. No block deduplication: otelite finds
            // retried spans itself, and two equal count blocks (the same
            // counts in one minute) are both real. A replica that dies
            // mid-insert is still "active" in ZooKeeper until its session
            // ends: the wait for it is bounded below `TIMEOUT`, so
            // ClickHouse answers rather than the connection being cut.
            params.push_str(&format!(
                "&insert_quorum={replicas}&insert_quorum_timeout={}&insert_deduplicate=0",
                QUORUM_WAIT.as_millis()
            ));
        }
        self.post(&params, rows).await.map(drop)
    }

    /// Whether the server answers `GET /ping` within `limit`.
    pub async fn ping(&self, limit: Duration) -> Result<(), ClickHouseError> {
        let request = Request::get(format!("{}ping", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClickHouseError::Url {
                url: self.base.clone(),
                reason: e.to_string(),
            })?;
        self.exchange(request, limit).await.map(drop)
    }

    async fn post(&self, params: &str, body: Bytes) -> Result<Bytes, ClickHouseError> {
        self.post_within(params, body, TIMEOUT).await
    }

    async fn post_within(
        &self,
        params: &str,
        body: Bytes,
        limit: Duration,
    ) -> Result<Bytes, ClickHouseError> {
        let url = format!("{}?{params}", self.base);
        let request =
            Request::post(&url)
                .body(Full::new(body))
                .map_err(|e| ClickHouseError::Url {
                    url: self.base.clone(),
                    reason: e.to_string(),
                })?;
        self.exchange(request, limit).await
    }

    /// Sends a request; its answer's body on a 2xx within `limit`.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        limit: Duration,
    ) -> Result<Bytes, ClickHouseError> {
        let exchange = async {
            let response =
                self.http
                    .request(request)
                    .await
                    .map_err(|e| ClickHouseError::Unreachable {
                        url: self.base.clone(),
                        reason: e.to_string(),
                    })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClickHouseError::Unreachable {
                    url: self.base.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                let shown = &body[..body.len().min(ERROR_BYTES)];
                Err(ClickHouseError::Refused {
                    status,
                    message: String::from_utf8_lossy(shown).trim().to_owned(),
                })
            }
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| ClickHouseError::Timeout(limit))?
    }
}

/// A ClickHouse string literal: quotes and backslashes escaped, control
/// characters as `\xHH`, so any text is only ever a value.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Bytes as a `unhex('…')` expression (ids).
pub fn hex_literal(bytes: &[u8]) -> String {
    format!("unhex('{}')", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_any_text_a_value() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), "'it\\'s'");
        assert_eq!(quote("a\\' OR 1=1 --"), "'a\\\\\\' OR 1=1 --'");
        assert_eq!(quote("line\nnext\0"), "'line\\x0anext\\x00'");
    }

    #[test]
    fn the_url_names_the_database() -> Result<(), ClickHouseError> {
        assert_eq!(Client::new("http://127.0.0.1:8123")?.database(), "otelite");
        assert_eq!(
            Client::new("http://127.0.0.1:8123/traces")?.database(),
            "traces"
        );
        assert!(Client::new("https://x:1").is_err());
        assert!(Client::new("http://x:1/a;drop").is_err());
        let clustered = Client::new("http://x:1/o?cluster=two_shards")?;
        assert_eq!(clustered.cluster(), Some("two_shards"));
        assert!(Client::new("http://x:1/o?cluster=a,b").is_err());
        assert!(Client::new("http://x:1/o?user=me").is_err());
        let replicated = Client::new("http://x:1/o?cluster=c&replicas=2")?;
        assert_eq!(
            (replicated.cluster(), replicated.replicas()),
            (Some("c"), Some(2))
        );
        assert_eq!(Client::new("http://x:1/o")?.replicas(), None);
        assert!(Client::new("http://x:1/o?replicas=1").is_err());
        assert!(Client::new("http://x:1/o?replicas=two").is_err());
        assert!(Client::new("not a url").is_err());
        Ok(())
    }
}
