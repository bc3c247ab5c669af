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

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message;
use std::sync::Arc;
use std::time::Instant;

fn string(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// Traces of 10 spans over 3 services, ~10 attributes and an event per span.
fn request(batch: u64, spans: u64) -> ExportTraceServiceRequest {
    let services = ["frontend", "checkout", "payments"];
    let resource_spans = services
        .iter()
        .enumerate()
        .map(|(s, service)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service.to_string()),
                    string("host.name", "bench-1".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans: (0..spans)
                    .filter(|i| i % 3 == s as u64)
                    .map(|i| span(batch, i))
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn span(batch: u64, i: u64) -> Span {
    // Random-looking ids, as real ones are: the trace index sees no order.
    let trace = batch * 1_000_000 + i / 10;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&mix(trace).to_be_bytes());
    trace_id[8..].copy_from_slice(&mix(!trace).to_be_bytes());
    let span_id = (batch << 32 | i) + 1;
    let parent =
        (!i.is_multiple_of(10)).then(|| ((batch << 32 | (i - i % 10)) + 1).to_be_bytes().to_vec());
    let start = 1_700_000_000_000_000_000 + batch * 1_000_000_000 + i * 1000;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: parent.unwrap_or_default(),
        name: format!("GET /api/item/{}", i % 20),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000 + i * 10,
        attributes: (0..10)
            .map(|a| {
                string(
                    &format!("attr.{a}"),
                    format!("value-{}-{}", a, (i + a) % 50),
                )
            })
            .collect(),
        events: vec![span::Event {
            time_unix_nano: start + 10,
            name: "cache.miss".into(),
            attributes: vec![string("key", format!("k{i}"))],
            dropped_attributes_count: 0,
        }],
        ..Default::default()
    }
}

/// splitmix64's finaliser: a cheap bijection that scatters sequential input.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

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
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, bodies, next) =
                (client.clone(), url.clone(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<_, reqwest::Error>(());
                    };
                    loop {
                        let response = client
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .body(body.clone())
                            .send()
                            .await?;
                        if response.status().is_success() {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
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
