//! Spans of commits that failed, or that the size cap refused. Such a
//! batch is booked as processed and analyzed, then lost at the store
//! (`write_failed`, `size_cap`); the sender got no
//! 2xx and may send the same spans again. Remembered here, a span that
//! comes again takes its failure back when it is stored: it is counted at
//! process and analyze once, and is no loss. A span that fails twice is
//! booked once. The memory is bounded (a long outage's oldest failures are
//! forgotten, and then count as they did before) and does not survive a
//! restart.

use super::encode::SpanRow;
use crate::analyze::SpanFacts;
use crate::stage::minute_of;
use foldhash::{HashMap, HashMapExt};
use otelite_model::{SpanId, TraceId};
use std::collections::VecDeque;

/// Failed spans remembered at most.
const CAPACITY: usize = 200_000;

type Key = (TraceId, SpanId);

/// Where a failed span was booked: its service and the minute its counts
/// went to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Booked {
    pub service: String,
    pub minute: i64,
    /// The loss's reason (`write_failed`, `size_cap`).
    pub reason: &'static str,
}

#[derive(Debug, Default)]
pub struct FailedSpans {
    booked: HashMap<Key, Booked>,
    order: VecDeque<Key>,
    /// Forgiven in the open transaction: booked again if it rolls back.
    forgiven: Vec<(Key, Booked)>,
}

impl FailedSpans {
    /// Remembers a failed batch's spans; returns, per service, how many of
    /// them had not failed before (only those are booked now).
    pub fn remember<'a>(
        &mut self,
        rows: &'a [SpanRow],
        received_ns: u64,
        reason: &'static str,
    ) -> HashMap<&'a str, u64> {
        let mut new_per_service: HashMap<&'a str, u64> = HashMap::new();
        for row in rows {
            let key = (row.facts.trace_id, row.facts.span_id);
            if self.booked.contains_key(&key) {
                continue;
            }
            let service = row.facts.service();
            self.booked.insert(
                key,
                Booked {
                    service: service.to_owned(),
                    minute: minute_of(received_ns),
                    reason,
                },
            );
            self.order.push_back(key);
            *new_per_service.entry(service).or_default() += 1;
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.booked.remove(&old);
            }
        }
        new_per_service
    }

    /// Forgets the stored spans' failures; returns how many were booked
    /// where, to be taken back. Until `committed`, `rolled_back` undoes it.
    pub fn forgive<'a>(
        &mut self,
        stored: impl IntoIterator<Item = &'a SpanFacts>,
    ) -> HashMap<Booked, u64> {
        let mut taken_back: HashMap<Booked, u64> = HashMap::new();
        if self.booked.is_empty() {
            return taken_back;
        }
        for span in stored {
            let key = (span.trace_id, span.span_id);
            if let Some(booked) = self.booked.remove(&key) {
                *taken_back.entry(booked.clone()).or_default() += 1;
                self.forgiven.push((key, booked));
            }
        }
        taken_back
    }

    /// The transaction that forgave committed.
    pub fn committed(&mut self) {
        self.forgiven.clear();
    }

    /// The transaction that forgave rolled back: its spans failed again.
    pub fn rolled_back(&mut self) {
        self.booked.extend(self.forgiven.drain(..));
    }
}
