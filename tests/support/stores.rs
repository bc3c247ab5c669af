//! The two stores every suite runs on, SQLite and ClickHouse: [`Store`]
//! picks one, [`for_each_store!`] turns one test body into a test per
//! store, and [`StoreAt`] is where a test's data lives when the real
//! `otelite serve` binary runs on it, with the ledger check for each store
//! (the SQLite file read directly; ClickHouse through its SQL).

use super::clickhouse::{self, ClickHouseServer};
use super::ledger::{self, Ledger, Stored};
use super::process::{ServeProcess, blocking};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    ClickHouse,
}

/// `for_each_store!(#[tokio::test(…)] name)` makes `name::sqlite` and
/// `name::clickhouse`, two tests calling `async fn name(store: Store)`.
macro_rules! for_each_store {
    ($(#[$attr:meta])* $name:ident) => {
        mod $name {
            $(#[$attr])*
            async fn sqlite() {
                super::$name($crate::support::Store::Sqlite).await
            }
            $(#[$attr])*
            async fn clickhouse() {
                super::$name($crate::support::Store::ClickHouse).await
            }
        }
    };
}
pub(crate) use for_each_store;

/// A store for `otelite serve` processes that outlives them.
pub enum StoreAt {
    Sqlite {
        db: PathBuf,
    },
    /// A database of the test's own on the shared server.
    ClickHouse {
        server: Arc<ClickHouseServer>,
        database: String,
        /// `--db`, which the process is given but does not open.
        unused: PathBuf,
    },
}

impl StoreAt {
    /// A fresh store of this kind: `otelite.db` in `dir`, or a new database
    /// `<tag>_<n>`.
    pub async fn new(store: Store, dir: &Path, tag: &str) -> Self {
        let db = dir.join("otelite.db");
        match store {
            Store::Sqlite => Self::Sqlite { db },
            Store::ClickHouse => Self::ClickHouse {
                server: clickhouse::shared().await,
                database: clickhouse::database(tag),
                unused: db,
            },
        }
    }

    /// A fresh database on a server of the test's own (for a test that
    /// stops or freezes the server).
    pub fn on_server(server: Arc<ClickHouseServer>, dir: &Path, tag: &str) -> Self {
        Self::ClickHouse {
            server,
            database: clickhouse::database(tag),
            unused: dir.join("otelite.db"),
        }
    }

    pub fn kind(&self) -> Store {
        match self {
            Self::Sqlite { .. } => Store::Sqlite,
            Self::ClickHouse { .. } => Store::ClickHouse,
        }
    }

    /// Starts `otelite serve` on this store with `extra` flags.
    pub async fn serve(&self, extra: &[&str]) -> ServeProcess {
        let (db, mut flags) = match self {
            Self::Sqlite { db } => (db.clone(), Vec::new()),
            Self::ClickHouse {
                server,
                database,
                unused,
            } => (
                unused.clone(),
                vec![
                    "--store".to_owned(),
                    "clickhouse".to_owned(),
                    "--clickhouse-url".to_owned(),
                    server.otelite_url(database),
                ],
            ),
        };
        flags.extend(extra.iter().map(|f| (*f).to_owned()));
        blocking(move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            ServeProcess::start(&db, &flags)
        })
        .await
    }

    /// Holds the store to the ledger (see `ledger`); `service` must be the
    /// only service whose spans are in the store.
    pub async fn check(&self, ledger: Ledger, service: &str) -> (Ledger, Stored) {
        match self {
            Self::Sqlite { db } => {
                let (db, service) = (db.clone(), service.to_owned());
                blocking(move || {
                    let stored = ledger::check_database(&db, &ledger, &service);
                    (ledger, stored)
                })
                .await
            }
            Self::ClickHouse {
                server, database, ..
            } => {
                let stored = ledger::check_clickhouse(server, database, &ledger, service).await;
                (ledger, stored)
            }
        }
    }
}
