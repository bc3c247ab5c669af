//! What any store's operations fail with, whichever store answers: the
//! receiver and the query APIs map each cause to a status in one place.

use super::{clickhouse, remote, sqlite};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // Causes only the SQLite store has.
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Migration(#[from] sqlite::MigrationError),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{} is not an otelite database", .0.display())]
    NotOtelite(PathBuf),
    #[error("{} is a directory, not a database file", .0.display())]
    IsDirectory(PathBuf),
    #[error("cannot create database file {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another `otelite serve` holds the file.
    #[error(transparent)]
    Locked(#[from] sqlite::lock::LockError),
    #[error(
        "{} has schema version {found}, older than this otelite's {current}: run `otelite serve --db {}` once to upgrade it",
        path.display(),
        path.display()
    )]
    Outdated {
        path: PathBuf,
        found: i64,
        current: i64,
    },
    // Causes only the ClickHouse store has.
    // Their messages name ClickHouse already.
    #[error(transparent)]
    ClickHouse(clickhouse::ClickHouseError),
    #[error(transparent)]
    ClickHouseMigration(#[from] clickhouse::MigrationError),
    // Causes only a running otelite asked over HTTP has.
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
    // Any store.
    #[error("the write failed: {0}")]
    WriteFailed(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the query ran longer than its limit of {0:?} (query_timeout): narrow it")]
    QueryTimeout(std::time::Duration),
    #[error("the store is shutting down")]
    Closed,
    #[error("the store's write queue is full")]
    Overloaded,
    #[error("the database is at its size cap (max_db_size) until retention makes room")]
    SizeCap,
}

/// A read past its limit is the same refusal on every store (503 naming
/// `query_timeout`); any other ClickHouse cause stays one.
impl From<clickhouse::ClickHouseError> for StoreError {
    fn from(e: clickhouse::ClickHouseError) -> Self {
        match e {
            clickhouse::ClickHouseError::QueryTimeout(limit) => StoreError::QueryTimeout(limit),
            e => StoreError::ClickHouse(e),
        }
    }
}
