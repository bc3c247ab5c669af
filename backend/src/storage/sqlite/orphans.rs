//! Orphans: stored spans whose parent never arrived. `edge_waiting` holds
//! every stored span whose parent is not stored (see `edges`), with when it
//! arrived; a row is deleted when the parent arrives, or with its trace by
//! retention. Those that arrived at least `grace` before `now_ns`
//! are counted per service (the orphan's own) and for all, with the
//! distinct parents they name.

use super::StoreError;
use crate::storage::Orphans;
use rusqlite::{Connection, params};
use std::time::Duration;

/// The window's orphans: one row per service that has any, then the row
/// for all (`service: None`, always there). `[start_minute, end_minute]`
/// are the minutes (unix seconds) of their arrival, as the stage counts'.
pub fn orphans(
    conn: &Connection,
    service: Option<&str>,
    start_minute: i64,
    end_minute: i64,
    now_ns: i64,
    grace: Duration,
) -> Result<Vec<Orphans>, StoreError> {
    let settled_before_ns =
        now_ns.saturating_sub(i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX));
    let from_ns = start_minute.saturating_mul(1_000_000_000);
    // The last minute's 60 seconds are in the window too.
    let to_ns = end_minute.saturating_add(60).saturating_mul(1_000_000_000);
    let window = params![service, from_ns, to_ns, settled_before_ns];
    // Each (trace, parent) with its children, per service.
    let per_parent = "SELECT w.child_service_id AS service_id, w.trace_ref, w.parent_span_id,
                             count(*) AS spans
                      FROM edge_waiting w JOIN services v ON v.id = w.child_service_id
                      WHERE (?1 IS NULL OR v.name = ?1)
                        AND w.arrived_ns >= ?2 AND w.arrived_ns < ?3 AND w.arrived_ns <= ?4
                      GROUP BY w.child_service_id, w.trace_ref, w.parent_span_id";
    let mut out = Vec::new();
    let mut by_service = conn.prepare_cached(&format!(
        "SELECT v.name, sum(p.spans), count(*) FROM ({per_parent}) p
         JOIN services v ON v.id = p.service_id GROUP BY v.name ORDER BY v.name"
    ))?;
    let rows = by_service.query_map(window, |r| {
        Ok(Orphans {
            service: Some(r.get(0)?),
            spans: r.get::<_, i64>(1)?.max(0) as u64,
            parents: r.get::<_, i64>(2)?.max(0) as u64,
            grace,
        })
    })?;
    for row in rows {
        out.push(row?);
    }
    // A parent may have children in several services: it is one span.
    let all = conn
        .prepare_cached(&format!(
            "SELECT coalesce(sum(spans), 0), count(*) FROM (
                 SELECT sum(p.spans) AS spans FROM ({per_parent}) p
                 GROUP BY p.trace_ref, p.parent_span_id)"
        ))?
        .query_row(window, |r| {
            Ok(Orphans {
                service: None,
                spans: r.get::<_, i64>(0)?.max(0) as u64,
                parents: r.get::<_, i64>(1)?.max(0) as u64,
                grace,
            })
        })?;
    out.push(all);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::QueueLimits;
    use crate::storage::sqlite::SqliteStore;
    use crate::test_fixtures as fixtures;
    use otelite_model::Span;

    const MINUTE: u64 = 60_000_000_000;
    const GRACE: Duration = Duration::from_secs(30);

    /// Trace `trace`: span 1 of `parent_service`, the root; spans 2..=`count`
    /// its children, of `service`.
    fn call(trace: u8, count: u8, parent_service: &str, service: &str) -> Vec<Span> {
        let (parent, child) = (
            fixtures::resource(parent_service),
            fixtures::resource(service),
        );
        (1..=count)
            .map(|i| {
                let resource = if i == 1 { &parent } else { &child };
                fixtures::span(trace, i)
                    .parent((i > 1).then_some(1))
                    .resource(resource)
                    .build()
            })
            .collect()
    }

    /// (service, spans, parents) of the minutes `[first, last]` (unix
    /// seconds), counted `at`.
    async fn counted(
        store: &SqliteStore,
        first: i64,
        last: i64,
        at: u64,
    ) -> Result<Vec<(Option<String>, u64, u64)>, StoreError> {
        store
            .read(move |conn| {
                Ok(orphans(conn, None, first, last, at as i64, GRACE)?
                    .into_iter()
                    .map(|o| (o.service, o.spans, o.parents))
                    .collect())
            })
            .await
    }

    #[tokio::test]
    async fn spans_whose_parent_never_came_count_after_the_grace_period_per_service()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let limits = QueueLimits {
            requests: 4,
            spans: 1000,
        };
        let (store, writer) = SqliteStore::open(&dir.path().join("t.db"), limits)?;
        // Minute 1: trace 1, front's root lost, its 2 shop children stored;
        // trace 2 whole (no orphan); trace 3's 3 children, whose root
        // comes a minute later; trace 4, a shop root lost with a pay child.
        let arrived = MINUTE;
        let mut batch = call(1, 3, "front", "shop")[1..].to_vec();
        batch.extend(call(2, 3, "front", "shop"));
        batch.extend(call(3, 4, "front", "shop")[1..].iter().cloned());
        batch.extend(call(4, 2, "shop", "pay")[1..].iter().cloned());
        fixtures::write(&store, batch, arrived).await?;
        // Trace 5, minute 2: a front root lost with children in shop and pay.
        let mut five = call(5, 2, "front", "shop")[1..].to_vec();
        five.extend(call(5, 3, "front", "pay")[2..].iter().cloned());
        // Span 3 of trace 5 is pay's, a child of span 1 like span 2.
        fixtures::write(&store, five, 2 * MINUTE).await?;
        let all = |spans, parents| (None, spans, parents);
        let shop = |spans, parents| (Some("shop".to_owned()), spans, parents);
        let pay = |spans, parents| (Some("pay".to_owned()), spans, parents);

        // Within the grace period nothing counts yet.
        let within = arrived + GRACE.as_nanos() as u64 - 1;
        assert_eq!(counted(&store, 0, 60, within).await?, vec![all(0, 0)]);
        // Trace 3's root arrives late, within the grace period.
        fixtures::write(&store, call(3, 1, "front", "shop"), 2 * MINUTE).await?;
        let later = 2 * MINUTE + GRACE.as_nanos() as u64 + 1;
        assert_eq!(
            counted(&store, 0, 60, later).await?,
            vec![pay(1, 1), shop(2, 1), all(3, 2)]
        );
        // Minute 2: trace 5's parent is one span, though two services miss it.
        assert_eq!(
            counted(&store, 120, 120, later).await?,
            vec![pay(1, 1), shop(1, 1), all(2, 1)]
        );
        assert_eq!(
            counted(&store, 0, 120, later).await?,
            vec![pay(2, 2), shop(3, 2), all(5, 3)]
        );
        let shop_only = store
            .read(move |conn| orphans(conn, Some("shop"), 0, 120, later as i64, GRACE))
            .await?;
        let shop_only: Vec<_> = shop_only
            .into_iter()
            .map(|o| (o.service, o.spans, o.parents))
            .collect();
        assert_eq!(shop_only, vec![shop(3, 2), all(3, 2)]);
        drop(store);
        writer.join();
        Ok(())
    }
}
