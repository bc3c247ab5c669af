//! Spans whose INSERT failed for good, as SQLite's `failed` books them:
//! counted at process and analyze, then lost at the store
//! (`write_failed`); the sender got a 503 and may send them again. A span
//! that comes again and is stored takes its failure back, so it counts
//! once and is no loss; a span that fails twice is booked once; a span
//! found stored after all (ClickHouse took the INSERT but its answer was
//! lost) takes its failure back the same way.
//!
//! The bookings are net changes to `stage_counts` and `stage_losses` that
//! the writer has still to write ([`Failures::take_pending`]): while
//! ClickHouse is down they wait here, in memory, and are written once it
//! answers again. A take-back is a negative change, written as its
//! two's complement: ClickHouse sums `UInt64` modulo 2^64, so every
//! `sum(n)` (and the SummingMergeTree merges) come out exact. The pending
//! changes are per service and minute, so they stay small whatever the
//! outage's length; which spans failed is remembered for [`CAPACITY`]
//! spans at most (past that the oldest cannot take their failure back,
//! and count as they did before this memory). Neither survives a restart:
//! an otelite stopped while ClickHouse is down logs what it could not write.

use super::encode::Rows;
use crate::analyze::policy;
use crate::stage::{Stage, minute_of};
use otelite_model::{SpanId, TraceId};
use std::collections::{HashMap, VecDeque};

/// Failed spans remembered at most (as on SQLite).
const CAPACITY: usize = 200_000;

/// Why spans were lost at the store: their INSERT failed (as on SQLite).
pub const WRITE_FAILED: &str = "write_failed";

pub type Key = (TraceId, SpanId);

/// Where a failed span was booked: its service and the minute its batch
/// arrived.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Booked {
    service: String,
    minute: i64,
}

/// A `stage_counts` row: service, stage, minute.
pub type CountKey = (String, Stage, i64);
/// A `stage_losses` row: service, stage, reason, minute.
pub type LossKey = (String, Stage, String, i64);

/// Net changes not yet written, by row.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub counts: HashMap<CountKey, i64>,
    pub losses: HashMap<LossKey, i64>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.counts.values().all(|n| *n == 0) && self.losses.values().all(|n| *n == 0)
    }

    /// Adds `other` (changes that could not be written) back.
    fn absorb(&mut self, other: Pending) {
        for (key, n) in other.counts {
            *self.counts.entry(key).or_default() += n;
        }
        for (key, n) in other.losses {
            *self.losses.entry(key).or_default() += n;
        }
    }
}

#[derive(Debug, Default)]
pub struct Failures {
    booked: HashMap<Key, Booked>,
    order: VecDeque<Key>,
    /// Booked since the pending changes were last written: ClickHouse may
    /// have taken them after all, which the writer checks first.
    unchecked: Vec<Key>,
    pending: Pending,
}

impl Failures {
    /// Books a group whose INSERT failed for good: each span not booked
    /// before is counted at process and analyze and lost at the store, and
    /// the spans the request lost before the store (invalid) are lost at
    /// their stage. Spans dropped by a rule are left to the retry, which
    /// counts them when it is stored, as the kept ones.
    pub fn failed(&mut self, group: &[&Rows]) {
        for rows in group {
            let minute = minute_of(rows.received_ns);
            for span in &rows.spans {
                let key = (span.facts.trace_id, span.facts.span_id);
                if self.booked.contains_key(&key) {
                    continue;
                }
                let booked = Booked {
                    service: span.facts.service().to_owned(),
                    minute,
                };
                self.change(&booked, 1);
                self.booked.insert(key, booked);
                self.order.push_back(key);
                self.unchecked.push(key);
            }
            for lost in rows
                .lost
                .iter()
                .filter(|l| policy::rule_of(&l.reason).is_none())
            {
                let key = (
                    lost.service.clone(),
                    lost.stage,
                    lost.reason.clone(),
                    minute,
                );
                *self.pending.losses.entry(key).or_default() += lost.n as i64;
            }
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.booked.remove(&old);
            }
        }
    }

    /// Spans now known to be stored (and so counted by the INSERT that
    /// stored them): their failures, if any, are taken back.
    pub fn stored<'a>(&mut self, keys: impl IntoIterator<Item = &'a Key>) {
        if self.booked.is_empty() {
            return;
        }
        for key in keys {
            if let Some(booked) = self.booked.remove(key) {
                self.change(&booked, -1);
            }
        }
    }

    /// Spans booked since the last write, to check whether ClickHouse has
    /// them after all.
    pub fn unchecked(&self) -> &[Key] {
        &self.unchecked
    }

    /// The changes to write, once the unchecked spans have been checked;
    /// hand back what could not be written with [`Failures::put_back`].
    pub fn take_pending(&mut self) -> Pending {
        self.unchecked.clear();
        std::mem::take(&mut self.pending)
    }

    pub fn put_back(&mut self, unwritten: Pending) {
        self.pending.absorb(unwritten);
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn change(&mut self, booked: &Booked, n: i64) {
        for stage in [Stage::Process, Stage::Analyze] {
            let key = (booked.service.clone(), stage, booked.minute);
            *self.pending.counts.entry(key).or_default() += n;
        }
        let key = (
            booked.service.clone(),
            Stage::Store,
            WRITE_FAILED.to_owned(),
            booked.minute,
        );
        *self.pending.losses.entry(key).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{ingest, span};
    use otelite_model::Span;

    /// Received at 00:01:30 (minute 60).
    const RECEIVED_NS: u64 = 90_000_000_000;

    fn rows(ids: &[u8], service: &str) -> Rows {
        let spans = ids
            .iter()
            .map(|id| span(7, *id).service(service).build())
            .collect();
        Rows::new(ingest(spans, RECEIVED_NS))
    }

    fn key(id: u8) -> Key {
        (TraceId([7; 16]), SpanId([id; 8]))
    }

    /// Pending changes as sorted (row, n) lists, zeros left out.
    type Changes = (Vec<(CountKey, i64)>, Vec<(LossKey, i64)>);

    fn pending(failures: &mut Failures) -> Changes {
        let Pending { counts, losses } = failures.take_pending();
        let mut counts: Vec<_> = counts.into_iter().filter(|(_, n)| *n != 0).collect();
        let mut losses: Vec<_> = losses.into_iter().filter(|(_, n)| *n != 0).collect();
        counts.sort();
        losses.sort();
        (counts, losses)
    }

    fn booked(service: &str, n: i64) -> Changes {
        (
            vec![
                ((service.to_owned(), Stage::Process, 60), n),
                ((service.to_owned(), Stage::Analyze, 60), n),
            ],
            vec![(
                (
                    service.to_owned(),
                    Stage::Store,
                    "write_failed".to_owned(),
                    60,
                ),
                n,
            )],
        )
    }

    #[test]
    fn a_failed_group_is_lost_at_the_store_once_however_often_it_fails() {
        let mut failures = Failures::default();
        let batch = rows(&[1, 2, 3], "shop");
        failures.failed(&[&batch]);
        failures.failed(&[&batch]);
        assert_eq!(failures.unchecked(), [key(1), key(2), key(3)]);
        assert_eq!(pending(&mut failures), booked("shop", 3));
        assert!(failures.unchecked().is_empty());
        // Written; it fails a third time: nothing more to write.
        failures.failed(&[&batch]);
        assert!(!failures.has_pending());
    }

    #[test]
    fn stored_spans_take_their_failure_back_written_or_not() {
        let mut failures = Failures::default();
        failures.failed(&[&rows(&[1, 2, 3], "shop")]);
        // Before it was written: two of three never count.
        failures.stored(&[key(1), key(2), key(9)]);
        assert_eq!(pending(&mut failures), booked("shop", 1));
        // After: a negative change for ClickHouse, and only once.
        failures.stored(&[key(3)]);
        failures.stored(&[key(3)]);
        assert_eq!(pending(&mut failures), booked("shop", -1));
        assert!(!failures.has_pending());
    }

    #[test]
    fn changes_not_written_are_kept_with_later_ones() {
        let mut failures = Failures::default();
        failures.failed(&[&rows(&[1, 2], "shop")]);
        let unwritten = failures.take_pending();
        failures.failed(&[&rows(&[4], "shop"), &rows(&[5], "cart")]);
        failures.put_back(unwritten);
        let (mut counts, mut losses) = booked("shop", 3);
        let (cart_counts, cart_losses) = booked("cart", 1);
        counts.extend(cart_counts);
        losses.extend(cart_losses);
        counts.sort();
        losses.sort();
        assert_eq!(pending(&mut failures), (counts, losses));
    }

    #[test]
    fn the_spans_remembered_are_bounded() {
        let mut failures = Failures::default();
        let spans: Vec<Span> = (0..=CAPACITY as u64)
            .map(|i| {
                span(1, 1)
                    .span_id(SpanId(i.to_be_bytes()))
                    .service("shop")
                    .build()
            })
            .collect();
        failures.failed(&[&Rows::new(ingest(spans, RECEIVED_NS))]);
        assert_eq!(failures.booked.len(), CAPACITY);
        // The oldest is forgotten: it stays lost, counted once.
        failures.stored(&[(TraceId([1; 16]), SpanId(0u64.to_be_bytes()))]);
        assert_eq!(pending(&mut failures), booked("shop", CAPACITY as i64 + 1));
    }
}
