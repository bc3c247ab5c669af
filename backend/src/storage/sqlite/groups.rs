//! Storing span rows: the spans of a write become span groups (one per
//! trace, resource and scope) in compressed blocks (see `block`). A group's
//! row holds what search filters on before reading any span (service, time
//! range, longest duration, errors) and the span and parent ids that make
//! retries idempotent and count orphans; its search tokens (operations,
//! kinds, span and resource attributes) go to one FTS5 document. Indexing
//! groups instead of spans is what keeps ingest cheap and the file small:
//! a trace of ten spans over three services is three index entries.

use super::StoreError;
use super::bare;
use super::block::{self, BlockBuilder, Extent};
use super::documents::{self, Documents};
use super::edges::{self, EdgeCounts, StoredServices, StoredSpan};
use super::encode::SpanRow;
use super::repeats::{self, Original, Repeat, Repeats};
use super::writer::{BatchIds, WriterState, clamp};
use crate::analyze::{self, SpanFacts, TraceDelta};
use otelite_model::{SpanId, TraceId};
use rusqlite::{OptionalExtension, Transaction, params};
// foldhash: the ingest path hashes trace and span ids per span (see Cargo.toml).
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::hash_map::Entry;

/// What storing a batch's rows did.
pub struct RowsStored<'a> {
    /// The spans newly stored, in batch order.
    pub inserted: Vec<&'a SpanFacts>,
    /// Spans already stored (a retry), per service.
    pub duplicates_per_service: HashMap<&'a str, u64>,
    /// Spans not stored because another span with their ids was (see `repeats`).
    pub conflicts: u64,
    /// The same, per service.
    pub conflicts_per_service: HashMap<&'a str, u64>,
    /// The service edges the new spans complete (see `edges`).
    pub edges: EdgeCounts,
}

/// Whether a write finds service edges: the version 4 upgrade rewrites
/// spans whose edges were counted when they first came, into a schema that
/// has no place for edges yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edges {
    /// Spans that arrived at `received_ns` (unix ns): a child waiting for
    /// its parent records it (see `edges`).
    Find {
        received_ns: u64,
    },
    Skip,
}

/// A group's spans all start within one such slice of time (an hour), so
/// that a group's first start is at most this much before any of its
/// spans' starts: time-bounded search can then use the start index.
pub const GROUP_SLICE_NS: u64 = 3_600_000_000_000;

/// Rows of one (trace, resource, scope, time slice), in batch order.
struct Group<'a> {
    trace_id: TraceId,
    resource_id: i64,
    scope_id: i64,
    rows: Vec<&'a SpanRow>,
    /// The batch's prepared group holding every row so far, if one does.
    prepared: Option<u32>,
    /// The edges its spans complete.
    edges: EdgeCounts,
}

/// A group placed in the block being built, waiting for the block's id.
struct Placed<'a> {
    group: Group<'a>,
    extent: Extent,
}

/// Stores `rows` (spans already stored are skipped) with their traces'
/// summaries, in the caller's transaction; `insert_pending` must
/// follow before it commits. `documents` are the rows' search documents
/// (see `documents`).
pub fn store_rows<'a>(
    tx: &Transaction,
    state: &mut WriterState,
    rows: &'a [SpanRow],
    documents: &'a Documents,
    find_edges: Edges,
) -> Result<RowsStored<'a>, StoreError> {
    let Unstored {
        fresh,
        repeats,
        stored,
    } = skip_stored(tx, rows)?;
    let mut ids = BatchIds::default();
    let Repeats {
        duplicates_per_service,
        conflicts,
        conflicts_per_service,
    } = repeats::classify(tx, state, &mut ids, rows, &repeats)?;
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut index: HashMap<(TraceId, i64, i64, u64), usize> = HashMap::new();
    // The group of each fresh row, in order.
    let mut group_of: Vec<usize> = Vec::with_capacity(fresh.len());
    for &at_row in &fresh {
        let row = &rows[at_row];
        let prepared = documents.group_of(at_row);
        let resource_id = ids.resource(tx, state, &row.facts.resource)?;
        let scope_id = ids.scope(tx, state, &row.scope)?;
        let slice = row.facts.start_ns / GROUP_SLICE_NS;
        let key = (row.facts.trace_id, resource_id, scope_id, slice);
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(Group {
                trace_id: row.facts.trace_id,
                resource_id,
                scope_id,
                rows: Vec::new(),
                prepared,
                edges: EdgeCounts::new(),
            });
            groups.len() - 1
        });
        group_of.push(at);
        let group = &mut groups[at];
        if group.prepared != prepared {
            group.prepared = None;
        }
        group.rows.push(row);
    }
    let fresh: Vec<&'a SpanRow> = fresh.into_iter().map(|at| &rows[at]).collect();
    let inserted: Vec<&'a SpanFacts> = fresh.iter().map(|row| &row.facts).collect();
    let mut trace_refs: HashMap<TraceId, i64> = HashMap::new();
    for (trace_id, delta) in analyze::summarize(inserted.iter().copied()) {
        trace_refs.insert(trace_id, upsert_trace(tx, &trace_id, &delta)?);
    }
    add_operations(tx, state, &fresh)?;
    let mut all_edges = EdgeCounts::new();
    if let Edges::Find { received_ns } = find_edges {
        let completed = edges::resolve(tx, state, &fresh, &stored, &trace_refs, received_ns)?;
        for edge in &completed {
            let calls = groups[group_of[edge.row]]
                .edges
                .entry(edge.key)
                .or_default();
            calls.calls += 1;
            calls.errors += u64::from(edge.is_error);
        }
        all_edges = edges::count(&completed);
    }
    write_blocks(tx, state, groups, &trace_refs, documents, find_edges)?;
    Ok(RowsStored {
        inserted,
        duplicates_per_service,
        conflicts,
        conflicts_per_service,
        edges: all_edges,
    })
}

/// What `skip_stored` found.
struct Unstored {
    /// The rows not stored yet, by index.
    fresh: Vec<usize>,
    /// Rows whose ids are stored already or earlier in the batch.
    repeats: Vec<Repeat>,
    /// Each trace's spans of earlier writes.
    stored: HashMap<TraceId, StoredServices>,
}

/// The rows not stored yet: a span is known by its trace and span id, both
/// among earlier writes (looked up by trace) and within this batch.
fn skip_stored(tx: &Transaction, rows: &[SpanRow]) -> Result<Unstored, StoreError> {
    let mut stored: HashMap<TraceId, StoredServices> = HashMap::new();
    let mut in_batch: HashMap<(TraceId, SpanId), usize> = HashMap::with_capacity(rows.len());
    let mut fresh = Vec::with_capacity(rows.len());
    let mut repeats = Vec::new();
    for (at, row) in rows.iter().enumerate() {
        let facts = &row.facts;
        let earlier = match stored.get(&facts.trace_id) {
            Some(earlier) => earlier,
            None => stored
                .entry(facts.trace_id)
                .or_insert(stored_spans(tx, &facts.trace_id)?),
        };
        let original = match earlier.get(&facts.span_id) {
            Some(span) => Some(Original::Stored(span.group_id)),
            None => match in_batch.entry((facts.trace_id, facts.span_id)) {
                Entry::Occupied(first) => Some(Original::InBatch(*first.get())),
                Entry::Vacant(slot) => {
                    slot.insert(at);
                    None
                }
            },
        };
        match original {
            Some(original) => repeats.push(Repeat { row: at, original }),
            None => fresh.push(at),
        }
    }
    Ok(Unstored {
        fresh,
        repeats,
        stored,
    })
}

/// The spans already stored for a trace, with their services and groups;
/// empty for a new trace, which is the common case and costs one index probe.
fn stored_spans(tx: &Transaction, trace_id: &TraceId) -> rusqlite::Result<StoredServices> {
    let mut spans = StoredServices::new();
    let mut statement = tx.prepare_cached(
        "SELECT g.id, g.service_id, g.span_ids FROM traces t
         JOIN span_groups g ON g.trace_ref = t.id WHERE t.trace_id = ?1",
    )?;
    let mut rows = statement.query([&trace_id.0[..]])?;
    while let Some(row) = rows.next()? {
        let stored = StoredSpan {
            group_id: row.get(0)?,
            service_id: row.get(1)?,
        };
        let packed: Vec<u8> = row.get(2)?;
        spans.extend(unpack_ids(&packed).map(|id| (id, stored)));
    }
    Ok(spans)
}

/// Span ids as stored in a group row: 8 bytes each, all zeros for none.
pub fn unpack_ids(packed: &[u8]) -> impl Iterator<Item = SpanId> + '_ {
    packed
        .chunks_exact(8)
        .filter_map(SpanId::from_slice)
        .filter(|id| id.0 != [0; 8])
}

/// Adds a trace's new spans to its summary row; returns the row's id.
fn upsert_trace(tx: &Transaction, trace_id: &TraceId, delta: &TraceDelta) -> rusqlite::Result<i64> {
    let (root_service, root_name) = match &delta.root {
        Some((service, name)) => (Some(service.as_str()), Some(name.as_str())),
        None => (None, None),
    };
    tx.prepare_cached(
        "INSERT INTO traces (trace_id, root_service, root_name, start_ns, end_ns, span_count, error_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (trace_id) DO UPDATE SET
             root_service = COALESCE(excluded.root_service, root_service),
             root_name = COALESCE(excluded.root_name, root_name),
             start_ns = MIN(start_ns, excluded.start_ns),
             end_ns = MAX(end_ns, excluded.end_ns),
             span_count = span_count + excluded.span_count,
             error_count = error_count + excluded.error_count
         RETURNING id",
    )?
    .query_row(
        params![
            &trace_id.0[..],
            root_service,
            root_name,
            clamp(delta.start_ns),
            clamp(delta.end_ns),
            clamp(delta.span_count),
            clamp(delta.error_count),
        ],
        |r| r.get(0),
    )
}

/// Records each service's (operation, kind) pairs, for the operations list.
fn add_operations(
    tx: &Transaction,
    state: &mut WriterState,
    rows: &[&SpanRow],
) -> Result<(), StoreError> {
    // The cache only saves statements: forget it rather than let a service
    // with unbounded span names grow it without end.
    if state.operations.len() > 100_000 {
        state.operations.clear();
    }
    // Distinct in the batch first: a batch repeats a few names many times,
    // and the cache's key is owned.
    let mut seen: HashSet<(&str, &str, i32)> = HashSet::new();
    for row in rows {
        let (service, name) = (row.facts.service(), row.facts.name.as_str());
        if !seen.insert((service, name, row.kind)) {
            continue;
        }
        let service_id = state.service_id(tx, service)?;
        let key = (service_id, name.to_owned(), row.kind);
        if state.operations.contains(&key) {
            continue;
        }
        tx.prepare_cached(
            "INSERT OR IGNORE INTO operations (service_id, name, kind) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![service_id, name, row.kind])?;
        state.operations.insert(key);
    }
    Ok(())
}

/// Packs groups into blocks of at most about `block::MAX_RAW_BYTES`.
fn write_blocks(
    tx: &Transaction,
    state: &mut WriterState,
    groups: Vec<Group>,
    trace_refs: &HashMap<TraceId, i64>,
    documents: &Documents,
    find_edges: Edges,
) -> Result<(), StoreError> {
    // Each block's buffer is sized once, from the bytes still to place:
    // grown by doubling instead, it is copied again at each step, on the writer.
    let mut unplaced: usize = groups
        .iter()
        .flat_map(|group| &group.rows)
        .map(|row| row.body.len() + block::LENGTH_PREFIX_BYTES)
        .sum();
    let mut builder = BlockBuilder::with_capacity(unplaced.min(block::MAX_RAW_BYTES));
    let mut placed: Vec<Placed> = Vec::new();
    for group in groups {
        if !builder.is_empty() && builder.raw_len() >= block::MAX_RAW_BYTES {
            unplaced = unplaced.saturating_sub(builder.raw_len());
            let next = BlockBuilder::with_capacity(unplaced.min(block::MAX_RAW_BYTES));
            let full = std::mem::replace(&mut builder, next);
            flush(
                tx,
                state,
                full,
                std::mem::take(&mut placed),
                trace_refs,
                documents,
                find_edges,
            )?;
        }
        let extent = builder.push_group(group.rows.iter().map(|row| row.body.as_slice()));
        placed.push(Placed { group, extent });
    }
    if !placed.is_empty() {
        flush(
            tx, state, builder, placed, trace_refs, documents, find_edges,
        )?;
    }
    Ok(())
}

/// Inserts what `store_rows` left pending: the groups' search documents
/// and their compressed blocks. Every caller of `store_rows` calls this
/// before it commits: until then the groups point to blocks not yet in the
/// file and cannot be found by search.
///
/// The documents go last because FTS5 writes its pending terms out as a
/// new index segment whenever a later statement of the transaction opens a
/// savepoint (any upsert does): inserted with each request's groups, they
/// made a segment per request, and so more segments to merge, where now
/// each commit makes one.
pub fn insert_pending(tx: &Transaction, state: &mut WriterState) -> Result<(), StoreError> {
    let mut insert_terms =
        tx.prepare_cached("INSERT INTO group_terms (rowid, tokens) VALUES (?1, ?2)")?;
    for (group_id, document) in state.documents.drain(..) {
        insert_terms.execute(params![group_id, &*document])?;
    }
    insert_blocks(tx, state)
}

/// Inserts the blocks compressed since the last call (see `insert_pending`).
pub fn insert_blocks(tx: &Transaction, state: &mut WriterState) -> Result<(), StoreError> {
    let blocks = state
        .blocks
        .take()
        .map_err(|e| StoreError::WriteFailed(e.to_string()))?;
    let mut insert = tx.prepare_cached("INSERT INTO blocks (id, body) VALUES (?1, ?2)")?;
    for (id, body) in blocks {
        insert.execute(params![id, body])?;
    }
    Ok(())
}

/// Hands one block to compression and stores the rows of its groups,
/// leaving their search documents pending (see `insert_pending`).
fn flush(
    tx: &Transaction,
    state: &mut WriterState,
    builder: BlockBuilder,
    placed: Vec<Placed>,
    trace_refs: &HashMap<TraceId, i64>,
    documents: &Documents,
    find_edges: Edges,
) -> Result<(), StoreError> {
    let block_id = state.block_id(tx)?;
    state.blocks.submit(block_id, builder);
    let mut insert_group = tx.prepare_cached(match find_edges {
        Edges::Find { .. } => {
            "INSERT INTO span_groups (trace_ref, service_id, resource_id, scope_id, block_id,
                 byte_offset, byte_length, start_ns, end_ns, max_duration_ns, span_count,
                 error_count, span_ids, parent_ids, edges)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        }
        // The column does not exist yet.
        Edges::Skip => {
            "INSERT INTO span_groups (trace_ref, service_id, resource_id, scope_id, block_id,
                 byte_offset, byte_length, start_ns, end_ns, max_duration_ns, span_count,
                 error_count, span_ids, parent_ids)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        }
    })?;
    for Placed { group, extent } in placed {
        let trace_ref = *trace_refs.get(&group.trace_id).ok_or_else(|| {
            StoreError::WriteFailed("a span group without its trace summary".into())
        })?;
        let facts = || group.rows.iter().map(|row| &row.facts);
        let service = group.rows[0].facts.service();
        let service_id = state.service_id(tx, service)?;
        let mut span_ids = Vec::with_capacity(8 * group.rows.len());
        let mut parent_ids = Vec::with_capacity(8 * group.rows.len());
        for span in facts() {
            span_ids.extend_from_slice(&span.span_id.0);
            parent_ids.extend_from_slice(&span.parent_span_id.map_or([0; 8], |p| p.0));
        }
        let columns = params![
            trace_ref,
            service_id,
            group.resource_id,
            group.scope_id,
            block_id,
            extent.offset as i64,
            extent.length as i64,
            clamp(facts().map(|s| s.start_ns).min().unwrap_or(0)),
            clamp(facts().map(|s| s.end_ns).max().unwrap_or(0)),
            clamp(facts().map(|s| s.duration_ns).max().unwrap_or(0)),
            group.rows.len() as i64,
            facts().filter(|s| s.is_error).count() as i64,
            span_ids,
            parent_ids,
        ];
        match find_edges {
            Edges::Find { .. } => {
                let edges = edges::pack(&group.edges);
                let mut with_edges = columns.to_vec();
                with_edges.push(&edges);
                insert_group.execute(&*with_edges)?
            }
            Edges::Skip => insert_group.execute(columns)?,
        };
        let group_id = tx.last_insert_rowid();
        let prepared = group
            .prepared
            .and_then(|at| documents.document(at, group.rows.len()));
        let document = match prepared {
            Some(document) => document,
            None => {
                let resource_tokens = state.resource_tokens.get(&group.resource_id);
                documents::document(service, resource_tokens, &group.rows).into()
            }
        };
        state.documents.push((group_id, document));
    }
    Ok(())
}

/// Reads a group's row into a search candidate or a trace read.
#[derive(Debug, Clone, Copy)]
pub struct GroupRef {
    pub trace_ref: i64,
    pub resource_id: i64,
    pub scope_id: i64,
    pub block_id: i64,
    pub extent: Extent,
}

/// The columns `group_ref` reads, in its order.
pub const GROUP_COLUMNS: &str =
    "id, trace_ref, resource_id, scope_id, block_id, byte_offset, byte_length";

/// A group's span and parent ids, 8 bytes per span in the order of its
/// spans (zeros for no parent): what its stored bodies leave out (see `bare`).
#[derive(Debug, Clone, Default)]
pub struct GroupIds {
    pub span_ids: Vec<u8>,
    pub parent_ids: Vec<u8>,
}

/// The group rows of a trace, by the trace's row id, with their span ids.
pub fn groups_of_trace(
    conn: &rusqlite::Connection,
    trace_ref: i64,
) -> rusqlite::Result<Vec<(GroupRef, GroupIds)>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {GROUP_COLUMNS}, span_ids, parent_ids FROM span_groups WHERE trace_ref = ?1 ORDER BY id"
    ))?;
    let rows = statement.query_map([trace_ref], |row| {
        let ids = GroupIds {
            span_ids: row.get(7)?,
            parent_ids: row.get(8)?,
        };
        Ok((group_ref(row)?, ids))
    })?;
    rows.collect()
}

/// A `GroupRef` from the first seven columns of a row, `GROUP_COLUMNS`
/// (the first, the group's id, unused).
pub fn group_ref(row: &rusqlite::Row) -> rusqlite::Result<GroupRef> {
    Ok(GroupRef {
        trace_ref: row.get(1)?,
        resource_id: row.get(2)?,
        scope_id: row.get(3)?,
        block_id: row.get(4)?,
        extent: Extent {
            offset: row.get::<_, i64>(5)?.max(0) as usize,
            length: row.get::<_, i64>(6)?.max(0) as usize,
        },
    })
}

/// Decompressed blocks of one query, so that groups sharing a block
/// decompress it once.
#[derive(Default)]
pub struct Blocks {
    raw: HashMap<i64, Vec<u8>>,
}

impl Blocks {
    /// The spans of a group, as stored.
    pub fn spans(
        &mut self,
        conn: &rusqlite::Connection,
        group: &GroupRef,
    ) -> Result<Vec<opentelemetry_proto::tonic::trace::v1::Span>, StoreError> {
        let raw = self.raw(conn, group.block_id)?;
        block::spans_of(raw, group.extent).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The spans of a group whole, their ids put back (see `bare`).
    pub fn spans_with_ids(
        &mut self,
        conn: &rusqlite::Connection,
        group: &GroupRef,
        trace_id: &TraceId,
        ids: &GroupIds,
    ) -> Result<Vec<opentelemetry_proto::tonic::trace::v1::Span>, StoreError> {
        let mut spans = self.spans(conn, group)?;
        bare::restore_ids(&mut spans, trace_id, &ids.span_ids, &ids.parent_ids)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(spans)
    }

    /// The encoded spans of a group, as the writer put them in its block.
    pub fn raw_spans(
        &mut self,
        conn: &rusqlite::Connection,
        group: &GroupRef,
    ) -> Result<Vec<&[u8]>, StoreError> {
        let raw = self.raw(conn, group.block_id)?;
        block::raw_spans_of(raw, group.extent).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// A block's decompressed bytes.
    fn raw(&mut self, conn: &rusqlite::Connection, block_id: i64) -> Result<&[u8], StoreError> {
        match self.raw.entry(block_id) {
            std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::hash_map::Entry::Vacant(entry) => {
                // Few blocks per query: the cache lives as long as the query.
                let body: Vec<u8> = conn
                    .prepare_cached("SELECT body FROM blocks WHERE id = ?1")?
                    .query_row([block_id], |r| r.get(0))
                    .optional()?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("span block {block_id} is missing"))
                    })?;
                Ok(entry.insert(
                    block::decompress(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ))
            }
        }
    }
}
