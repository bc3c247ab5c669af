//! Spans whose trace and span ids are stored already, or come twice in one
//! batch. The same copy again is a retry: nothing to store, and nothing to
//! count twice. Another span under the same ids (another resource, scope,
//! name, time, attribute…) is a conflict: the first copy is kept, and the
//! later one is refused, so that the sender is told (`partial_success`) and
//! the loss shows at the store stage instead of vanishing.

use super::StoreError;
use super::encode::SpanRow;
use super::groups::{self, Blocks, GROUP_COLUMNS, unpack_ids};
use super::writer::{BatchIds, WriterState};
use foldhash::{HashMap, HashMapExt};
use rusqlite::Transaction;

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
    // A repeat's original may sit in a block of this very transaction,
    // still being compressed: store those first, so every block is found.
    if repeats
        .iter()
        .any(|repeat| matches!(repeat.original, Original::Stored(_)))
    {
        groups::insert_blocks(tx, state)?;
    }
    let mut blocks = Blocks::default();
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
                stored_equals(tx, &mut blocks, group_id, row, resource_id, scope_id)?
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

/// Whether the stored span with `row`'s ids in group `group_id` is the same
/// span: same resource, scope and encoding.
fn stored_equals(
    tx: &Transaction,
    blocks: &mut Blocks,
    group_id: i64,
    row: &SpanRow,
    resource_id: i64,
    scope_id: i64,
) -> Result<bool, StoreError> {
    let (group, span_ids) = tx
        .prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS}, span_ids FROM span_groups WHERE id = ?1"
        ))?
        .query_row([group_id], |r| {
            Ok((groups::group_ref(r)?, r.get::<_, Vec<u8>>(7)?))
        })?;
    if (group.resource_id, group.scope_id) != (resource_id, scope_id) {
        return Ok(false);
    }
    let Some(at) = unpack_ids(&span_ids).position(|id| id == row.facts.span_id) else {
        return Err(StoreError::Corrupt(format!(
            "span group {group_id} lost a span id"
        )));
    };
    let spans = blocks.raw_spans(tx, &group)?;
    // A body stored before bodies went bare still has its ids (see `bare`).
    Ok(spans
        .get(at)
        .is_some_and(|stored| super::bare::strip_ids(stored) == row.body))
}
