//! Ingest throughput of the backend against the store's physical limit,
//! both measured in this run on the same spans.
//!
//! `cargo run --release --example ingest -- [batches] [spans_per_batch] [concurrency]`
//!
//! 1. baseline: the spans as flat rows (ids, service, name, kind, times,
//!    status, attributes as one blob) inserted with a prepared statement,
//!    one transaction per 1000 rows, into a table with no secondary index
//!    (the rows are built before timing: only the inserts are timed);
//! 2. otelite: the same spans as OTLP/HTTP protobuf requests (encoded before
//!    timing starts) to a backend on loopback, `concurrency` at a time; a
//!    request counts once its 200 (= committed) has arrived.
//!
//! Prints spans/s of each and the ratio otelite / baseline.

#[path = "support/loader.rs"]
mod loader;
#[path = "support/workload.rs"]
mod workload;

/// The `otelite` binary's allocator, so the backend in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::sync::Arc;
use std::time::Instant;
use workload::request;

/// One span as the baseline's flat row, built before timing starts so that
/// the baseline measures SQLite's inserts alone.
struct FlatRow {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    service: String,
    name: String,
    kind: i32,
    start_ns: i64,
    end_ns: i64,
    attributes: Vec<u8>,
}

fn flat_rows(requests: &[ExportTraceServiceRequest]) -> Vec<FlatRow> {
    let mut rows = Vec::new();
    for request in requests {
        for rs in &request.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .map(|r| r.attributes[0].key.clone())
                .unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                rows.push(FlatRow {
                    trace_id: span.trace_id.clone(),
                    span_id: span.span_id.clone(),
                    parent: span.parent_span_id.clone(),
                    service: service.clone(),
                    name: span.name.clone(),
                    kind: span.kind,
                    start_ns: span.start_time_unix_nano as i64,
                    end_ns: span.end_time_unix_nano as i64,
                    attributes: span
                        .attributes
                        .iter()
                        .flat_map(|kv| kv.encode_to_vec())
                        .collect(),
                });
            }
        }
    }
    rows
}

/// Inserts the rows, 1000 per transaction; returns how many.
fn baseline(rows: &[FlatRow], path: &std::path::Path) -> rusqlite::Result<u64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE flat (trace_id BLOB, span_id BLOB, parent BLOB, service TEXT, name TEXT, kind INTEGER,
             start_ns INTEGER, end_ns INTEGER, status INTEGER, attributes BLOB);",
    )?;
    for chunk in rows.chunks(1000) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO flat VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for row in chunk {
                insert.execute(rusqlite::params![
                    row.trace_id,
                    row.span_id,
                    row.parent,
                    row.service,
                    row.name,
                    row.kind,
                    row.start_ns,
                    row.end_ns,
                    0,
                    row.attributes
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rows.len() as u64)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (batches, per_batch, concurrency) = (
        args.first().copied().unwrap_or(200),
        args.get(1).copied().unwrap_or(1000),
        args.get(2).copied().unwrap_or(4) as usize,
    );
    let requests: Vec<ExportTraceServiceRequest> =
        (0..batches).map(|b| request(b, per_batch)).collect();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(requests.iter().map(|r| r.encode_to_vec()).collect());
    let total = batches * per_batch;
    let dir = tempfile::tempdir()?;

    let flat = flat_rows(&requests);
    drop(requests);
    let started = Instant::now();
    let rows = baseline(&flat, &dir.path().join("flat.db"))?;
    let baseline_rate = rows as f64 / started.elapsed().as_secs_f64();
    drop(flat);

    let config = otelite_backend::Config {
        db_path: dir.path().join("otelite.db"),
        otlp_listen: "127.0.0.1:0".parse()?,
        otlp_grpc_listen: "127.0.0.1:0".parse()?,
        query_listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let server = otelite_backend::Server::bind(config).await?;
    let url = format!("http://{}/v1/traces", server.otlp_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    loader::post_all(&url, bodies, concurrency).await?;
    let otelite_rate = total as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    serving.await??;

    println!("spans: {total} in {batches} requests of {per_batch}, concurrency {concurrency}");
    println!("baseline (flat SQLite rows, no index): {baseline_rate:>10.0} spans/s");
    println!("otelite end to end (OTLP/HTTP → SQLite): {otelite_rate:>10.0} spans/s");
    println!(
        "ratio otelite / baseline: {:.3}",
        otelite_rate / baseline_rate
    );
    Ok(())
}
