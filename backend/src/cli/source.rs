//! Where the reading commands get their data: a reader of the seam, the
//! SQLite file (`--db`), a ClickHouse database (`--clickhouse-url`) or a
//! running `otelite serve` (`--server`). All answer the same questions with
//! the same typed results, so every command renders one way whichever it
//! asked; only the errors name a different place.

use super::{CliError, Common};
use crate::rates::{self, RatesReport};
use crate::stage::minute_of;
use crate::storage::clickhouse::ClickHouseReader;
use crate::storage::remote::{PAGE_LIMIT, Remote, RemoteError};
use crate::storage::sqlite::SqliteReader;
use crate::storage::{Dependency, PageRequest, StoreError, TraceQuery, TraceReader, TraceSummary};
use otelite_model::{Span, SpanKind, TraceId};
use std::path::PathBuf;
use std::time::Duration;

/// `--server` when the flag is not given.
pub const SERVER_ENV: &str = "OTELITE_SERVER";
/// `--query-token` when the flag is not given; the same variable `otelite
/// serve` reads, so one setting serves both.
pub const QUERY_TOKEN_ENV: &str = "OTELITE_QUERY_TOKEN";
/// `--server-ca` when the flag is not given.
pub const SERVER_CA_ENV: &str = "OTELITE_SERVER_CA";
pub const DEFAULT_DB: &str = "./otelite.db";

/// What the flags name, before anything is opened.
pub(crate) enum Place {
    Db(PathBuf),
    ClickHouse(String),
    Server(Box<Remote>),
}

impl Place {
    /// How messages name it: the file, the ClickHouse URL or the server URL.
    pub(crate) fn name(&self) -> String {
        match self {
            Self::Db(path) => path.display().to_string(),
            Self::ClickHouse(url) => url.clone(),
            Self::Server(remote) => remote.base().to_owned(),
        }
    }
}

/// A search reads at most this many pages. Each must bring a trace, so
/// `--limit` bounds them too; this bounds a server that brings one at a time.
pub const MAX_PAGES: usize = 100;
/// With `--server`, the whole command ends within this many `--timeout`s,
/// however many requests it makes: a server that answers each one just in
/// time cannot hold it forever.
pub const COMMAND_TIMEOUTS: u32 = 4;

/// Why a server's search pages were not followed further.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    #[error("search page {page} was empty but named a next page (nextCursor)")]
    EmptyWithCursor { page: usize },
    #[error("search page {page} named itself as the next page (nextCursor {cursor})")]
    SameCursor { page: usize, cursor: String },
    #[error("the search needed more than {MAX_PAGES} pages")]
    TooManyPages,
    #[error("trace page {page} was empty but named a next page (nextCursor)")]
    EmptyTracePage { page: usize },
    #[error("trace page {page} did not move past the previous one (nextCursor {cursor})")]
    TraceCursorBack { page: usize, cursor: String },
    #[error("the trace's pages brought more spans than its spanCount of {count}")]
    MoreSpansThanCounted { count: u64 },
}

/// Spans asked for per page of a trace; a server answers at most its own
/// `max_spans_per_answer`.
pub const TRACE_PAGE_SPANS: usize = 10_000;

/// The reader the flags name, and how messages name it.
pub struct Source {
    reader: Box<dyn TraceReader>,
    place: String,
    /// The bound on a whole command, for a server only.
    deadline: Option<Duration>,
}

impl Source {
    /// The source `common` names. A flag wins over the environment, and an
    /// explicit `--db` or `--clickhouse-url` over `OTELITE_SERVER`; with
    /// none, the default file. `var` reads the environment (injected so
    /// tests can fix it).
    pub async fn resolve(
        common: &Common,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CliError> {
        match Self::named_by(common, var)? {
            Place::Db(path) => {
                // Said plainly here: SQLite's own word for a missing file is vague.
                if !path.exists() {
                    return Err(CliError::NoSuchFile(path));
                }
                let reader = SqliteReader::open(&path)?;
                Ok(Self::new(reader, path.display().to_string()))
            }
            Place::ClickHouse(url) => {
                let reader = ClickHouseReader::connect(&url).await?;
                Ok(Self::new(reader, url))
            }
            place @ Place::Server(_) => {
                let name = place.name();
                let Place::Server(remote) = place else {
                    unreachable!("matched above")
                };
                let deadline = common.timeout.saturating_mul(COMMAND_TIMEOUTS);
                Ok(Self {
                    deadline: Some(deadline),
                    ..Self::new(*remote, name)
                })
            }
        }
    }

    fn new(reader: impl TraceReader, place: String) -> Self {
        Self {
            reader: Box::new(reader),
            place,
            deadline: None,
        }
    }

    /// The place `common` and the environment name.
    pub(crate) fn named_by(
        common: &Common,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Place, CliError> {
        let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        if let Some(url) = &common.clickhouse_url {
            return Ok(Place::ClickHouse(url.clone()));
        }
        let server = match (&common.server, &common.db) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(_)) => None,
            (None, None) => set(SERVER_ENV),
        };
        let Some(url) = server else {
            let db = common.db.clone();
            return Ok(Place::Db(db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB))));
        };
        let token = common.query_token.clone().or_else(|| set(QUERY_TOKEN_ENV));
        let ca = common
            .server_ca
            .clone()
            .or_else(|| set(SERVER_CA_ENV).map(PathBuf::from));
        let remote = Remote::new(&url, token.as_deref(), ca.as_deref(), common.timeout).map_err(
            |error| match error {
                RemoteError::BadArgument(message) => CliError::BadArgument(message),
                error => CliError::Remote(error),
            },
        )?;
        Ok(Place::Server(Box::new(remote)))
    }

    /// A failed question, naming the place when the cause does not: SQLite
    /// says "database disk image is malformed" but not which file.
    fn failed(&self, error: StoreError) -> CliError {
        match error {
            StoreError::Sqlite(source) => CliError::Database {
                place: self.place.clone(),
                source,
            },
            error => error.into(),
        }
    }

    /// How long a whole command may take: `None` but for a server.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Where the data comes from, for messages: the file, the ClickHouse URL
    /// or the server URL.
    pub fn place_name(&self) -> &str {
        &self.place
    }

    pub async fn services(&self) -> Result<Vec<String>, CliError> {
        self.reader.services().await.map_err(|e| self.failed(e))
    }

    /// A service's operations, sorted; an error for a service that never
    /// sent a span (an empty list would hide a typo).
    pub async fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<(String, SpanKind)>, CliError> {
        let found = self
            .reader
            .operations(service.to_owned(), kind)
            .await
            .map_err(|e| self.failed(e))?;
        if found.is_empty() && !self.services().await?.iter().any(|s| s == service) {
            return Err(CliError::UnknownService {
                service: service.to_owned(),
                place: self.place.clone(),
            });
        }
        Ok(found)
    }

    /// Trace summaries, newest first, at most `query.limit`: page after
    /// page, until the limit or the last page. A page that would make the
    /// paging endless (empty yet naming a next page, naming itself, one
    /// past [`MAX_PAGES`]) is an error, not a shorter answer.
    pub async fn search(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, CliError> {
        let mut traces = Vec::new();
        let mut cursor = query.cursor;
        for page_number in 1.. {
            if traces.len() >= query.limit {
                break;
            }
            if page_number > MAX_PAGES {
                return Err(self.paging(PagingError::TooManyPages));
            }
            let page_query = TraceQuery {
                limit: (query.limit - traces.len()).min(PAGE_LIMIT),
                cursor,
                ..query.clone()
            };
            let page = self
                .reader
                .search_page(page_query)
                .await
                .map_err(|e| self.failed(e))?;
            let brought = page.traces.len();
            traces.extend(page.traces);
            match page.next {
                None => break,
                Some(_) if brought == 0 => {
                    let page = page_number;
                    return Err(self.paging(PagingError::EmptyWithCursor { page }));
                }
                Some(next) if Some(next) == cursor => {
                    let (page, cursor) = (page_number, next.to_string());
                    return Err(self.paging(PagingError::SameCursor { page, cursor }));
                }
                Some(next) => cursor = Some(next),
            }
        }
        traces.truncate(query.limit);
        Ok(traces)
    }

    fn paging(&self, source: PagingError) -> CliError {
        CliError::Paging {
            place: self.place.clone(),
            source,
        }
    }

    /// Every stored span of a trace, by start time then span id: page
    /// after page, since a store answers a huge trace in pages. A page that
    /// would make the paging endless (empty yet naming a next page, a cursor
    /// that does not move forward, more spans than the trace counts) is an
    /// error, not a shorter trace.
    pub async fn trace(&self, id: &TraceId) -> Result<Vec<Span>, CliError> {
        let mut spans = Vec::new();
        let mut after = None;
        for page_number in 1.. {
            let request = PageRequest {
                after,
                limit: TRACE_PAGE_SPANS,
            };
            let page = self
                .reader
                .trace_page(*id, request)
                .await
                .map_err(|e| self.failed(e))?;
            let Some(page) = page else {
                if page_number > 1 {
                    break; // deleted while being read: what was read stands
                }
                return Err(CliError::UnknownTrace {
                    id: id.to_hex(),
                    place: self.place.clone(),
                });
            };
            let brought = page.spans.len();
            spans.extend(page.spans);
            if spans.len() as u64 > page.span_count {
                let count = page.span_count;
                return Err(self.paging(PagingError::MoreSpansThanCounted { count }));
            }
            match page.next {
                None => break,
                Some(_) if brought == 0 => {
                    let page = page_number;
                    return Err(self.paging(PagingError::EmptyTracePage { page }));
                }
                Some(next) if after.is_some_and(|after| next <= after) => {
                    let (page, cursor) = (page_number, next.to_string());
                    return Err(self.paging(PagingError::TraceCursorBack { page, cursor }));
                }
                Some(next) => after = Some(next),
            }
        }
        Ok(spans)
    }

    /// The stage rates of the minutes in `[start_ns, end_ns]`, with the
    /// upstream loss estimated from the orphans after `orphan_grace` (a
    /// server's own, with `--server`).
    pub async fn rates(
        &self,
        service: Option<&str>,
        start_ns: u64,
        end_ns: u64,
        orphan_grace: Duration,
    ) -> Result<RatesReport, CliError> {
        let (start, end) = (minute_of(start_ns), minute_of(end_ns));
        let service = service.map(str::to_owned);
        let rows = self
            .reader
            .stage_counts(service.clone(), start, end)
            .await
            .map_err(|e| self.failed(e))?;
        let orphans = self
            .reader
            .orphans(service, start, end, orphan_grace)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(rates::with_orphans(rates::report(&rows), &orphans))
    }

    pub async fn dependencies(
        &self,
        start_ns: u64,
        end_ns: u64,
    ) -> Result<Vec<Dependency>, CliError> {
        self.reader
            .dependencies(start_ns, end_ns)
            .await
            .map_err(|e| self.failed(e))
    }
}
