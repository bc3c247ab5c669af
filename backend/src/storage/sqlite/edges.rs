//! Service edges found from what is stored. A call between services is a
//! span whose parent belongs to another service; it is counted once, by the
//! write that stores the second of the two spans, whichever comes first and
//! however far apart (other writes, restarts) they arrive:
//! - a new span's parent is looked up in its own batch, then among the
//!   trace's stored spans (read anyway to skip spans already stored);
//! - a span whose parent is not there yet waits in `edge_waiting`, with what
//!   its edge needs and when it arrived, until the parent arrives or
//!   retention deletes the trace. Every such span waits, whichever service
//!   its parent turns out to be in: those still waiting a grace period after
//!   they arrived are the orphans (`read::orphans`).
//!
//! Each edge is recorded with the span group of the span that completed it
//! (`span_groups.edges`), so that retention takes away exactly the edges of
//! the groups it deletes.

use super::StoreError;
use super::encode::SpanRow;
use super::writer::{WriterState, clamp};
use crate::stage::minute_of;
use foldhash::{HashMap, HashMapExt};
use otelite_model::{SpanId, TraceId};
use rusqlite::{Transaction, params};

/// A trace's spans stored by earlier writes, by span id.
pub type StoredServices = HashMap<SpanId, StoredSpan>;

#[derive(Debug, Clone, Copy)]
pub struct StoredSpan {
    pub service_id: i64,
    /// The span group that holds it.
    pub group_id: i64,
}

/// Calls from one service to another in one minute of the child's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EdgeKey {
    pub parent_service_id: i64,
    pub child_service_id: i64,
    /// Unix seconds of the minute's start.
    pub minute: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub calls: u64,
    pub errors: u64,
}

/// Edges summed by key.
pub type EdgeCounts = HashMap<EdgeKey, Calls>;

/// One edge, completed by the new span at `row` (an index into the fresh rows).
#[derive(Debug, Clone, Copy)]
pub struct Completed {
    pub row: usize,
    pub key: EdgeKey,
    pub is_error: bool,
}

/// The edges that the `fresh` rows complete, against the traces' spans of
/// earlier writes (`stored`, by trace) and the children waiting for them.
/// Children whose parent is still missing are left waiting. `trace_refs`
/// holds every fresh row's trace row id; the rows arrived at `received_ns`.
pub fn resolve(
    tx: &Transaction,
    state: &mut WriterState,
    fresh: &[&SpanRow],
    stored: &HashMap<TraceId, StoredServices>,
    trace_refs: &HashMap<TraceId, i64>,
    received_ns: u64,
) -> Result<Vec<Completed>, StoreError> {
    let mut in_batch: HashMap<(TraceId, SpanId), usize> = HashMap::with_capacity(fresh.len());
    for (at, row) in fresh.iter().enumerate() {
        in_batch.insert((row.facts.trace_id, row.facts.span_id), at);
    }
    let mut completed = Vec::new();
    // Children stored earlier, waiting for a parent that this batch brings.
    // Only a trace with stored spans can have any.
    for (trace_id, spans) in stored {
        if spans.is_empty() {
            continue;
        }
        let Some(&trace_ref) = trace_refs.get(trace_id) else {
            continue;
        };
        for waiting in waiting_children(tx, trace_ref)? {
            let Some(&at) = in_batch.get(&(*trace_id, waiting.parent_span_id)) else {
                continue;
            };
            let parent_service_id = state.service_id(tx, fresh[at].facts.service())?;
            if parent_service_id != waiting.child_service_id {
                completed.push(Completed {
                    row: at,
                    key: EdgeKey {
                        parent_service_id,
                        child_service_id: waiting.child_service_id,
                        minute: minute_of(waiting.child_start_ns),
                    },
                    is_error: waiting.is_error,
                });
            }
            tx.prepare_cached("DELETE FROM edge_waiting WHERE rowid = ?1")?
                .execute([waiting.rowid])?;
        }
    }
    // Each new span's parent: in this batch, stored, or still to come.
    for (at, row) in fresh.iter().enumerate() {
        let span = &row.facts;
        let Some(parent_span_id) = span.parent_span_id else {
            continue;
        };
        let child_service_id = state.service_id(tx, span.service())?;
        let parent_service_id = match in_batch.get(&(span.trace_id, parent_span_id)) {
            Some(&parent) => Some(state.service_id(tx, fresh[parent].facts.service())?),
            None => stored
                .get(&span.trace_id)
                .and_then(|spans| spans.get(&parent_span_id))
                .map(|parent| parent.service_id),
        };
        match parent_service_id {
            Some(parent_service_id) if parent_service_id != child_service_id => {
                completed.push(Completed {
                    row: at,
                    key: EdgeKey {
                        parent_service_id,
                        child_service_id,
                        minute: minute_of(span.start_ns),
                    },
                    is_error: span.is_error,
                })
            }
            Some(_) => {}
            None => {
                let trace_ref = trace_refs.get(&span.trace_id).ok_or_else(|| {
                    StoreError::WriteFailed("a span without its trace summary".into())
                })?;
                tx.prepare_cached(
                    "INSERT INTO edge_waiting
                         (trace_ref, parent_span_id, child_service_id, child_start_ns, child_error,
                          arrived_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    trace_ref,
                    &parent_span_id.0[..],
                    child_service_id,
                    clamp(span.start_ns),
                    span.is_error,
                    clamp(received_ns),
                ])?;
            }
        }
    }
    Ok(completed)
}

/// A stored span whose parent had not arrived when it was written.
struct Waiting {
    rowid: i64,
    parent_span_id: SpanId,
    child_service_id: i64,
    child_start_ns: u64,
    is_error: bool,
}

fn waiting_children(tx: &Transaction, trace_ref: i64) -> rusqlite::Result<Vec<Waiting>> {
    let mut statement = tx.prepare_cached(
        "SELECT rowid, parent_span_id, child_service_id, child_start_ns, child_error
         FROM edge_waiting WHERE trace_ref = ?1",
    )?;
    let rows = statement.query_map([trace_ref], |r| {
        let parent: Vec<u8> = r.get(1)?;
        Ok((
            r.get(0)?,
            SpanId::from_slice(&parent),
            r.get(2)?,
            r.get::<_, i64>(3)?,
            r.get(4)?,
        ))
    })?;
    let mut waiting = Vec::new();
    for row in rows {
        let (rowid, parent, child_service_id, start, is_error) = row?;
        // Only this module writes the table; a malformed id cannot match.
        if let Some(parent_span_id) = parent {
            waiting.push(Waiting {
                rowid,
                parent_span_id,
                child_service_id,
                child_start_ns: start.max(0) as u64,
                is_error,
            });
        }
    }
    Ok(waiting)
}

/// Sums edges by key.
pub fn count<'a>(edges: impl IntoIterator<Item = &'a Completed>) -> EdgeCounts {
    let mut counts = EdgeCounts::new();
    for edge in edges {
        let calls = counts.entry(edge.key).or_default();
        calls.calls += 1;
        calls.errors += u64::from(edge.is_error);
    }
    counts
}

/// Adds edges to `service_edges`, one upsert per key.
pub fn add(tx: &Transaction, counts: &EdgeCounts) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO service_edges (parent_service_id, child_service_id, minute, calls, errors)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET calls = calls + excluded.calls, errors = errors + excluded.errors",
    )?;
    for (key, calls) in counts {
        upsert.execute(params![
            key.parent_service_id,
            key.child_service_id,
            key.minute,
            clamp(calls.calls),
            clamp(calls.errors),
        ])?;
    }
    Ok(())
}

/// Takes edges away from `service_edges` (retention), dropping rows left
/// with no call. Never below zero: edges counted before a file recorded
/// them per group are gone by minute instead (see `retention::delete`).
pub fn subtract(tx: &Transaction, counts: &EdgeCounts) -> rusqlite::Result<()> {
    let mut update = tx.prepare_cached(
        "UPDATE service_edges SET calls = max(calls - ?4, 0), errors = max(errors - ?5, 0)
         WHERE parent_service_id = ?1 AND child_service_id = ?2 AND minute = ?3",
    )?;
    let mut empty = tx.prepare_cached(
        "DELETE FROM service_edges
         WHERE parent_service_id = ?1 AND child_service_id = ?2 AND minute = ?3 AND calls = 0",
    )?;
    for (key, calls) in counts {
        let at = params![key.parent_service_id, key.child_service_id, key.minute];
        update.execute(params![
            key.parent_service_id,
            key.child_service_id,
            key.minute,
            clamp(calls.calls),
            clamp(calls.errors),
        ])?;
        empty.execute(at)?;
    }
    Ok(())
}

/// A group's edges as stored in its row: per edge five varints (parent and
/// child service id, minute, calls, errors).
pub fn pack(counts: &EdgeCounts) -> Option<Vec<u8>> {
    if counts.is_empty() {
        return None;
    }
    let mut packed = Vec::with_capacity(counts.len() * 12);
    for (key, calls) in counts {
        for value in [
            key.parent_service_id as u64,
            key.child_service_id as u64,
            key.minute as u64,
            calls.calls,
            calls.errors,
        ] {
            prost::encoding::encode_varint(value, &mut packed);
        }
    }
    Some(packed)
}

/// Reads `pack`'s bytes into `into`; `None` when they are not what `pack` writes.
pub fn unpack_into(mut packed: &[u8], into: &mut EdgeCounts) -> Option<()> {
    while !packed.is_empty() {
        let mut next = || prost::encoding::decode_varint(&mut packed).ok();
        let key = EdgeKey {
            parent_service_id: next()? as i64,
            child_service_id: next()? as i64,
            minute: next()? as i64,
        };
        let (calls, errors) = (next()?, next()?);
        let sum = into.entry(key).or_default();
        sum.calls += calls;
        sum.errors += errors;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_edges_read_back_summed() {
        let key = |parent, minute| EdgeKey {
            parent_service_id: parent,
            child_service_id: 2,
            minute,
        };
        let mut counts = EdgeCounts::new();
        counts.insert(
            key(1, 60),
            Calls {
                calls: 3,
                errors: 1,
            },
        );
        counts.insert(
            key(7, 1_764_000_000),
            Calls {
                calls: 300,
                errors: 0,
            },
        );
        let packed = pack(&counts).expect("edges");
        let mut read = EdgeCounts::new();
        unpack_into(&packed, &mut read).expect("well formed");
        unpack_into(&packed, &mut read).expect("well formed");
        assert_eq!(read.len(), 2);
        assert_eq!(
            read[&key(1, 60)],
            Calls {
                calls: 6,
                errors: 2
            }
        );
        assert_eq!(
            read[&key(7, 1_764_000_000)],
            Calls {
                calls: 600,
                errors: 0
            }
        );
        assert_eq!(pack(&EdgeCounts::new()), None);
        assert_eq!(unpack_into(&packed[..packed.len() - 1], &mut read), None);
    }
}
