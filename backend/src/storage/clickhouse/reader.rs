//! The ClickHouse store's reads: the seam's questions as queries over HTTP.
//! The server's store reads through one; the reading commands open one on
//! a database no receiver needs to run (`ClickHouseReader::connect`), after
//! checking it holds otelite's tables at this otelite's schema version.
//! Every read is held to a time limit and killed when abandoned (`deadline`).

use super::http::{ClickHouseError, Client};
use super::{migrations, orphans, read, search};
use crate::storage::sqlite::DEFAULT_QUERY_TIMEOUT;
use crate::storage::{
    Dependency, Orphans, Page, PageRequest, RateRow, StoreError, StoreFuture, TracePage,
    TraceQuery, TraceReader,
};
use otelite_model::{SpanKind, TraceId};

/// A reader of one ClickHouse database; cheap to clone.
#[derive(Clone)]
pub struct ClickHouseReader(pub(super) Client);

impl ClickHouseReader {
    /// Reads the database at `url` (see [`Client::new`]) without creating
    /// or migrating anything.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = Client::new(url)?;
        let found = migrations::version(&client).await?;
        if found != migrations::CURRENT_VERSION {
            return Err(migrations::MigrationError::NotCurrent {
                found,
                current: migrations::CURRENT_VERSION,
            }
            .into());
        }
        Ok(Self(client.with_query_timeout(DEFAULT_QUERY_TIMEOUT)))
    }

    /// Runs `read` and maps its error; reads need no slot.
    pub(super) fn answer<T, F>(
        &self,
        read: impl FnOnce(Client) -> F + Send + 'static,
    ) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, ClickHouseError>> + Send + 'static,
    {
        let client = self.0.clone();
        Box::pin(async move { read(client).await.map_err(StoreError::from) })
    }
}

impl TraceReader for ClickHouseReader {
    fn services(&self) -> StoreFuture<Vec<String>> {
        self.answer(|client| async move { read::services(&client).await })
    }

    fn operations(
        &self,
        service: String,
        kind: Option<SpanKind>,
    ) -> StoreFuture<Vec<(String, SpanKind)>> {
        self.answer(move |client| async move { read::operations(&client, &service, kind).await })
    }

    fn trace_page(&self, trace_id: TraceId, page: PageRequest) -> StoreFuture<Option<TracePage>> {
        self.answer(move |client| async move { read::trace_page(&client, &trace_id, page).await })
    }

    fn first_pages(&self, ids: Vec<TraceId>, limit: usize) -> StoreFuture<Vec<Option<TracePage>>> {
        self.answer(move |client| async move { read::first_pages(&client, &ids, limit).await })
    }

    fn search_page(&self, query: TraceQuery) -> StoreFuture<Page> {
        self.answer(move |client| async move { search::search_page(&client, &query).await })
    }

    fn dependencies(&self, start_ns: u64, end_ns: u64) -> StoreFuture<Vec<Dependency>> {
        self.answer(
            move |client| async move { read::dependencies(&client, start_ns, end_ns).await },
        )
    }

    fn stage_counts(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
    ) -> StoreFuture<Vec<RateRow>> {
        self.answer(move |client| async move {
            read::stage_counts(&client, service.as_deref(), start_minute, end_minute).await
        })
    }

    fn orphans(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
        grace: std::time::Duration,
    ) -> StoreFuture<Vec<Orphans>> {
        self.answer(move |client| async move {
            orphans::orphans(&client, service.as_deref(), start_minute, end_minute, grace).await
        })
    }
}
