//! Opens a database file and brings its schema to the current version.
//! `user_version` holds the version; version 1 is `schema.sql`; each later
//! version is one entry of `UPGRADES`, applied in its own transaction.

use rusqlite::Connection;

const SCHEMA: &str = include_str!("schema.sql");

/// Upgrade from version `i + 1` to `i + 2`. Empty until the schema changes.
const UPGRADES: &[&str] = &[];

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
        apply(conn, SCHEMA, 1)?;
        version = 1;
    }
    for (index, upgrade) in UPGRADES.iter().enumerate().skip((version - 1) as usize) {
        apply(conn, upgrade, index as i64 + 2)?;
    }
    Ok(())
}

fn apply(conn: &mut Connection, sql: &str, to_version: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(sql)?;
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
