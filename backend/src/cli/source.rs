//! Where the reading commands get their data: the SQLite file (`--db`) or a
//! running `otelite serve` (`--server`). Both answer the same questions with
//! the same typed results, so every command renders one way whichever it
//! asked; only the errors name a different place.

use super::remote::Remote;
use super::{CliError, Common};
use crate::rates::{self, RatesReport};
use crate::stage::minute_of;
use crate::storage::sqlite::{self};
use crate::storage::{Dependency, TraceQuery, TraceSummary};
use otelite_model::{Span, SpanKind, TraceId};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// `--server` when the flag is not given.
pub const SERVER_ENV: &str = "OTELITE_SERVER";
/// `--query-token` when the flag is not given; the same variable `otelite
/// serve` reads, so one setting serves both.
pub const QUERY_TOKEN_ENV: &str = "OTELITE_QUERY_TOKEN";
/// `--server-ca` when the flag is not given.
pub const SERVER_CA_ENV: &str = "OTELITE_SERVER_CA";
pub const DEFAULT_DB: &str = "./otelite.db";

pub enum Source {
    Db(PathBuf),
    Server(Box<Remote>),
}

impl Source {
    /// The source `common` names. A flag wins over the environment, and an
    /// explicit `--db` over `OTELITE_SERVER`; with neither, the default file.
    /// `var` reads the environment (injected so tests can fix it).
    pub fn resolve(
        common: &Common,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CliError> {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let server = match (&common.server, &common.db) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(_)) => None,
            (None, None) => set(SERVER_ENV),
        };
        let Some(url) = server else {
            let db = common.db.clone();
            return Ok(Self::Db(db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB))));
        };
        let token = common.query_token.clone().or_else(|| set(QUERY_TOKEN_ENV));
        let ca = common
            .server_ca
            .clone()
            .or_else(|| set(SERVER_CA_ENV).map(PathBuf::from));
        let remote = Remote::new(&url, token.as_deref(), ca.as_deref(), common.timeout)?;
        Ok(Self::Server(Box::new(remote)))
    }

    /// Where the data comes from, for messages: the file or the server URL.
    pub fn place(&self) -> String {
        match self {
            Self::Db(path) => path.display().to_string(),
            Self::Server(remote) => remote.base().to_owned(),
        }
    }

    pub async fn services(&self) -> Result<Vec<String>, CliError> {
        match self {
            Self::Db(path) => Ok(sqlite::services(&open(path)?)?),
            Self::Server(remote) => remote.services().await,
        }
    }

    /// A service's operations, sorted; an error for a service that never
    /// sent a span (an empty list would hide a typo).
    pub async fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<(String, SpanKind)>, CliError> {
        let found = match self {
            Self::Db(path) => {
                let conn = open(path)?;
                let found = sqlite::operations(&conn, service, kind)?;
                let known =
                    !found.is_empty() || sqlite::services(&conn)?.iter().any(|s| s == service);
                known.then_some(found)
            }
            Self::Server(remote) => remote.operations(service, kind).await?,
        };
        found.ok_or_else(|| CliError::UnknownService {
            service: service.to_owned(),
            place: self.place(),
        })
    }

    /// Trace summaries, newest first, at most `query.limit`.
    pub async fn search(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, CliError> {
        match self {
            Self::Db(path) => Ok(sqlite::search(&open(path)?, query)?),
            Self::Server(remote) => remote.search(query).await,
        }
    }

    /// Every stored span of a trace, by start time.
    pub async fn trace(&self, id: &TraceId) -> Result<Vec<Span>, CliError> {
        let spans = match self {
            Self::Db(path) => sqlite::trace(&open(path)?, id)?,
            Self::Server(remote) => remote.trace(id).await?,
        };
        spans.ok_or_else(|| CliError::UnknownTrace {
            id: id.to_hex(),
            place: self.place(),
        })
    }

    /// The stage rates of the minutes in `[start_ns, end_ns]`.
    pub async fn rates(
        &self,
        service: Option<&str>,
        start_ns: u64,
        end_ns: u64,
    ) -> Result<RatesReport, CliError> {
        match self {
            Self::Db(path) => {
                let (start, end) = (minute_of(start_ns), minute_of(end_ns));
                let rows = sqlite::stage_counts(&open(path)?, service, start, end)?;
                Ok(rates::report(&rows))
            }
            Self::Server(remote) => remote.rates(service, start_ns, end_ns).await,
        }
    }

    pub async fn dependencies(
        &self,
        start_ns: u64,
        end_ns: u64,
    ) -> Result<Vec<Dependency>, CliError> {
        match self {
            Self::Db(path) => Ok(sqlite::dependencies(&open(path)?, start_ns, end_ns)?),
            Self::Server(remote) => remote.dependencies(start_ns, end_ns).await,
        }
    }
}

fn open(db: &Path) -> Result<Connection, CliError> {
    // Said plainly here: SQLite's own word for a missing file is vague.
    if !db.exists() {
        return Err(CliError::NoSuchFile(db.to_owned()));
    }
    Ok(sqlite::open_read_only(db)?)
}
