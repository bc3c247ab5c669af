//! Queries over the stored spans. Each function takes a read-only connection
//! and returns model values; spans come back through the same OTLP → model
//! conversion that ingest uses.

use super::groups::{self, Blocks};
use super::{StoreError, encode, migrations};
use crate::stage::Stage;
use crate::storage::{Dependency, PageRequest, Pager, RateRow, SpanKey, TracePage};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use otelite_model::otlp;
use otelite_model::{Span, SpanId, SpanKind, TraceId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use std::path::Path;

/// Opens an existing otelite database for reading only, as the command
/// line does: no writer, no migration, and a clear error for a file that is
/// missing, a directory, or not an otelite database.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Open {
            path: path.to_owned(),
            source: rusqlite::Error::InvalidPath(path.to_owned()),
        });
    }
    if path.is_dir() {
        return Err(StoreError::IsDirectory(path.to_owned()));
    }
    let conn = open_without_writer(path)?;
    let contents = migrations::contents(&conn).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    let migrations::Contents::Otelite(version) = contents else {
        return Err(StoreError::NotOtelite(path.to_owned()));
    };
    if version < migrations::CURRENT_VERSION {
        return Err(StoreError::Outdated {
            path: path.to_owned(),
            found: version,
            current: migrations::CURRENT_VERSION,
        });
    }
    if version > migrations::CURRENT_VERSION {
        return Err(migrations::MigrationError::TooNew {
            found: version,
            supported: migrations::CURRENT_VERSION,
        }
        .into());
    }
    Ok(conn)
}

/// A connection for reading a file no writer of this process holds (the
/// reading commands'). It opens read-write, never creating the file, but
/// `query_only`: SQLite removes the `-wal` and `-shm` files when the last
/// connection to a database closes only if that connection may write, so
/// read-only ones left them beside a stopped server's database.
pub(super) fn open_without_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    super::plans::keep_plans(&conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA query_only = 1;")?;
    Ok(conn)
}

/// One page of a trace's stored spans (see `storage::trace_page`); `None`
/// when there are none. The trace's blocks are decoded one at a time and
/// only the page's spans are kept, so a huge trace costs the page's memory
/// and one block's, not the trace's.
pub fn trace_page(
    conn: &Connection,
    trace_id: &TraceId,
    request: PageRequest,
) -> Result<Option<TracePage>, StoreError> {
    let Some(trace_ref) = trace_ref(conn, trace_id)? else {
        return Ok(None);
    };
    let mut groups = groups::groups_of_trace(conn, trace_ref)?;
    // Groups sharing a block next to each other, so each block is
    // decompressed once and dropped before the next.
    groups.sort_by_key(|(group, _)| group.block_id);
    let mut pager = Pager::new(request);
    let mut blocks = Blocks::default();
    let mut block_id = None;
    for (group, ids) in groups {
        if block_id != Some(group.block_id) {
            blocks = Blocks::default();
            block_id = Some(group.block_id);
        }
        // Decoding is work between SQLite's steps: held to the read's limit here.
        super::reader::check_limit()?;
        for span in blocks.spans_with_ids(conn, &group, trace_id, &ids)? {
            let key = SpanKey {
                start_ns: span.start_time_unix_nano,
                span_id: SpanId(span.span_id.as_slice().try_into().unwrap_or_default()),
            };
            pager.offer(
                key,
                span.end_time_unix_nano,
                ((group.resource_id, group.scope_id), span),
            );
        }
    }
    let Some((kept, page)) = pager.finish() else {
        return Ok(None);
    };
    // The page's spans, in runs of one resource and scope, through the one
    // conversion; then back into the page's order.
    let mut parts: Vec<((i64, i64), Vec<PbSpan>)> = Vec::new();
    for (origin, span) in kept {
        match parts.last_mut() {
            Some((last, spans)) if *last == origin => spans.push(span),
            _ => parts.push((origin, vec![span])),
        }
    }
    let mut spans = assemble(conn, parts)?;
    spans.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    Ok(Some(TracePage { spans, ..page }))
}

/// All stored spans of a trace, by start time; `None` when there are none.
/// For tests and checks: answers go through [`trace_page`].
pub fn trace(conn: &Connection, trace_id: &TraceId) -> Result<Option<Vec<Span>>, StoreError> {
    Ok(trace_page(conn, trace_id, PageRequest::first(usize::MAX))?.map(|page| page.spans))
}

/// The row id of a trace's summary, which its span groups refer to.
pub fn trace_ref(conn: &Connection, trace_id: &TraceId) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM traces WHERE trace_id = ?1")?
        .query_row([&trace_id.0[..]], |r| r.get(0))
        .optional()?)
}

/// Stored spans back to model spans: each run of spans with the resource
/// and scope it was stored under, through the one OTLP → model conversion.
pub fn assemble(
    conn: &Connection,
    parts: Vec<((i64, i64), Vec<PbSpan>)>,
) -> Result<Vec<Span>, StoreError> {
    let mut request = ExportTraceServiceRequest::default();
    for ((resource_id, scope_id), spans) in parts {
        let mut resource_spans = encode::decode_resource(&body_of(conn, "resources", resource_id)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut scope_spans = encode::decode_scope(&body_of(conn, "scopes", scope_id)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        scope_spans.spans = spans;
        resource_spans.scope_spans.push(scope_spans);
        request.resource_spans.push(resource_spans);
    }
    let converted = otlp::from_otlp(request);
    if let Some(invalid) = converted.rejected.first() {
        return Err(StoreError::Corrupt(invalid.to_string()));
    }
    Ok(converted.spans)
}

fn body_of(conn: &Connection, table: &str, id: i64) -> Result<Vec<u8>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT body FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| r.get(0))?)
}

/// Stage counts and losses (with their reason) summed over the minutes
/// in `[start_minute, end_minute]`.
pub fn stage_counts(
    conn: &Connection,
    service: Option<&str>,
    start_minute: i64,
    end_minute: i64,
) -> Result<Vec<RateRow>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT v.name, c.stage, NULL, SUM(c.n) FROM stage_counts c JOIN services v ON v.id = c.service_id
         WHERE (?1 IS NULL OR v.name = ?1) AND c.minute BETWEEN ?2 AND ?3
         GROUP BY v.name, c.stage
         UNION ALL
         SELECT v.name, l.stage, l.reason, SUM(l.n) FROM stage_losses l JOIN services v ON v.id = l.service_id
         WHERE (?1 IS NULL OR v.name = ?1) AND l.minute BETWEEN ?2 AND ?3
         GROUP BY v.name, l.stage, l.reason
         ORDER BY 1, 2, 3",
    )?;
    let rows = statement.query_map(params![service, start_minute, end_minute], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (service, stage, reason, n) = row?;
        let stage = Stage::parse(&stage)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown stage {stage}")))?;
        out.push(RateRow {
            service,
            stage,
            reason,
            // Live spans are subtracted as they come: a window can hold
            // more subtracted than added.
            n: n.max(0) as u64,
        });
    }
    Ok(out)
}

/// Names of the services with stored spans, sorted: a service whose spans
/// retention deleted is not listed (its row stays, for its rates).
pub fn services(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT v.name FROM services v
         WHERE EXISTS (SELECT 1 FROM span_groups g WHERE g.service_id = v.id)
         ORDER BY v.name",
    )?;
    let rows = statement.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Operation names of a service with their span kinds, sorted.
pub fn operations(
    conn: &Connection,
    service: &str,
    kind: Option<SpanKind>,
) -> Result<Vec<(String, SpanKind)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT o.name, o.kind FROM operations o
         WHERE o.service_id = (SELECT id FROM services WHERE name = ?1) AND (?2 IS NULL OR o.kind = ?2)
         ORDER BY o.name, o.kind",
    )?;
    let rows = statement.query_map(params![service, kind.map(SpanKind::as_i32)], |r| {
        Ok((r.get::<_, String>(0)?, SpanKind::from_i32(r.get(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The service graph between `start_ns` and `end_ns` (by the calls' start
/// minute), from the edges analysis found at ingest.
pub fn dependencies(
    conn: &Connection,
    start_ns: u64,
    end_ns: u64,
) -> Result<Vec<Dependency>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT p.name, c.name, SUM(e.calls), SUM(e.errors) FROM service_edges e
         JOIN services p ON p.id = e.parent_service_id JOIN services c ON c.id = e.child_service_id
         WHERE e.minute BETWEEN ?1 AND ?2 GROUP BY p.name, c.name ORDER BY p.name, c.name",
    )?;
    let rows = statement.query_map(
        params![
            crate::stage::minute_of(start_ns),
            crate::stage::minute_of(end_ns)
        ],
        |r| {
            Ok(Dependency {
                parent: r.get(0)?,
                child: r.get(1)?,
                call_count: r.get::<_, i64>(2)?.max(0) as u64,
                error_count: r.get::<_, i64>(3)?.max(0) as u64,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
