//! Ingest throughput of the backend against the store's physical limit,
//! both measured in this run on the same spans.
//!
//! `cargo run --release --example ingest -- [batches] [spans_per_batch] [concurrency]`
//!
//! 1. baseline: the spans as flat rows (ids, service, name, kind, times,
//!    status, attributes as one blob) inserted with a prepared statement,
//!    one transaction per 1000 rows, into a table with no secondary index;
//! 2. otelite: the same spans as OTLP/HTTP protobuf requests (encoded before
//!    timing starts) to a backend on loopback, `concurrency` at a time; a
//!    request counts once its 200 (= committed) has arrived.
//!
//! Prints spans/s of each and the ratio otelite / baseline.

#[path = "support/loader.rs"]
mod loader;
#[path = "support/workload.rs"]
mod workload;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::sync::Arc;
use std::time::Instant;
use workload::request;

fn baseline(
    requests: &[ExportTraceServiceRequest],
    path: &std::path::Path,
) -> rusqlite::Result<u64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE flat (trace_id BLOB, span_id BLOB, parent BLOB, service TEXT, name TEXT, kind INTEGER,
             start_ns INTEGER, end_ns INTEGER, status INTEGER, attributes BLOB);",
    )?;
    let mut rows = 0u64;
    let mut tx = conn.transaction()?;
    for request in requests {
        for rs in &request.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .map(|r| r.attributes[0].key.clone())
                .unwrap_or_default();
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                let attributes: Vec<u8> = span
                    .attributes
                    .iter()
                    .flat_map(|kv| kv.encode_to_vec())
                    .collect();
                tx.prepare_cached(
                    "INSERT INTO flat VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(rusqlite::params![
                    span.trace_id,
                    span.span_id,
                    span.parent_span_id,
                    service,
                    span.name,
                    span.kind,
                    span.start_time_unix_nano as i64,
                    span.end_time_unix_nano as i64,
                    0,
                    attributes
                ])?;
                rows += 1;
                if rows.is_multiple_of(1000) {
                    tx.commit()?;
                    tx = conn.transaction()?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(rows)
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

    let started = Instant::now();
    let rows = baseline(&requests, &dir.path().join("flat.db"))?;
    let baseline_rate = rows as f64 / started.elapsed().as_secs_f64();
    drop(requests);

    let config = otelite_backend::Config {
        db_path: dir.path().join("otelite.db"),
        otlp_listen: "127.0.0.1:0".parse()?,
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
