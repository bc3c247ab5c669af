//! Query latency at scale: seeds a backend through the real ingest path
//! (OTLP/HTTP protobuf) and times the query API over loopback.
//!
//! `cargo run --release --example query_bench -- [spans, default 1000000] [rounds, default 200]`
//! (`OTELITE_CLICKHOUSE_URL=http://127.0.0.1:8123/bench` runs it against the
//! ClickHouse store instead of a temporary SQLite file.)
//!
//! `OTELITE_BENCH_QUERIES=search,trace` runs only the queries whose names
//! hold one of those words (the baseline always runs).
//! `OTELITE_BENCH_DB=PATH` runs the queries on a database seeded by an
//! earlier run with the same span count, without seeding again.
//!
//! Prints p50/p95/p99 per query, the database size and bytes per span, and,
//! as the same-run baseline, `GET /api/otelite/services` (the smallest
//! answer the server gives), so the other figures can be read as ratios.

#[path = "support/loader.rs"]
mod loader;
#[path = "support/workload.rs"]
mod workload;

/// The `otelite` binary's allocator, so the backend in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use prost::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SPANS_PER_REQUEST: u64 = 1000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn time_query(
    client: &reqwest::Client,
    base: &str,
    paths: &[String],
) -> Result<Vec<Duration>, reqwest::Error> {
    let mut times = Vec::with_capacity(paths.len());
    for path in paths {
        let started = Instant::now();
        let response = client.get(format!("{base}{path}")).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        times.push(started.elapsed());
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    times.sort();
    Ok(times)
}

fn trace_id_hex(trace: u64) -> String {
    format!(
        "{:016x}{:016x}",
        workload::mix(trace),
        workload::mix(!trace)
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let spans = args.first().copied().unwrap_or(1_000_000);
    let rounds = args.get(1).copied().unwrap_or(200) as usize;
    let batches = spans.div_ceil(SPANS_PER_REQUEST);

    // OTELITE_BENCH_DB names a database an earlier run of the same size
    // seeded (copied aside while it ran): the queries run on it at once.
    let reused = std::env::var_os("OTELITE_BENCH_DB").map(std::path::PathBuf::from);
    let dir = tempfile::tempdir()?;
    let db_path = reused
        .clone()
        .unwrap_or_else(|| dir.path().join("otelite.db"));
    let mut config = otelite_backend::Config {
        db_path: db_path.clone(),
        otlp_listen: "127.0.0.1:0".parse()?,
        otlp_grpc_listen: "127.0.0.1:0".parse()?,
        query_listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    if let Ok(url) = std::env::var("OTELITE_CLICKHOUSE_URL") {
        config.store = otelite_backend::StoreKind::Clickhouse;
        config.clickhouse_url = url;
    }
    let server = otelite_backend::Server::bind(config).await?;
    let (otlp, query) = (server.otlp_addr(), server.query_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let started = Instant::now();
    // Seed in slices so the encoded bodies never all sit in memory.
    let seed_batches = if reused.is_some() { 0 } else { batches };
    for first in (0..seed_batches).step_by(50) {
        let bodies: Vec<Vec<u8>> = (first..(first + 50).min(batches))
            .map(|b| workload::request(b, SPANS_PER_REQUEST).encode_to_vec())
            .collect();
        loader::post_all(&format!("http://{otlp}/v1/traces"), Arc::new(bodies), 4).await?;
    }
    let seeded = started.elapsed();
    if reused.is_none() {
        println!(
            "seeded {} spans in {:.1} s ({:.0} spans/s)",
            batches * SPANS_PER_REQUEST,
            seeded.as_secs_f64(),
            (batches * SPANS_PER_REQUEST) as f64 / seeded.as_secs_f64()
        );
    }

    let base = format!("http://{query}");
    let client = reqwest::Client::new();
    // Each round asks about a different trace, attribute value or window.
    let traces_stored = batches * SPANS_PER_REQUEST / 10;
    let pick = |round: usize| workload::mix(round as u64) % traces_stored;
    let trace_by_id: Vec<String> = (0..rounds)
        .map(|r| {
            let trace = pick(r);
            let (batch, index) = (trace / 100, trace % 100);
            format!(
                "/api/otelite/traces/{}",
                trace_id_hex(batch * 1_000_000 + index)
            )
        })
        .collect();
    let same = |path: &str| vec![path.to_owned(); rounds];
    let queries: Vec<(&str, Vec<String>)> = vec![
        ("list services (baseline)", same("/api/otelite/services")),
        ("trace by id", trace_by_id),
        ("search by service", same("/api/otelite/search?service=checkout&limit=20")),
        (
            "search by service + operation",
            (0..rounds).map(|r| format!("/api/otelite/search?service=checkout&operation=GET%20%2Fapi%2Fitem%2F{}&limit=20", r % 20)).collect(),
        ),
        (
            "search by attribute",
            (0..rounds).map(|r| format!("/api/otelite/search?attribute=attr.3%3Dvalue-3-{}&limit=20", r % 50)).collect(),
        ),
        (
            "search by attribute prefix",
            (0..rounds).map(|r| format!("/api/otelite/search?attributePrefix=attr.4%3Dvalue-4-{}&limit=20", r % 5)).collect(),
        ),
        (
            // Matches nothing: the first pass reads its 2048 groups in vain,
            // then FTS5's prefix query finds no term.
            "search by attribute prefix, no match",
            (0..rounds).map(|r| format!("/api/otelite/search?attributePrefix=attr.4%3Dvalue-9{}&limit=20", r % 5)).collect(),
        ),
        (
            "search by service + attribute",
            (0..rounds).map(|r| format!("/api/otelite/search?service=payments&attribute=attr.5%3Dvalue-5-{}&limit=20", r % 50)).collect(),
        ),
        (
            "search by service + duration",
            same("/api/otelite/search?service=payments&minDurationNanos=1009000&limit=20"),
        ),
        ("search errors", same("/api/otelite/search?error=true&limit=20")),
        ("dependencies", same("/api/otelite/dependencies")),
        ("rates", same("/api/rates")),
    ];
    // OTELITE_BENCH_QUERIES=rates,errors runs only the queries whose names
    // hold one of these words (and the baseline, always first).
    let only: Option<Vec<String>> = std::env::var("OTELITE_BENCH_QUERIES")
        .ok()
        .map(|list| list.split(',').map(str::to_owned).collect());
    let queries: Vec<(&str, Vec<String>)> = queries
        .into_iter()
        .enumerate()
        .filter(|(i, (name, _))| {
            *i == 0
                || only
                    .as_ref()
                    .is_none_or(|words| words.iter().any(|w| name.contains(w.as_str())))
        })
        .map(|(_, query)| query)
        .collect();
    let mut baseline_p50 = None;
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>12}",
        "query", "p50", "p95", "p99", "p50/baseline"
    );
    for (name, paths) in &queries {
        let times = time_query(&client, &base, paths).await?;
        let p50 = percentile(&times, 0.50);
        let baseline = *baseline_p50.get_or_insert(p50);
        println!(
            "{name:<32} {:>10.2?} {:>10.2?} {:>10.2?} {:>12.1}",
            p50,
            percentile(&times, 0.95),
            percentile(&times, 0.99),
            p50.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    let _ = stop.send(());
    serving.await??;
    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db_path.display())).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "database: {:.1} MiB, {:.0} bytes per span",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / (batches * SPANS_PER_REQUEST) as f64
    );
    Ok(())
}
