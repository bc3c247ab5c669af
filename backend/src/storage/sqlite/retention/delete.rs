//! The SQL of retention, each function one short transaction on the write
//! connection (run on the writer thread, see `SqliteStore::run_job`): delete
//! the span groups of the oldest traces with their search documents, their
//! blocks once empty, the service edges their spans completed, and their
//! summaries; drop the service edges of deleted minutes (edges stored
//! before groups recorded theirs), measure the live size, and hand freed
//! pages back to the file system.
//!
//! The unit is the trace: a trace goes when it started before the cutoff,
//! with all its spans, so the UI never shows half a trace. Every span older
//! than the cutoff goes with it (a trace starts with its oldest span); the
//! later spans of a trace that straddles the cutoff go too. Stage counts and
//! exporter series are kept: they are small and `/api/rates` over an old
//! window must keep its answer. Interned rows (services, resources, scopes)
//! are kept: the writer caches their ids, and finding orphans would scan
//! every group (there is no index on `resource_id`); the services list
//! shows only services with spans. Operations no group holds any more are
//! forgotten after each run that deleted spans.

use super::super::edges::{self, EdgeCounts};
use super::super::encode;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeSet;
use std::path::Path;

/// Spans deleted per transaction at most (one trace may take several
/// transactions): small enough that ingest waits little behind one.
pub const BATCH_SPANS: usize = 2_000;
/// Pages handed back per `incremental_vacuum` transaction (4 MiB at 4 KiB).
pub const VACUUM_PAGES: i64 = 1_024;
/// Traces looked at per batch: their spans usually fill `BATCH_SPANS`.
const TRACES_PER_BATCH: i64 = 256;

/// What one batch deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deleted {
    pub spans: u64,
    /// Traces whose last span went, and their summary row with it.
    pub traces: u64,
}

/// Deletes up to about `max_spans` spans of the oldest traces that started
/// before `before_ns`, in one transaction: their span groups with their
/// search documents, the blocks left without a group, and the summaries of
/// the traces left without a span. A group goes whole, so a batch may pass
/// `max_spans` by one group.
pub fn delete_batch(
    conn: &mut Connection,
    before_ns: i64,
    max_spans: usize,
) -> rusqlite::Result<Deleted> {
    // IMMEDIATE: take the write lock first, waiting (busy timeout) while the
    // checkpoint thread holds it. A deferred transaction would begin with the
    // SELECT as a reader, and a reader that then needs the write lock gets
    // SQLITE_BUSY at once, without waiting: seen under load, as "database is
    // locked" while a RESTART checkpoint ran.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut deleted = Deleted::default();
    {
        let oldest: Vec<i64> = tx
            .prepare_cached("SELECT id FROM traces WHERE start_ns < ?1 ORDER BY start_ns LIMIT ?2")?
            .query_map(params![before_ns, TRACES_PER_BATCH], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut groups_of = tx.prepare_cached(
            "SELECT id, span_count, block_id, edges FROM span_groups WHERE trace_ref = ?1",
        )?;
        let mut group = tx.prepare_cached("DELETE FROM span_groups WHERE id = ?1")?;
        // Contentless FTS5 with `contentless_delete = 1` deletes by rowid,
        // without the original tokens.
        let mut terms = tx.prepare_cached("DELETE FROM group_terms WHERE rowid = ?1")?;
        let mut summary = tx.prepare_cached("DELETE FROM traces WHERE id = ?1")?;
        let mut waiting = tx.prepare_cached("DELETE FROM edge_waiting WHERE trace_ref = ?1")?;
        let mut blocks = BTreeSet::new();
        let mut deleted_edges = EdgeCounts::default();
        'traces: for trace_ref in oldest {
            let groups: Vec<(i64, i64, i64, Option<Vec<u8>>)> = groups_of
                .query_map([trace_ref], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            for (id, spans, block_id, edges) in groups {
                if deleted.spans as usize >= max_spans {
                    break 'traces;
                }
                group.execute([id])?;
                terms.execute([id])?;
                blocks.insert(block_id);
                deleted.spans += spans.max(0) as u64;
                if let Some(edges) = edges
                    && edges::unpack_into(&edges, &mut deleted_edges).is_none()
                {
                    tracing::warn!(group = id, "a span group's edges are malformed");
                }
            }
            summary.execute([trace_ref])?;
            waiting.execute([trace_ref])?;
            deleted.traces += 1;
        }
        edges::subtract(&tx, &deleted_edges)?;
        let mut block = tx.prepare_cached(
            "DELETE FROM blocks WHERE id = ?1
             AND NOT EXISTS (SELECT 1 FROM span_groups WHERE block_id = ?1)",
        )?;
        for block_id in blocks {
            block.execute([block_id])?;
        }
    }
    tx.commit()?;
    Ok(deleted)
}

/// Deletes the service edges of the minutes wholly before `before_ns`.
pub fn delete_edges(conn: &Connection, before_ns: i64) -> rusqlite::Result<usize> {
    let minute = before_ns.div_euclid(60_000_000_000) * 60;
    conn.prepare_cached("DELETE FROM service_edges WHERE minute < ?1")?
        .execute([minute])
}

/// Forgets the operations (service, name, kind) that no stored span group
/// holds any more, so the operation lists show only what can be found;
/// returns how many. Runs after a retention run that deleted spans. A
/// group's search document lists its names and kinds, not which name has
/// which kind, so a name kept under one kind may stay listed under another
/// that its group also holds.
pub fn forget_operations(conn: &Connection) -> rusqlite::Result<usize> {
    let operations: Vec<(i64, String, String, i32)> = conn
        .prepare_cached(
            "SELECT o.service_id, v.name, o.name, o.kind FROM operations o
             JOIN services v ON v.id = o.service_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut held =
        conn.prepare_cached("SELECT 1 FROM group_terms WHERE group_terms MATCH ?1 LIMIT 1")?;
    let mut forget = conn.prepare_cached(
        "DELETE FROM operations WHERE service_id = ?1 AND name = ?2 AND kind = ?3",
    )?;
    let mut forgotten = 0;
    for (service_id, service, name, kind) in operations {
        let terms = format!(
            "{} AND {} AND {}",
            encode::service_token(&service),
            encode::operation_token(&name),
            encode::kind_token(kind)
        );
        if !held.exists([terms])? {
            forgotten += forget.execute(params![service_id, name, kind])?;
        }
    }
    Ok(forgotten)
}

/// The start of the oldest stored trace, if any.
pub fn oldest_start(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT MIN(start_ns) FROM traces", [], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

/// Bytes of the database's pages in use; free pages do not count, since
/// vacuum hands them back.
pub fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let used_pages = pragma("page_count")? - pragma("freelist_count")?;
    Ok(used_pages.max(0) as u64 * pragma("page_size")?.max(0) as u64)
}

/// The WAL file's length on disk.
pub fn wal_bytes(db: &Path) -> u64 {
    std::fs::metadata(super::super::wal_path(db)).map_or(0, |m| m.len())
}

/// Hands up to `VACUUM_PAGES` free pages back to the file system (the file
/// shrinks at the next checkpoint); returns the free pages left.
pub fn vacuum_step(conn: &Connection) -> rusqlite::Result<i64> {
    // The pragma frees one page per step: step it to the end.
    let mut vacuum = conn.prepare_cached(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
    let mut pages = vacuum.query([])?;
    while pages.next()?.is_some() {}
    conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))
}

/// Copies the WAL into the database and truncates it to zero bytes. Deleting
/// and vacuuming write many pages, and a WAL keeps the length it reached,
/// which would count against `--max-db-size` at every later run. Returns
/// false when readers kept it from completing (it is then retried next run).
pub fn truncate_wal(conn: &Connection) -> rusqlite::Result<bool> {
    // Columns: busy flag, WAL frames, frames checkpointed.
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}
