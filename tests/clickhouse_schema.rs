//! The ClickHouse schema's two paths give the same tables: a database
//! migrated from version 1 by otelite, and one made from
//! `schema-current.sql` in one step (what a new database with replicated
//! tables gets, see `migrations.rs`), compared object by object as
//! ClickHouse reports them. A migration not carried into the current
//! schema (or the reverse) fails here.

use crate::support::clickhouse::{database, shared};
use crate::support::{Backend, Store};

const CURRENT: &str = include_str!("../backend/src/storage/clickhouse/schema-current.sql");

/// Each table and view of `database` but the version record: name, engine
/// and its `CREATE` statement with the database's name taken out.
async fn objects(database: &str) -> Vec<String> {
    let server = shared().await;
    let rows = server
        .sql(&format!(
            "SELECT name, engine_full, create_table_query FROM system.tables \
             WHERE database = '{database}' AND name != 'schema_versions' ORDER BY name"
        ))
        .await;
    rows.lines()
        .map(|row| row.replace(&format!("{database}."), "DB."))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_schema_is_what_the_migrations_make() {
    let migrated = Backend::start_on(Store::ClickHouse, "migrated", |_| {}).await;
    let url = migrated.clickhouse_url().unwrap_or_default();
    let from_migrations = url.rsplit('/').next().unwrap_or_default().to_owned();

    let server = shared().await;
    let in_one_step = database("current");
    server.sql(&format!("CREATE DATABASE {in_one_step}")).await;
    for statement in CURRENT.split("\n;\n") {
        server.sql_in(&in_one_step, statement).await;
    }

    let (expected, found) = (objects(&from_migrations).await, objects(&in_one_step).await);
    assert_eq!(found.len(), 23, "{found:#?}");
    for (migrated, current) in expected.iter().zip(&found) {
        assert_eq!(
            current, migrated,
            "schema-current.sql differs from the migrations"
        );
    }
    assert_eq!(found.len(), expected.len(), "{expected:#?}\n{found:#?}");
}
