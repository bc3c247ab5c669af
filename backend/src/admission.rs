//! The memory budget of ingest, by bytes in flight: every receiver (OTLP
//! over HTTP and over gRPC) takes a permit for a request's bytes (its
//! body as received, then its decoded size) before it holds them, and
//! keeps it until the request is answered. Past the budget a request is
//! refused at once (503 with `Retry-After` over HTTP, UNAVAILABLE with
//! `RetryInfo` over gRPC), as the
//! Collector's memory limiter does, so memory stays bounded whatever the
//! number and size of requests. Counting requests alone did not: 16 big
//! gzip'd batches decode to hundreds of megabytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes in flight at most by default: with SQLite's page cache and the
/// process's own, it keeps peak memory under 200 MB (see BENCHMARKS.md).
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 64 * 1024 * 1024;

/// What decoding costs in memory per byte of protobuf: the request's
/// structs, the model's spans and the store's rows live side by side for
/// a while (measured on loadgen's spans, see BENCHMARKS.md).
pub const DECODED_PER_BYTE: usize = 4;

/// The budget was spent: the request must wait and be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{wanted} more bytes in flight would pass the budget of {capacity}")]
pub struct OverBudget {
    pub wanted: usize,
    pub capacity: usize,
}

/// Shared by every receiver; cheap to clone.
#[derive(Debug, Clone)]
pub struct ByteBudget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    semaphore: Arc<Semaphore>,
    capacity: usize,
    peak: AtomicUsize,
}

impl ByteBudget {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Self(Arc::new(Inner {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
            peak: AtomicUsize::new(0),
        }))
    }

    /// A permit for `bytes`, or `OverBudget` at once. A request larger than
    /// the whole budget is let in when nothing else is in flight.
    pub fn try_take(&self, bytes: usize) -> Result<BytePermit, OverBudget> {
        let wanted = self.fit(bytes);
        let permit = self
            .0
            .semaphore
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| self.over(bytes))?;
        self.note_peak();
        Ok(BytePermit {
            budget: self.clone(),
            permit,
        })
    }

    /// Bytes held now.
    pub fn in_use(&self) -> usize {
        self.0.capacity - self.0.semaphore.available_permits()
    }

    /// The most bytes held at once since start.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> usize {
        self.0.capacity
    }

    fn fit(&self, bytes: usize) -> u32 {
        bytes.clamp(1, self.0.capacity).min(u32::MAX as usize) as u32
    }

    fn over(&self, wanted: usize) -> OverBudget {
        OverBudget {
            wanted,
            capacity: self.0.capacity,
        }
    }

    fn note_peak(&self) {
        self.0.peak.fetch_max(self.in_use(), Ordering::Relaxed);
    }
}

impl Default for ByteBudget {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_INFLIGHT_BYTES)
    }
}

/// Bytes held for one request; given back when dropped.
#[derive(Debug)]
pub struct BytePermit {
    budget: ByteBudget,
    permit: OwnedSemaphorePermit,
}

impl BytePermit {
    /// Bytes this permit holds (capped at the budget's size).
    pub fn bytes(&self) -> usize {
        self.permit.num_permits()
    }

    /// Grows the permit to hold `total` bytes, or `OverBudget` (the permit
    /// keeps what it held). Never shrinks it.
    pub fn grow_to(&mut self, total: usize) -> Result<(), OverBudget> {
        let held = self.bytes();
        let wanted = self.budget.fit(total) as usize;
        if wanted <= held {
            return Ok(());
        }
        let extra = self
            .budget
            .0
            .semaphore
            .clone()
            .try_acquire_many_owned((wanted - held) as u32)
            .map_err(|_| self.budget.over(total))?;
        self.permit.merge(extra);
        self.budget.note_peak();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_hold_bytes_until_dropped_and_refuse_past_the_budget() {
        let budget = ByteBudget::new(1_000);
        let first = budget.try_take(600).expect("fits");
        assert_eq!(budget.in_use(), 600);
        assert_eq!(
            budget.try_take(500).map(|_| ()),
            Err(OverBudget {
                wanted: 500,
                capacity: 1_000
            })
        );
        let mut second = budget.try_take(300).expect("fits beside the first");
        assert!(second.grow_to(500).is_err(), "600 + 500 is over 1000");
        assert_eq!(second.bytes(), 300, "a refused growth keeps what was held");
        drop(first);
        second.grow_to(900).expect("alone now");
        assert_eq!((budget.in_use(), budget.peak()), (900, 900));
        drop(second);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_request_larger_than_the_budget_passes_alone() {
        let budget = ByteBudget::new(100);
        let big = budget.try_take(10_000).expect("alone");
        assert_eq!(big.bytes(), 100);
        assert!(budget.try_take(1).is_err());
    }
}
