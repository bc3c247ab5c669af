//! Opens a database file and brings its schema to the current version.
//! `user_version` holds the version; version 1 is `schema_v1.sql`, never
//! edited once released; each later version is one entry of `UPGRADES`,
//! applied in its own transaction (or, for the few statements SQLite
//! refuses inside one, such as `VACUUM`, alone and idempotently). New files
//! take the same path as old ones, so every upgrade runs in every test.

use super::documents::{self, Documents};
use super::encode::{self, SpanRow};
use super::groups::{self, Edges};
use super::{read, writer};
use crate::analyze;
use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use otelite_model::TraceId;
use prost::Message;
use rusqlite::{Connection, Transaction};

const SCHEMA: &str = include_str!("schema_v1.sql");

type Upgrade = fn(&Transaction) -> Result<(), MigrationError>;

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
    Step::InTransaction(span_groups),
    Step::InTransaction(name_the_tokenizer),
    Step::InTransaction(merge_wider),
    Step::InTransaction(edges_from_the_store),
    Step::InTransaction(losses_with_reasons),
    Step::InTransaction(orphans_by_arrival),
    Step::InTransaction(compact_search_tokens),
];

/// `auto_vacuum` mode 2: freed pages can be handed back to the file system
/// by `PRAGMA incremental_vacuum`, which retention runs after deleting.
const AUTO_VACUUM_INCREMENTAL: i64 = 2;

/// Version 2: resource attributes become searchable like span attributes,
/// in an FTS5 index whose rowid is the resource's id; existing resources
/// are indexed from their stored bodies.
fn add_resource_attributes(tx: &Transaction) -> Result<(), MigrationError> {
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
            let attributes = otelite_model::otlp::attributes_from_otlp(
                resource.resource.unwrap_or_default().attributes,
            );
            insert.execute(rusqlite::params![
                row.get::<_, i64>(0)?,
                encode::attribute_tokens(&attributes).to_text()
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

/// Version 4: span bodies move into compressed blocks, indexed by span
/// group (trace, resource, scope) instead of by span; see `groups`. The
/// stored spans are rewritten through the same code ingest uses, then the
/// per-span tables go. Takes about as long as ingesting them again.
fn span_groups(tx: &Transaction) -> Result<(), MigrationError> {
    tx.execute_batch(include_str!("schema_v4.sql"))?;
    let spans: i64 = tx.query_row("SELECT count(*) FROM spans", [], |r| r.get(0))?;
    if spans > 0 {
        tracing::info!(spans, "moving stored spans into compressed blocks, once");
    }
    let mut state = writer::WriterState::new();
    let mut last_id = 0_i64;
    loop {
        let mut parts: Vec<((i64, i64), Vec<PbSpan>)> = Vec::new();
        let mut read = 0;
        let mut skipped = 0;
        {
            let mut statement = tx.prepare_cached(
                "SELECT id, resource_id, scope_id, body FROM spans WHERE id > ?1 ORDER BY id LIMIT 2000",
            )?;
            let mut rows = statement.query([last_id])?;
            while let Some(row) = rows.next()? {
                read += 1;
                last_id = row.get(0)?;
                let key = (row.get(1)?, row.get(2)?);
                let Ok(span) = PbSpan::decode(&row.get::<_, Vec<u8>>(3)?[..]) else {
                    skipped += 1;
                    continue;
                };
                match parts.last_mut() {
                    Some((last, spans)) if *last == key => spans.push(span),
                    _ => parts.push((key, vec![span])),
                }
            }
        }
        if read == 0 {
            break;
        }
        // One undecodable span must not stop the upgrade of the others.
        let spans = match read::assemble(tx, parts) {
            Ok(spans) => spans,
            Err(error) => {
                tracing::warn!(%error, "skipping stored spans that no longer convert");
                continue;
            }
        };
        if skipped > 0 {
            tracing::warn!(skipped, "skipping stored spans that no longer decode");
        }
        let rows: Vec<SpanRow> = analyze::analyze(spans)
            .into_iter()
            .map(SpanRow::new)
            .collect();
        groups::store_rows(tx, &mut state, &rows, &Documents::new(&rows), Edges::Skip)
            .and_then(|_| groups::insert_pending(tx, &mut state))
            .map_err(|e| MigrationError::Convert(e.to_string()))?;
    }
    tx.execute_batch(
        "DROP TABLE spans;
         DROP TABLE span_attributes;
         DROP TABLE resource_attributes;
         DROP TABLE traces_v3;",
    )?;
    Ok(())
}

/// Version 5: `group_terms` names the tokenizer it has always used,
/// `unicode61` (FTS5's default), because FTS5 looks a tokenizer up by name
/// only when the table names one, and otelite's writer puts a faster
/// equivalent under that name (see `tokenizer`). The tokens, and so the
/// index, stay as they are: only the table's declaration changes, edited
/// in place the way SQLite's own `ALTER TABLE` does it, so that a large
/// file is upgraded at once.
fn name_the_tokenizer(tx: &Transaction) -> Result<(), MigrationError> {
    let schema_version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.execute_batch("PRAGMA writable_schema = ON")?;
    let changed = tx.execute(
        "UPDATE sqlite_schema
         SET sql = replace(sql, 'detail = none', 'detail = none, tokenize = ''unicode61''')
         WHERE type = 'table' AND name = 'group_terms' AND instr(sql, 'tokenize') = 0",
        [],
    )?;
    // The new schema cookie makes every connection read the declaration again.
    tx.execute_batch(&format!(
        "PRAGMA schema_version = {}; PRAGMA writable_schema = OFF;",
        schema_version + 1
    ))?;
    if changed != 1 {
        return Err(MigrationError::UnexpectedSchema(
            "group_terms is not declared as version 4 declared it".into(),
        ));
    }
    // Read the new declaration now, with a statement that does not touch
    // FTS5: if the first statement to see the new cookie is one that
    // opens `group_terms`, SQLite cannot reset the schema while FTS5 is
    // connecting and retries the statement 50 times before it succeeds.
    tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

/// FTS5 merges a level's segments once this many have piled up.
pub const GROUP_TERMS_AUTOMERGE: i64 = 16;

/// Version 6: FTS5 merges `group_terms`' segments 16 at a time instead of
/// 4. Every commit adds a segment, and merging is the part of the writer's
/// index work that grows with the file, so wider merges spare the writer
/// more as the file grows. Queries may read up to 16 segments per
/// level instead of 4; at 10 M spans their latency did not change (see
/// BENCHMARKS.md). FTS5 keeps the setting in the file, so existing files
/// get it too.
fn merge_wider(tx: &Transaction) -> Result<(), MigrationError> {
    tx.execute(
        "INSERT INTO group_terms (group_terms, rank) VALUES ('automerge', ?1)",
        [GROUP_TERMS_AUTOMERGE],
    )?;
    Ok(())
}

/// Version 7: service edges are found from the stored spans instead of
/// the writer's memory (see `edges`): children that arrive before their
/// parent wait in `edge_waiting`, and each group records the edges its
/// spans completed, for retention to take away. Groups stored before keep
/// no edges (retention drops those by minute, as before).
fn edges_from_the_store(tx: &Transaction) -> Result<(), MigrationError> {
    tx.execute_batch(
        "ALTER TABLE span_groups ADD COLUMN edges BLOB;
         CREATE TABLE edge_waiting (
             trace_ref        INTEGER NOT NULL, -- traces.id
             parent_span_id   BLOB NOT NULL,
             child_service_id INTEGER NOT NULL,
             child_start_ns   INTEGER NOT NULL,
             child_error      INTEGER NOT NULL
         );
         CREATE INDEX edge_waiting_by_trace ON edge_waiting(trace_ref);",
    )?;
    Ok(())
}

/// Version 8: spans lost at each stage, per reason (`error.type` of the
/// SDKs' counters, or the backend's cause), beside the stage counts.
/// Older files have no reasons to carry over.
fn losses_with_reasons(tx: &Transaction) -> Result<(), MigrationError> {
    tx.execute_batch(
        "CREATE TABLE stage_losses (
             service_id INTEGER NOT NULL,
             stage      TEXT NOT NULL,
             reason     TEXT NOT NULL,
             minute     INTEGER NOT NULL, -- unix seconds, a multiple of 60
             n          INTEGER NOT NULL,
             PRIMARY KEY (service_id, stage, reason, minute)
         ) WITHOUT ROWID;",
    )?;
    Ok(())
}

/// Version 9: a waiting child records when it arrived, so that children
/// whose parent has not come a grace period later count as orphans in the
/// minute they arrived (see `orphans`). Rows of older files never knew:
/// their span's start stands in, which is no later than its arrival.
fn orphans_by_arrival(tx: &Transaction) -> Result<(), MigrationError> {
    tx.execute_batch(
        "ALTER TABLE edge_waiting ADD COLUMN arrived_ns INTEGER NOT NULL DEFAULT 0;
         UPDATE edge_waiting SET arrived_ns = child_start_ns;",
    )?;
    Ok(())
}

/// Version 10: search tokens in base 32 instead of hex, and one token per
/// string value instead of an exact and a prefix token (see
/// `encode::push_string_token`): a value that never repeats, an id, costs
/// the index one short term instead of two long ones. The index is built
/// again from the stored spans, a block at a time; about as long as
/// indexing them at ingest.
fn compact_search_tokens(tx: &Transaction) -> Result<(), MigrationError> {
    tx.execute_batch(&format!(
        "DROP TABLE group_terms;
         CREATE VIRTUAL TABLE group_terms USING fts5(
             tokens, content = '', contentless_delete = 1, detail = none, tokenize = 'unicode61'
         );
         INSERT INTO group_terms (group_terms, rank) VALUES ('automerge', {GROUP_TERMS_AUTOMERGE});"
    ))?;
    let groups: i64 = tx.query_row("SELECT count(*) FROM span_groups", [], |r| r.get(0))?;
    if groups > 0 {
        tracing::info!(
            groups,
            "rebuilding the search index in its compact form, once"
        );
    }
    let mut select = tx.prepare(&format!(
        "SELECT {}, span_ids, parent_ids, (SELECT trace_id FROM traces WHERE id = trace_ref)
         FROM span_groups ORDER BY block_id, id",
        groups::GROUP_COLUMNS
    ))?;
    let mut insert = tx.prepare("INSERT INTO group_terms (rowid, tokens) VALUES (?1, ?2)")?;
    let mut rows = select.query([])?;
    let mut blocks = groups::Blocks::default();
    let mut block_id = None;
    let mut skipped = 0_u64;
    while let Some(row) = rows.next()? {
        let group_id: i64 = row.get(0)?;
        let group = groups::group_ref(row)?;
        if block_id != Some(group.block_id) {
            // One block in memory at a time.
            blocks = groups::Blocks::default();
            block_id = Some(group.block_id);
        }
        let ids = groups::GroupIds {
            span_ids: row.get(7)?,
            parent_ids: row.get(8)?,
        };
        let trace_id: Vec<u8> = row.get(9)?;
        let trace_id = TraceId(trace_id.try_into().unwrap_or_default());
        // A group that no longer reads back keeps no document, as one that
        // failed to convert in version 4; the others are indexed.
        let spans = match blocks
            .spans_with_ids(tx, &group, &trace_id, &ids)
            .and_then(|spans| {
                read::assemble(tx, vec![((group.resource_id, group.scope_id), spans)])
            }) {
            Ok(spans) if !spans.is_empty() => spans,
            _ => {
                skipped += 1;
                continue;
            }
        };
        let resource = &spans[0].resource;
        let resource_tokens = encode::attribute_tokens(&resource.attributes);
        let span_tokens: Vec<_> = spans.iter().map(encode::span_tokens).collect();
        let document = documents::document_of_tokens(
            &resource.service_name,
            Some(&resource_tokens),
            span_tokens.iter(),
        );
        insert.execute(rusqlite::params![group_id, document])?;
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "span groups that no longer read back are not searchable"
        );
    }
    Ok(())
}

pub const CURRENT_VERSION: i64 = 1 + UPGRADES.len() as i64;

/// What a file holds before otelite changes anything in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contents {
    /// No tables: a new file, which otelite may make its own.
    Empty,
    /// An otelite database of this schema version.
    Otelite(i64),
    /// Another program's database, or not SQLite at all: leave it alone.
    Foreign,
}

/// Reads what `conn`'s file holds, without writing to it. A file SQLite
/// cannot read at all (a damaged one, a directory) is an error, which the
/// caller reports with the file's name.
pub fn contents(conn: &Connection) -> rusqlite::Result<Contents> {
    let read = || -> rusqlite::Result<(i64, i64, bool)> {
        let version = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
        let (tables, traces) = conn.query_row(
            "SELECT count(*), count(*) FILTER (WHERE name = 'traces') FROM sqlite_schema
             WHERE type = 'table'",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? == 1)),
        )?;
        Ok((version, tables, traces))
    };
    match read() {
        Ok((0, 0, _)) => Ok(Contents::Empty),
        Ok((version, _, true)) if version >= 1 => Ok(Contents::Otelite(version)),
        Ok(_) => Ok(Contents::Foreign),
        // Not SQLite at all: someone else's file.
        Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
            Ok(Contents::Foreign)
        }
        Err(error) => Err(error),
    }
}

/// Settings every connection needs; WAL lets readers run beside the writer
/// and, with `synchronous=NORMAL`, a commit survives a process kill.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    super::plans::keep_plans(conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if contents(conn)? == Contents::Empty {
        // Before WAL: switching to WAL writes the file's header, and after
        // that only a full VACUUM (version 3's) could turn this on.
        conn.pragma_update(None, "auto_vacuum", AUTO_VACUUM_INCREMENTAL)?;
    }
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
    #[error("cannot convert the stored spans: {0}")]
    Convert(String),
    #[error("cannot upgrade the schema: {0}")]
    UnexpectedSchema(String),
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
        // `configure` has set auto_vacuum, which saves new files the
        // VACUUM of version 3.
        apply(
            conn,
            Step::InTransaction(|tx| Ok(tx.execute_batch(SCHEMA)?)),
            1,
        )?;
        version = 1;
    }
    for (index, upgrade) in UPGRADES.iter().enumerate().skip((version - 1) as usize) {
        apply(conn, *upgrade, index as i64 + 2)?;
    }
    Ok(())
}

fn apply(conn: &mut Connection, step: Step, to_version: i64) -> Result<(), MigrationError> {
    match step {
        Step::InTransaction(upgrade) => {
            let tx = conn.transaction()?;
            upgrade(&tx)?;
            tx.pragma_update(None, "user_version", to_version)?;
            Ok(tx.commit()?)
        }
        Step::Alone(upgrade) => {
            upgrade(conn)?;
            Ok(conn.pragma_update(None, "user_version", to_version)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otelite_model::Span;

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
            let automerge: i64 = conn.query_row(
                "SELECT v FROM group_terms_config WHERE k = 'automerge'",
                [],
                |r| r.get(0),
            )?;
            assert_eq!(automerge, GROUP_TERMS_AUTOMERGE);
        }
        Ok(())
    }

    /// Spans as versions 1 to 3 stored them: one row per span with its
    /// OTLP body, and one trace row per trace.
    fn write_old_spans(conn: &Connection, spans: &[Span]) -> rusqlite::Result<()> {
        let resource = &spans[0].resource;
        conn.execute(
            "INSERT OR IGNORE INTO services (id, name) VALUES (1, ?1)",
            [&resource.service_name],
        )?;
        conn.execute(
            "INSERT OR IGNORE INTO resources (id, hash, service_id, body) VALUES (5, 1, 1, ?1)",
            [encode::resource_body(resource)],
        )?;
        conn.execute(
            "INSERT OR IGNORE INTO scopes (id, hash, body) VALUES (1, 1, ?1)",
            [encode::scope_body(&spans[0].scope)],
        )?;
        for span in spans {
            conn.execute(
                "INSERT INTO spans (trace_id, span_id, parent_span_id, service_id, resource_id,
                     scope_id, name, kind, start_ns, duration_ns, status_code, body)
                 VALUES (?1, ?2, ?3, 1, 5, 1, ?4, 1, ?5, ?6, ?7, ?8)",
                rusqlite::params![
                    &span.trace_id.0[..],
                    &span.span_id.0[..],
                    span.parent_span_id.map(|p| p.0.to_vec()),
                    span.name,
                    span.start_time_unix_nano as i64,
                    span.duration_nanos() as i64,
                    span.status.code.as_i32(),
                    encode::span_body(span),
                ],
            )?;
            conn.execute(
                "INSERT OR IGNORE INTO traces (trace_id, start_ns, end_ns, span_count, error_count)
                 VALUES (?1, 0, 0, 0, 0)",
                [&span.trace_id.0[..]],
            )?;
        }
        Ok(())
    }

    fn old_file(path: &std::path::Path, version: i64, traces: u8) -> TestResult<Vec<Span>> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        let tx = conn.transaction()?;
        if version >= 2 {
            add_resource_attributes(&tx)?;
        }
        let spans: Vec<Span> = (1..=traces)
            .flat_map(|trace| crate::storage::sqlite::tests::spans(trace, 10))
            .collect();
        write_old_spans(&tx, &spans)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        Ok(spans)
    }

    type TestResult<T> = Result<T, Box<dyn std::error::Error>>;

    #[test]
    fn a_version_2_file_is_vacuumed_into_one_that_can_shrink() -> TestResult<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("v2.db");
        // What version 2 of otelite wrote: no auto_vacuum, some spans.
        let written = old_file(&path, 2, 200)?;
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        let kept: i64 =
            conn.query_row("SELECT sum(span_count) FROM span_groups", [], |r| r.get(0))?;
        assert_eq!(
            (version, mode, kept),
            (
                CURRENT_VERSION,
                AUTO_VACUUM_INCREMENTAL,
                written.len() as i64
            )
        );
        // And it now shrinks: delete, vacuum, checkpoint.
        let pages =
            |conn: &Connection| conn.query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0));
        let full = pages(&conn)?;
        conn.execute_batch(
            "DELETE FROM blocks; DELETE FROM span_groups; DELETE FROM group_terms;",
        )?;
        // One page per step: step it to the end.
        let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut pages_freed = vacuum.query([])?;
        while pages_freed.next()?.is_some() {}
        drop(pages_freed);
        drop(vacuum);
        assert!(
            pages(&conn)? * 2 < full,
            "{} of {full} pages left",
            pages(&conn)?
        );
        Ok(())
    }

    #[test]
    fn a_version_3_file_keeps_every_span_readable_and_searchable() -> TestResult<()> {
        use crate::storage::TraceQuery;
        use crate::storage::sqlite::{search, trace};
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("v3.db");
        let written = old_file(&path, 3, 30)?;
        // Readers that cannot migrate say what to do instead of failing later.
        let refused = super::super::open_read_only(&path).map(|_| ());
        assert!(
            matches!(
                refused,
                Err(super::super::StoreError::Outdated { found: 3, .. })
            ),
            "{refused:?}"
        );
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let old_tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('spans', 'span_attributes', 'traces_v3')",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(old_tables, 0);
        for expected in written.chunks(10) {
            let read = trace(&conn, &expected[0].trace_id)?.ok_or("trace lost")?;
            assert_eq!(read, expected);
        }
        // Summaries are rebuilt from the spans, not kept from the old rows.
        let by_attribute = search(
            &conn,
            &TraceQuery {
                attributes: vec![("user.id".into(), "3".into())],
                limit: 100,
                ..TraceQuery::default()
            },
        )?;
        assert_eq!(by_attribute.len(), 30);
        assert!(by_attribute.iter().all(|t| t.span_count == 10
            && t.error_count == 1
            && t.root_name.as_deref() == Some("op1")));
        // Resource attributes are searchable too.
        let by_resource = search(
            &conn,
            &TraceQuery {
                attributes: vec![("service.name".into(), "shop".into())],
                limit: 100,
                ..TraceQuery::default()
            },
        )?;
        assert_eq!(by_resource.len(), 30);
        Ok(())
    }

    /// A file as version 4 left it, holding `traces` traces of 10 spans.
    fn version_4_file(
        path: &std::path::Path,
        traces: std::ops::RangeInclusive<u8>,
    ) -> TestResult<()> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        apply(
            &mut conn,
            Step::InTransaction(|tx| Ok(tx.execute_batch(SCHEMA)?)),
            1,
        )?;
        for (index, upgrade) in UPGRADES[..3].iter().enumerate() {
            apply(&mut conn, *upgrade, index as i64 + 2)?;
        }
        store_traces(&mut conn, traces)
    }

    fn store_traces(conn: &mut Connection, traces: std::ops::RangeInclusive<u8>) -> TestResult<()> {
        let spans: Vec<Span> = traces
            .flat_map(|trace| crate::storage::sqlite::tests::spans(trace, 10))
            .collect();
        let rows = crate::test_fixtures::rows(spans);
        let tx = conn.transaction()?;
        let mut state = writer::WriterState::new();
        groups::store_rows(&tx, &mut state, &rows, &Documents::new(&rows), Edges::Skip)
            .and_then(|_| groups::insert_pending(&tx, &mut state))
            .map_err(|e| e.to_string())?;
        tx.commit()?;
        Ok(())
    }

    #[test]
    fn a_version_4_file_names_its_tokenizer_and_its_index_still_answers() -> TestResult<()> {
        use crate::storage::TraceQuery;
        use crate::storage::sqlite::search;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("v4.db");
        version_4_file(&path, 1..=20)?;
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        super::super::tokenizer::register(&conn)?;
        migrate(&mut conn)?;
        let declared: String = conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'group_terms'",
            [],
            |r| r.get(0),
        )?;
        assert!(declared.contains("tokenize = 'unicode61'"), "{declared}");
        // Spans indexed after the upgrade, through otelite's tokenizer.
        store_traces(&mut conn, 21..=40)?;
        let by_user = TraceQuery {
            attributes: vec![("user.id".into(), "3".into())],
            limit: 100,
            ..TraceQuery::default()
        };
        assert_eq!(search(&conn, &by_user)?.len(), 40);
        // A connection with only SQLite's own tokenizer reads the same index.
        let plain = Connection::open(&path)?;
        assert_eq!(search(&plain, &by_user)?.len(), 40);
        let check: String = plain.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(check, "ok");
        plain.execute(
            "INSERT INTO group_terms (group_terms) VALUES ('integrity-check')",
            [],
        )?;
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
