//! Stage counts the writer could not write yet. When a commit fails for a
//! reason that fails every transaction (a full disk), the counts that book
//! its spans as processed, analyzed and lost at the store fail to commit
//! too. They wait here, in memory: the next transaction that commits writes
//! them first (so a retried span that takes its failure back subtracts
//! counts that are there), and `/api/rates` adds them to what it reads
//! meanwhile, so an outage shows its loss while it lasts. Like the memory
//! of failed spans (`failed`), they do not survive a restart.

use crate::stage::Stage;
use crate::storage::RateRow;
use foldhash::{HashMap, HashMapExt};
use std::sync::{Mutex, MutexGuard};

/// Where a count goes: a stage count (`reason` none) or a loss.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub service: String,
    pub stage: Stage,
    pub reason: Option<String>,
    pub minute: i64,
}

#[derive(Debug, Default)]
pub struct Unwritten(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    counts: HashMap<CountKey, u64>,
    /// Bumped each time the counts are written: a reader that saw one
    /// generation before and after its read of the file counted nothing twice.
    generation: u64,
}

impl Unwritten {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The counts stay consistent whatever a panicking holder did.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add(&self, key: CountKey, n: u64) {
        if n > 0 {
            *self.lock().counts.entry(key).or_default() += n;
        }
    }

    /// The counts waiting, for the writer to put in its transaction.
    pub fn pending(&self) -> Vec<(CountKey, u64)> {
        let inner = self.lock();
        inner.counts.iter().map(|(k, n)| (k.clone(), *n)).collect()
    }

    /// Commits a transaction that wrote `written` (from [`Self::pending`])
    /// and forgets them when it commits. The lock is held across the commit
    /// when there were any, so no reader sees them both in the file and here.
    pub fn commit<E>(
        &self,
        written: &[(CountKey, u64)],
        commit: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        if written.is_empty() {
            return commit();
        }
        let mut inner = self.lock();
        commit()?;
        for (key, n) in written {
            if let Some(left) = inner.counts.get_mut(key) {
                *left = left.saturating_sub(*n);
                if *left == 0 {
                    inner.counts.remove(key);
                }
            }
        }
        inner.generation += 1;
        Ok(())
    }

    /// Runs `read` (a read of the file's counts) and adds the counts still
    /// waiting for the service (`None`: all) in the minutes asked for. A
    /// read that a write of the waiting counts overtook is read again.
    pub fn add_to<E>(
        &self,
        service: Option<&str>,
        minutes: (i64, i64),
        mut read: impl FnMut() -> Result<Vec<RateRow>, E>,
    ) -> Result<Vec<RateRow>, E> {
        const TRIES: usize = 3;
        for attempt in 1..=TRIES {
            let (generation, waiting) = {
                let inner = self.lock();
                (
                    inner.generation,
                    waiting_rows(&inner.counts, service, minutes),
                )
            };
            let rows = read()?;
            if waiting.is_empty() {
                return Ok(rows);
            }
            if self.lock().generation == generation || attempt == TRIES {
                return Ok(merge(rows, waiting));
            }
        }
        unreachable!("the last attempt returns")
    }
}

fn waiting_rows(
    counts: &HashMap<CountKey, u64>,
    service: Option<&str>,
    (start, end): (i64, i64),
) -> Vec<RateRow> {
    let mut sums: HashMap<(String, Stage, Option<String>), u64> = HashMap::new();
    for (key, n) in counts {
        let wanted = service.is_none_or(|s| s == key.service);
        if wanted && (start..=end).contains(&key.minute) {
            let at = (key.service.clone(), key.stage, key.reason.clone());
            *sums.entry(at).or_default() += n;
        }
    }
    sums.into_iter()
        .map(|((service, stage, reason), n)| RateRow {
            service,
            stage,
            reason,
            n,
        })
        .collect()
}

/// `rows` with `waiting` added: to the row of the same service, stage and
/// reason, or as a row of its own, in the file's order.
fn merge(mut rows: Vec<RateRow>, waiting: Vec<RateRow>) -> Vec<RateRow> {
    for extra in waiting {
        let same = rows.iter_mut().find(|row| {
            row.service == extra.service && row.stage == extra.stage && row.reason == extra.reason
        });
        match same {
            Some(row) => row.n += extra.n,
            None => rows.push(extra),
        }
    }
    rows.sort_by(|a, b| {
        (&a.service, a.stage.as_str(), &a.reason).cmp(&(&b.service, b.stage.as_str(), &b.reason))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str, stage: Stage, reason: Option<&str>, minute: i64) -> CountKey {
        CountKey {
            service: service.into(),
            stage,
            reason: reason.map(Into::into),
            minute,
        }
    }

    fn row(service: &str, stage: Stage, reason: Option<&str>, n: u64) -> RateRow {
        RateRow {
            service: service.into(),
            stage,
            reason: reason.map(Into::into),
            n,
        }
    }

    #[test]
    fn waiting_counts_are_added_to_the_rows_read_for_their_service_and_minutes() {
        let unwritten = Unwritten::default();
        unwritten.add(key("shop", Stage::Store, Some("write_failed"), 10), 30);
        unwritten.add(key("shop", Stage::Process, None, 10), 30);
        unwritten.add(key("shop", Stage::Process, None, 99), 5);
        unwritten.add(key("other", Stage::Process, None, 10), 7);
        let rows = unwritten.add_to(Some("shop"), (0, 20), || {
            Ok::<_, ()>(vec![
                row("shop", Stage::Process, None, 2),
                row("shop", Stage::Store, None, 2),
            ])
        });
        assert_eq!(
            rows,
            Ok(vec![
                row("shop", Stage::Process, None, 32),
                row("shop", Stage::Store, None, 2),
                row("shop", Stage::Store, Some("write_failed"), 30),
            ])
        );
    }

    #[test]
    fn committed_counts_are_forgotten_and_a_failed_commit_keeps_them() {
        let unwritten = Unwritten::default();
        unwritten.add(key("shop", Stage::Process, None, 1), 4);
        let pending = unwritten.pending();
        assert_eq!(
            unwritten.commit(&pending, || Err("disk full")),
            Err("disk full")
        );
        assert_eq!(unwritten.pending(), pending);
        // Added while the transaction ran: only what it wrote is forgotten.
        unwritten.add(key("shop", Stage::Process, None, 1), 1);
        assert_eq!(unwritten.commit(&pending, || Ok::<_, ()>(())), Ok(()));
        assert_eq!(
            unwritten.pending(),
            vec![(key("shop", Stage::Process, None, 1), 1)]
        );
    }

    #[test]
    fn a_read_overtaken_by_the_write_of_the_waiting_counts_is_read_again() {
        let unwritten = Unwritten::default();
        unwritten.add(key("shop", Stage::Process, None, 1), 4);
        let mut reads = 0;
        let rows = unwritten.add_to(None, (0, 5), || {
            reads += 1;
            if reads == 1 {
                // The writer commits them while this read runs: the file has them.
                let pending = unwritten.pending();
                unwritten.commit(&pending, || Ok::<_, ()>(()))?;
            }
            Ok::<_, ()>(vec![row("shop", Stage::Process, None, 4)])
        });
        assert_eq!(reads, 2);
        assert_eq!(rows, Ok(vec![row("shop", Stage::Process, None, 4)]));
    }
}
