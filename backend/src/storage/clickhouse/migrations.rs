//! The ClickHouse schema, versioned as SQLite's is: version N's statements
//! are applied in order when the database's `schema_versions` table says it
//! is older, then N is recorded. Statements are idempotent (`IF NOT
//! EXISTS`), so a migration cut short by a crash runs again whole, and
//! several otelite processes may start against one database at once.
//!
//! A new database with replicated tables (`?replicas=N`) is created from
//! `schema-current.sql` instead, at the current version in one step:
//! ZooKeeper keeps one structure per table, the first replica's, and a
//! second replica that created version 1's tables to alter them later would
//! be refused ("Table structure in ZooKeeper is too different"). Other new
//! databases take the migrations from version 1, as SQLite's do, so every
//! upgrade runs in every test; an end-to-end test holds the two paths equal.

use super::http::{ClickHouseError, Client, quote};
use super::rowbinary::Reader;

/// Each version's statements, separated by lines holding only `;`.
const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("schema-18.16.sql")),
    (2, include_str!("migrate-2.sql")),
    (3, include_str!("migrate-3.sql")),
    (4, include_str!("migrate-4.sql")),
    (5, include_str!("migrate-5.sql")),
    (6, include_str!("migrate-6.sql")),
    (7, include_str!("migrate-7.sql")),
    (8, include_str!("migrate-8.sql")),
    (9, include_str!("migrate-9.sql")),
];

pub const CURRENT_VERSION: u32 = 9;

/// The schema at [`CURRENT_VERSION`] in one script; its first line names
/// the version.
const CURRENT_SCHEMA: &str = include_str!("schema-current.sql");

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error(
        "the ClickHouse database has schema version {found}, newer than this otelite's {supported}"
    )]
    TooNew { found: u32, supported: u32 },
    /// For a reader, which never migrates: not otelite's, or another version.
    #[error(
        "the ClickHouse database has schema version {found} (0: no otelite tables), \
         this otelite reads {current}: run `otelite serve --store clickhouse` once to create or upgrade it"
    )]
    NotCurrent { found: u32, current: u32 },
}

/// The tables otelite reads and writes, with the sharding key of their
/// Distributed table: a trace's spans all go to one shard.
const SHARDED: &[(&str, &str)] = &[
    ("spans_in", "cityHash64(trace_id)"),
    ("spans", "cityHash64(trace_id)"),
    ("spans_by_trace", "cityHash64(trace_id)"),
    ("span_parents", "cityHash64(trace_id)"),
    ("operations", "rand()"),
    ("stage_counts", "rand()"),
    ("stage_losses", "rand()"),
    ("stage_counts_taken", "rand()"),
    ("service_edges", "rand()"),
    ("span_attributes", "cityHash64(trace_id)"),
    ("request_edges", "rand()"),
    // Beside their parents' shard: the join that reads them may run there.
    ("edge_children", "cityHash64(trace_id)"),
    ("exporter_series", "cityHash64(service, stage, series)"),
    // A span's records on one shard, where reads take them once.
    ("span_copies", "cityHash64(trace_id)"),
    ("span_minutes", "rand()"),
];

/// Brings the schema to the current version. With a cluster, that is the
/// shard's own tables in `<database>_shard` on the server this client talks
/// to, then Distributed tables of the same names in `<database>` over that
/// database on every shard. Run otelite once against each shard (every
/// shard needs its own tables; 18.16's `ON CLUSTER` needs ZooKeeper).
pub async fn migrate(client: &Client) -> Result<u32, MigrationError> {
    let Some(cluster) = client.cluster() else {
        return migrate_local(client).await;
    };
    let local = client.local(&format!("{}_shard", client.database()));
    let version = migrate_local(&local).await?;
    client.create_database().await?;
    for (table, key) in SHARDED {
        client
            .execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} AS {shard}.{table} \
                 ENGINE = Distributed({cluster}, {shard}, {table}, {key})",
                shard = local.database()
            ))
            .await?;
        add_missing_columns(client, local.database(), table).await?;
    }
    Ok(version)
}

/// Gives a Distributed table made by an older version the columns its
/// shard table has gained since.
async fn add_missing_columns(
    client: &Client,
    shard: &str,
    table: &str,
) -> Result<(), ClickHouseError> {
    let data = client
        .query(&format!(
            "SELECT name, type FROM system.columns WHERE database = {shard_db} AND table = {name} \
             AND name NOT IN (SELECT name FROM system.columns \
                              WHERE database = {db} AND table = {name})",
            shard_db = quote(shard),
            db = quote(client.database()),
            name = quote(table),
        ))
        .await?;
    let mut reader = Reader::new(&data);
    while !reader.is_empty() {
        let (name, kind) = (reader.string()?, reader.string()?);
        execute_once(
            client,
            &format!("ALTER TABLE {table} ADD COLUMN {name} {kind}"),
        )
        .await?;
    }
    Ok(())
}

/// Runs a migration statement; an `ADD COLUMN` whose column exists (a
/// migration cut short and run again) counts as done, since 18.16 has no
/// `ADD COLUMN IF NOT EXISTS`.
async fn execute_once(client: &Client, statement: &str) -> Result<(), ClickHouseError> {
    match client.execute(statement).await {
        Err(ClickHouseError::Refused { message, .. })
            if statement.contains("ADD COLUMN") && message.contains("already exists") =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Creates the database if needed and brings its schema to the current version.
async fn migrate_local(client: &Client) -> Result<u32, MigrationError> {
    client.create_database().await?;
    client
        .execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (version UInt32, applied_at DateTime) \
             ENGINE = TinyLog",
        )
        .await?;
    let found = version(client).await?;
    if found > CURRENT_VERSION {
        return Err(MigrationError::TooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    if found == 0 && client.replicas().is_some() {
        return apply(client, CURRENT_VERSION, CURRENT_SCHEMA).await;
    }
    for (version, script) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        run(client, script).await?;
        match version {
            8 => super::granules::shrink(client).await?,
            9 => super::waiting::keep_waiting(client).await?,
            _ => {}
        }
        record(client, *version).await?;
    }
    Ok(CURRENT_VERSION)
}

/// Runs `script`'s statements, then records `version`.
async fn apply(client: &Client, version: u32, script: &str) -> Result<u32, MigrationError> {
    run(client, script).await?;
    record(client, version).await?;
    Ok(version)
}

/// Runs `script`'s statements, each replicated when the tables are (see
/// `replicated`).
async fn run(client: &Client, script: &str) -> Result<(), MigrationError> {
    for statement in statements(script) {
        match client.replicas() {
            Some(_) => {
                let statement = super::replicated::replicate(statement, client.database());
                execute_once(client, &statement).await?;
            }
            None => execute_once(client, statement).await?,
        }
    }
    Ok(())
}

/// Records that the schema is at `version`.
async fn record(client: &Client, version: u32) -> Result<(), MigrationError> {
    client
        .execute(&format!(
            "INSERT INTO schema_versions VALUES ({version}, now())"
        ))
        .await?;
    tracing::info!(version, "ClickHouse schema migrated");
    Ok(())
}

/// The newest recorded version; 0 for a new database.
pub async fn version(client: &Client) -> Result<u32, ClickHouseError> {
    let data = client
        .query("SELECT toUInt64(max(version)) FROM schema_versions")
        .await?;
    let mut reader = Reader::new(&data);
    if reader.is_empty() {
        return Ok(0);
    }
    let found = reader.u64()?;
    u32::try_from(found).map_err(|_| ClickHouseError::Decode(format!("schema version {found}")))
}

/// The statements of a script: split on `;` lines, comment-only parts dropped.
fn statements(script: &str) -> impl Iterator<Item = &str> {
    script.split("\n;\n").map(str::trim).filter(|part| {
        part.lines()
            .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with("--"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_splits_into_its_statements() {
        let parts: Vec<&str> = statements(MIGRATIONS[0].1).collect();
        assert!(parts.iter().all(|p| p.contains("CREATE ")), "{parts:?}");
        let tables = parts.iter().filter(|p| p.contains("CREATE TABLE")).count();
        let views = parts
            .iter()
            .filter(|p| p.contains("MATERIALIZED VIEW"))
            .count();
        assert_eq!((tables, views), (7, 3));
        let upgrade: Vec<&str> = statements(MIGRATIONS[1].1).collect();
        assert_eq!(upgrade.len(), 9, "{upgrade:?}");
        assert!(upgrade[0].contains("ALTER TABLE spans_in"), "{upgrade:?}");
        let losses: Vec<&str> = statements(MIGRATIONS[2].1).collect();
        assert_eq!(losses.len(), 2, "{losses:?}");
        assert!(losses[0].contains("CREATE TABLE IF NOT EXISTS stage_losses"));
        let taken: Vec<&str> = statements(MIGRATIONS[3].1).collect();
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert!(taken[0].contains("CREATE TABLE IF NOT EXISTS stage_counts_taken"));
        let v6: Vec<&str> = statements(MIGRATIONS[5].1).collect();
        assert_eq!(v6.len(), 5, "{v6:?}");
        assert!(v6[4].starts_with("INSERT INTO span_attributes"), "{v6:?}");
        let v7: Vec<&str> = statements(MIGRATIONS[6].1).collect();
        assert_eq!(v7.len(), 1, "{v7:?}");
        assert!(v7[0].contains("CREATE TABLE IF NOT EXISTS span_copies"));
        let v8: Vec<&str> = statements(MIGRATIONS[7].1).collect();
        assert_eq!(v8.len(), 3, "{v8:?}");
        assert!(v8[0].contains("CREATE TABLE IF NOT EXISTS span_minutes"));
        let v9: Vec<&str> = statements(MIGRATIONS[8].1).collect();
        assert_eq!(v9.len(), 3, "{v9:?}");
        assert!(v9[1].contains("WHERE is_root = 0 AND parent_in_request = 0"));
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(CURRENT_VERSION));
    }

    #[test]
    fn the_current_schema_is_at_the_current_version() {
        let first = CURRENT_SCHEMA.lines().next();
        assert_eq!(
            first,
            Some(format!("-- version {CURRENT_VERSION}").as_str())
        );
        let made: Vec<&str> = statements(CURRENT_SCHEMA).collect();
        let tables = made.iter().filter(|p| p.contains("CREATE TABLE")).count();
        let views = made
            .iter()
            .filter(|p| p.contains("MATERIALIZED VIEW"))
            .count();
        assert_eq!((tables, views), (15, 8), "{made:?}");
    }
}
