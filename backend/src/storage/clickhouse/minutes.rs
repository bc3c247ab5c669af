//! Where a search's newest spans are (schema version 8): `span_minutes`
//! counts spans per service, operation and minute of their start, so the
//! windows holding a service's newest N spans come from a few rows, where
//! finding them in `spans` took a top-N sort of every span of the service.
//!
//! The counts bound the spans a search over `spans` can match (its other
//! filters only take spans away), so a window's start is a guess that is
//! never wrong, only sometimes too narrow: the search widens then.

use super::http::{ClickHouseError, Client, quote};
use super::rowbinary::Reader;
use crate::storage::TraceQuery;

const NS_PER_MINUTE: u64 = 60_000_000_000;

/// Each window tried holds this many times the spans of the one before.
const WIDER: u64 = 8;

/// Windows tried before the whole one.
const TRIES: usize = 3;

/// At most this many of the newest minutes are read (a week is 10 080): an
/// older window is searched whole.
const MINUTES_READ: usize = 20_000;

/// Where the windows to try first start (nanoseconds, narrowest first):
/// the newest minutes holding `spans` of the query's service and
/// operation, then [`WIDER`] times as many, and so on, up to [`TRIES`];
/// only those inside `(start, upper]`.
pub async fn window_starts(
    client: &Client,
    query: &TraceQuery,
    days: &str,
    start: u64,
    upper: u64,
    spans: u64,
) -> Result<Vec<u64>, ClickHouseError> {
    let mut conditions = vec![
        days.to_owned(),
        format!(
            "minute BETWEEN {} AND {}",
            start / NS_PER_MINUTE,
            upper / NS_PER_MINUTE
        ),
    ];
    if let Some(service) = &query.service {
        conditions.push(format!("service = {}", quote(service)));
    }
    if let Some(operation) = &query.operation {
        conditions.push(format!("name = {}", quote(operation)));
    }
    let data = client
        .query(&format!(
            "SELECT toUInt64(greatest(minute, 0)) AS m, sum(spans) FROM span_minutes \
             WHERE {} GROUP BY m ORDER BY m DESC LIMIT {MINUTES_READ}",
            conditions.join(" AND ")
        ))
        .await?;
    let mut reader = Reader::new(&data);
    let mut counts = Vec::new();
    while !reader.is_empty() {
        counts.push((reader.u64()?, reader.u64()?));
    }
    Ok(starts(&counts, start, spans.max(1)))
}

/// The window starts for per-minute counts, newest minute first.
fn starts(counts: &[(u64, u64)], start: u64, spans: u64) -> Vec<u64> {
    let (mut out, mut wanted, mut seen) = (Vec::new(), spans, 0u64);
    for (minute, n) in counts {
        seen = seen.saturating_add(*n);
        if seen < wanted {
            continue;
        }
        let lower = minute.saturating_mul(NS_PER_MINUTE);
        if lower <= start || out.len() == TRIES {
            break;
        }
        out.push(lower);
        while wanted <= seen {
            wanted = wanted.saturating_mul(WIDER);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{NS_PER_MINUTE, starts};

    #[test]
    fn each_window_holds_eight_times_the_spans_of_the_one_before() {
        let counts: Vec<(u64, u64)> = (0..100).rev().map(|m| (m, 50)).collect();
        let minute = |m: u64| m * NS_PER_MINUTE;
        // 200 spans: 4 minutes; 1 600: 32; 12 800: more than there are.
        assert_eq!(starts(&counts, 0, 200), vec![minute(96), minute(68)]);
        // A minute holding more than asked for counts for the wider windows too.
        assert_eq!(starts(&[(9, 5000), (8, 1)], 0, 200), vec![minute(9)]);
        // Never the window's own start or before: that is the whole window.
        assert_eq!(starts(&counts, minute(96), 200), Vec::<u64>::new());
        assert_eq!(starts(&[], 0, 200), Vec::<u64>::new());
    }
}
