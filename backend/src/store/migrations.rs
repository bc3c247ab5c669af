//! Opens a database file and brings its schema to the current version.
//! `user_version` holds the version; version 1 is `schema.sql`, never
//! edited once released; each later version is one entry of `UPGRADES`,
//! applied in its own transaction (or, for the few statements SQLite
//! refuses inside one, such as `VACUUM`, alone and idempotently). New files
//! take the same path as old ones, so every upgrade runs in every test.

use super::encode;
use rusqlite::{Connection, Transaction};

const SCHEMA: &str = include_str!("schema.sql");

type Upgrade = fn(&Transaction) -> rusqlite::Result<()>;

/// One numbered upgrade.
#[derive(Clone, Copy)]
enum Step {
    InTransaction(Upgrade),
    /// Must run outside any transaction; safe to run again if the process
    /// stops before `user_version` records it.
    Alone(fn(&Connection) -> rusqlite::Result<()>),
}

/// Upgrade from version `i + 1` to `i + 2`.
const UPGRADES: &[Step] = &[
    Step::InTransaction(add_resource_attributes),
    Step::Alone(incremental_vacuum),
];

/// `auto_vacuum` mode 2: freed pages can be handed back to the file system
/// by `PRAGMA incremental_vacuum`, which retention runs after deleting.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

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

/// Version 3: the file can shrink. New files get `auto_vacuum` at creation
/// (see `migrate`); an older file needs one full `VACUUM` to switch it on,
/// which rewrites the file (needing as much free disk again) and so can
/// take minutes on a large one: it is logged.
fn incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode == AUTO_VACUUM_INCREMENTAL {
        return Ok(());
    }
    tracing::info!("switching the database to incremental vacuum: one full VACUUM, once");
    conn.pragma_update(None, "auto_vacuum", AUTO_VACUUM_INCREMENTAL)?;
    conn.execute_batch("VACUUM")
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
        // Only possible before the first table exists; saves new files the
        // VACUUM of version 3.
        conn.pragma_update(None, "auto_vacuum", AUTO_VACUUM_INCREMENTAL)?;
        apply(conn, Step::InTransaction(|tx| tx.execute_batch(SCHEMA)), 1)?;
        version = 1;
    }
    for (index, upgrade) in UPGRADES.iter().enumerate().skip((version - 1) as usize) {
        apply(conn, *upgrade, index as i64 + 2)?;
    }
    Ok(())
}

fn apply(conn: &mut Connection, step: Step, to_version: i64) -> rusqlite::Result<()> {
    match step {
        Step::InTransaction(upgrade) => {
            let tx = conn.transaction()?;
            upgrade(&tx)?;
            tx.pragma_update(None, "user_version", to_version)?;
            tx.commit()
        }
        Step::Alone(upgrade) => {
            upgrade(conn)?;
            conn.pragma_update(None, "user_version", to_version)
        }
    }
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
            let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
            assert_eq!(
                mode, AUTO_VACUUM_INCREMENTAL,
                "new files can shrink from the start"
            );
        }
        Ok(())
    }

    #[test]
    fn a_version_2_file_is_vacuumed_into_one_that_can_shrink()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("v2.db");
        let spans = 2_000;
        {
            // What version 2 of otelite wrote: no auto_vacuum, some spans.
            let mut conn = Connection::open(&path)?;
            configure(&conn)?;
            conn.execute_batch(SCHEMA)?;
            let tx = conn.transaction()?;
            add_resource_attributes(&tx)?;
            tx.execute(
                "INSERT INTO spans (trace_id, span_id, service_id, resource_id, scope_id, name,
                     kind, start_ns, duration_ns, status_code, body)
                 WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < ?1)
                 SELECT randomblob(16), randomblob(8), 1, 1, 1, 'op', 1, value, 1, 0, zeroblob(500)
                 FROM n",
                [spans],
            )?;
            tx.pragma_update(None, "user_version", 2)?;
            tx.commit()?;
        }
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        let kept: i64 = conn.query_row("SELECT count(*) FROM spans", [], |r| r.get(0))?;
        assert_eq!(
            (version, mode, kept),
            (CURRENT_VERSION, AUTO_VACUUM_INCREMENTAL, spans)
        );
        // And it now shrinks: delete, vacuum, checkpoint.
        let pages =
            |conn: &Connection| conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0));
        let full = pages(&conn)?;
        conn.execute("DELETE FROM spans", [])?;
        // One page per step: step it to the end.
        let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut pages_freed = vacuum.query([])?;
        while pages_freed.next()?.is_some() {}
        drop(pages_freed);
        drop(vacuum);
        assert!(
            pages(&conn)? * 4 < full,
            "{} of {full} pages left",
            pages(&conn)?
        );
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
