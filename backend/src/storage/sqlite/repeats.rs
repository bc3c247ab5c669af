//! Spans whose trace and span ids are stored already, or come twice in one
//! batch. The same copy again is a retry: nothing to store, and nothing to
//! count twice. Another span under the same ids (another resource, scope,
//! name, time, attribute…) is a conflict: the first copy is kept, and the
//! later one is refused, so that the sender is told (`partial_success`) and
//! the loss shows at the store stage instead of vanishing.

use super::StoreError;
use super::block::{self, Extent};
use super::encode::SpanRow;
use super::groups::unpack_ids;
use super::writer::{BatchIds, WriterState};
use foldhash::{HashMap, HashMapExt};
use rusqlite::{OptionalExtension, Transaction};
use std::collections::hash_map::Entry;

/// Where the copy that counts of a repeated span is.
#[derive(Debug, Clone, Copy)]
pub enum Original {
    /// Earlier in this batch, at this row.
    InBatch(usize),
    /// Stored, in this span group.
    Stored(i64),
}

/// A row whose ids were seen before.
#[derive(Debug, Clone, Copy)]
pub struct Repeat {
    pub row: usize,
    pub original: Original,
}

/// The repeats, sorted out.
pub struct Repeats<'a> {
    /// Retries (the same span again), per service.
    pub duplicates_per_service: HashMap<&'a str, u64>,
    /// Other spans under ids already taken.
    pub conflicts: u64,
    /// The same, per service: each is lost at the store.
    pub conflicts_per_service: HashMap<&'a str, u64>,
}

/// Compares each repeat with its original, byte for byte: the writer
/// encodes a span the same way each time, so a retried span is equal.
pub fn classify<'a>(
    tx: &Transaction,
    state: &mut WriterState,
    ids: &mut BatchIds,
    rows: &'a [SpanRow],
    repeats: &[Repeat],
) -> Result<Repeats<'a>, StoreError> {
    let mut sorted = Repeats {
        duplicates_per_service: HashMap::new(),
        conflicts: 0,
        conflicts_per_service: HashMap::new(),
    };
    let mut blocks = RawBlocks::default();
    for repeat in repeats {
        let row = &rows[repeat.row];
        let same = match repeat.original {
            Original::InBatch(first) => {
                let first = &rows[first];
                first.body == row.body
                    && first.facts.resource == row.facts.resource
                    && first.scope == row.scope
            }
            Original::Stored(group_id) => {
                let resource_id = ids.resource(tx, state, &row.facts.resource)?;
                let scope_id = ids.scope(tx, state, &row.scope)?;
                blocks.stored_equals(tx, state, group_id, row, resource_id, scope_id)?
            }
        };
        if same {
            *sorted
                .duplicates_per_service
                .entry(row.facts.service())
                .or_default() += 1;
        } else {
            sorted.conflicts += 1;
            *sorted
                .conflicts_per_service
                .entry(row.facts.service())
                .or_default() += 1;
        }
    }
    Ok(sorted)
}

/// Decompressed blocks of one batch's comparisons.
#[derive(Default)]
struct RawBlocks {
    raw: HashMap<i64, Vec<u8>>,
}

impl RawBlocks {
    /// Whether the stored span with `row`'s ids in group `group_id` is the
    /// same span: same resource, scope and encoding.
    fn stored_equals(
        &mut self,
        tx: &Transaction,
        state: &mut WriterState,
        group_id: i64,
        row: &SpanRow,
        resource_id: i64,
        scope_id: i64,
    ) -> Result<bool, StoreError> {
        let (group_resource, group_scope, block_id, extent, span_ids) = tx
            .prepare_cached(
                "SELECT resource_id, scope_id, block_id, byte_offset, byte_length, span_ids
                 FROM span_groups WHERE id = ?1",
            )?
            .query_row([group_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    Extent {
                        offset: r.get::<_, i64>(3)?.max(0) as usize,
                        length: r.get::<_, i64>(4)?.max(0) as usize,
                    },
                    r.get::<_, Vec<u8>>(5)?,
                ))
            })?;
        if (group_resource, group_scope) != (resource_id, scope_id) {
            return Ok(false);
        }
        let Some(at) = unpack_ids(&span_ids).position(|id| id == row.facts.span_id) else {
            return Err(StoreError::Corrupt(format!(
                "span group {group_id} lost a span id"
            )));
        };
        let raw = self.block(tx, state, block_id)?;
        let spans =
            block::raw_spans_of(raw, extent).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(spans.get(at) == Some(&row.body.as_slice()))
    }

    fn block(
        &mut self,
        tx: &Transaction,
        state: &mut WriterState,
        block_id: i64,
    ) -> Result<&[u8], StoreError> {
        match self.raw.entry(block_id) {
            Entry::Occupied(raw) => Ok(raw.into_mut()),
            Entry::Vacant(slot) => {
                let mut body = stored_block(tx, block_id)?;
                if body.is_none() {
                    // A block of this transaction, still being compressed.
                    super::groups::insert_blocks(tx, state)?;
                    body = stored_block(tx, block_id)?;
                }
                let body = body.ok_or_else(|| {
                    StoreError::Corrupt(format!("span block {block_id} is missing"))
                })?;
                let raw =
                    block::decompress(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(slot.insert(raw))
            }
        }
    }
}

fn stored_block(tx: &Transaction, block_id: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    tx.prepare_cached("SELECT body FROM blocks WHERE id = ?1")?
        .query_row([block_id], |r| r.get(0))
        .optional()
}
