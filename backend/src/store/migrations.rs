//! Opens a database file and brings its schema to the current version.
//! `user_version` holds the version; version 1 is `schema.sql`, never
//! edited once released; each later version is one entry of `UPGRADES`,
//! applied in its own transaction. New files take the same path as old
//! ones, so every upgrade runs in every test.

use super::encode;
use rusqlite::{Connection, Transaction};

const SCHEMA: &str = include_str!("schema.sql");

type Upgrade = fn(&Transaction) -> rusqlite::Result<()>;

/// Upgrade from version `i + 1` to `i + 2`.
const UPGRADES: &[Upgrade] = &[add_resource_attributes];

/// Version 2: resource attributes become searchable like span attributes,
/// in an FTS5 index whose rowid is the resource's id; existing resources
/// are indexed from their stored bodies.
fn add_resource_attributes(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE VIRTUAL TABLE resource_attributes USING fts5(
             tokens, content = '', contentless_delete = 1, detail = none
         );",
    )?;
    let mut resources = tx.prepare("SELECT id, body FROM resources")?;
    let mut insert =
        tx.prepare("INSERT INTO resource_attributes (rowid, tokens) VALUES (?1, ?2)")?;
    let mut rows = resources.query([])?;
    while let Some(row) = rows.next()? {
        let body: Vec<u8> = row.get(1)?;
        // A body that no longer decodes stays unsearchable rather than
        // blocking the upgrade.
        if let Ok(resource) = encode::decode_resource(&body) {
            let attributes = otelite_exporter::convert::attributes_from_otlp(
                resource.resource.unwrap_or_default().attributes,
            );
            insert.execute(rusqlite::params![
                row.get::<_, i64>(0)?,
                encode::attribute_tokens(&attributes)
            ])?;
        }
    }
    Ok(())
}

pub const CURRENT_VERSION: i64 = 1 + UPGRADES.len() as i64;

/// Settings every connection needs; WAL lets readers run beside the writer
/// and, with `synchronous=NORMAL`, a commit survives a process kill.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -65536;",
    )
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "database schema version {found} is newer than this otelite ({supported}); upgrade otelite"
    )]
    TooNew { found: i64, supported: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

pub fn migrate(conn: &mut Connection) -> Result<(), MigrationError> {
    let mut version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT_VERSION {
        return Err(MigrationError::TooNew {
            found: version,
            supported: CURRENT_VERSION,
        });
    }
    if version == 0 {
        apply(conn, |tx| tx.execute_batch(SCHEMA), 1)?;
        version = 1;
    }
    for (index, upgrade) in UPGRADES.iter().enumerate().skip((version - 1) as usize) {
        apply(conn, *upgrade, index as i64 + 2)?;
    }
    Ok(())
}

fn apply(conn: &mut Connection, upgrade: Upgrade, to_version: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    upgrade(&tx)?;
    tx.pragma_update(None, "user_version", to_version)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_file_gets_current_version_and_reopens_unchanged()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.db");
        for _ in 0..2 {
            let mut conn = Connection::open(&path)?;
            configure(&conn)?;
            migrate(&mut conn)?;
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            assert_eq!(version, CURRENT_VERSION);
        }
        Ok(())
    }

    #[test]
    fn a_version_1_file_is_upgraded_and_its_resources_become_searchable()
    -> Result<(), Box<dyn std::error::Error>> {
        use otelite_exporter::model::{AnyValue, KeyValue, Resource};
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("v1.db");
        {
            // What version 1 of otelite wrote: its schema and a resource.
            let conn = Connection::open(&path)?;
            conn.execute_batch(SCHEMA)?;
            conn.pragma_update(None, "user_version", 1)?;
            let resource = Resource::new(
                vec![KeyValue::new("host.name", AnyValue::String("box-7".into()))],
                0,
                String::new(),
            );
            conn.execute(
                "INSERT INTO services (id, name) VALUES (1, 'unknown_service')",
                [],
            )?;
            conn.execute(
                "INSERT INTO resources (id, hash, service_id, body) VALUES (5, 1, 1, ?1)",
                [encode::resource_body(&resource)],
            )?;
        }
        // Readers that cannot migrate say what to do instead of failing later.
        let refused = super::super::open_read_only(&path).map(|_| ());
        assert!(
            matches!(
                refused,
                Err(super::super::StoreError::Outdated { found: 1, .. })
            ),
            "{refused:?}"
        );
        let mut conn = Connection::open(&path)?;
        migrate(&mut conn)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        assert_eq!(version, CURRENT_VERSION);
        let token = encode::attribute_token("host.name", "box-7");
        let found: i64 = conn.query_row(
            "SELECT rowid FROM resource_attributes WHERE resource_attributes MATCH ?1",
            [token],
            |r| r.get(0),
        )?;
        assert_eq!(found, 5);
        Ok(())
    }

    #[test]
    fn refuses_a_newer_schema() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)?;
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrationError::TooNew { .. })
        ));
        Ok(())
    }
}
