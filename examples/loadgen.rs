//! A load generator for the OTLP/HTTP receiver, cheap enough to run beside
//! the backend on the same cores.
//!
//! `cargo run --release --example loadgen -- [--format protobuf|json] [--gzip]
//!  [--workload varied|realistic] [--batch 1000] [--concurrency 4] [--rate 0] [--total 200000 | --duration 30]
//!  [--endpoint http://127.0.0.1:4318 | --spawn-backend]`
//!
//! Bodies are encoded once, before timing, from `workload::varied_request`
//! (traces of 5–50 spans over 5 services). Every id in the encoded template
//! is located once (raw bytes in protobuf, hex text in JSON); each request
//! then copies the template and XORs its ids with a per-request salt, in
//! place, so every request carries new trace and span ids with the parent
//! links intact. Gzip bodies cannot be patched in place: a pool of distinct
//! compressed bodies is built before timing (one per request with `--total`,
//! `--pool` of them with `--duration`; a reused one is a duplicate for the
//! backend, and the run says so).
//!
//! `--workload realistic` (the disk and peer benchmarks' workload: 10
//! services, unique user ids, URL paths and statements, see
//! `support/realistic.rs`) builds every body on its own before timing, in
//! the same pool; `--gzip --batch 500 --concurrency 8` is the shape the
//! benchmarks send.
//!
//! The requests run on a single-threaded runtime on a thread of their own, so
//! the generator's CPU share is that thread's CPU time over wall time
//! (`/proc/thread-self/schedstat`). Prints spans/s accepted (2xx), request
//! latency p50/p95/p99 (from sending to the whole answer), errors by status
//! and that CPU share.

#[path = "support/workload.rs"]
mod workload;

#[path = "support/realistic.rs"]
mod realistic;

/// The `otelite` binary's allocator, so the backend in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, ValueEnum};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Protobuf,
    Json,
}

/// Which spans the requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Traces of 5–50 spans over 5 services, from one template whose ids
    /// are rewritten per request (attribute values repeat).
    Varied,
    /// Traces of 5–50 spans over 10 services with unique user ids, URL
    /// paths and database statements: every request built on its own,
    /// before timing.
    Realistic,
}

#[derive(Debug, Parser)]
#[command(about = "OTLP/HTTP trace load generator")]
struct Args {
    /// Where the backend listens for OTLP/HTTP (`/v1/traces` is appended).
    #[arg(long, default_value = "http://127.0.0.1:4318")]
    endpoint: String,
    #[arg(long, value_enum, default_value = "protobuf")]
    format: Format,
    #[arg(long, value_enum, default_value = "varied")]
    workload: Workload,
    /// Compress bodies with gzip.
    #[arg(long)]
    gzip: bool,
    /// Spans per request.
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Requests per second to start; 0 = as fast as the backend answers.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Spans to send (rounded up to whole requests); the default unless --duration.
    #[arg(long, conflicts_with = "duration")]
    total: Option<u64>,
    /// Seconds to send for, instead of --total.
    #[arg(long)]
    duration: Option<f64>,
    /// Distinct gzip (or realistic) bodies prepared for a --duration run.
    #[arg(long, default_value_t = 1000)]
    pool: usize,
    /// Salts the ids; runs with different seeds send different spans.
    /// Default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Start a backend in this process on port 0 with a temporary database.
    #[arg(long)]
    spawn_backend: bool,
    /// With --spawn-backend: keep its database at this path (a new file)
    /// instead of a temporary one.
    #[arg(long, requires = "spawn_backend")]
    db: Option<std::path::PathBuf>,
}

/// Where the ids sit in an encoded body.
#[derive(Debug, Clone, Copy)]
enum IdAt {
    /// A 16-byte trace id, or 8-byte span id, as raw bytes.
    Raw { offset: usize, len: usize },
    /// The same as lowercase hex text.
    Hex { offset: usize, len: usize },
}

/// An encoded request whose ids can be rewritten.
struct Template {
    body: Vec<u8>,
    ids: Vec<IdAt>,
}

impl Template {
    fn new(format: Format, batch: u64) -> Self {
        let request = workload::varied_request(1, batch);
        let spans = request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans);
        let mut known: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut expected = 0;
        for span in spans {
            known.insert(span.trace_id[..8].to_vec(), 16);
            known.insert(span.span_id.clone(), 8);
            expected += 2 + usize::from(!span.parent_span_id.is_empty());
        }
        let body = encode(format, &request);
        let ids = match format {
            Format::Protobuf => find_raw(&body, &known),
            Format::Json => find_hex(&body, &known),
        };
        // Every span has a trace id and a span id; all but the roots a parent.
        assert_eq!(ids.len(), expected, "every id found in the body, once");
        Self { body, ids }
    }

    /// The body with every id XORed with `salt` (same salt, same links).
    fn body(&self, salt: u64) -> Vec<u8> {
        let mut body = self.body.clone();
        let salt_bytes = salt.to_be_bytes();
        for id in &self.ids {
            match *id {
                IdAt::Raw { offset, len } => {
                    for (i, byte) in body[offset..offset + len].iter_mut().enumerate() {
                        *byte ^= salt_bytes[i % 8];
                    }
                }
                IdAt::Hex { offset, len } => {
                    for half in (offset..offset + len).step_by(16) {
                        let text = std::str::from_utf8(&body[half..half + 16]).expect("hex");
                        let value = u64::from_str_radix(text, 16).expect("hex") ^ salt;
                        body[half..half + 16].copy_from_slice(format!("{value:016x}").as_bytes());
                    }
                }
            }
        }
        body
    }
}

/// Offsets of known ids in a protobuf body: each is preceded by its length.
fn find_raw(body: &[u8], known: &HashMap<Vec<u8>, usize>) -> Vec<IdAt> {
    let mut ids = Vec::new();
    let mut i = 1;
    while i + 8 <= body.len() {
        match known.get(&body[i..i + 8]) {
            Some(&len) if body[i - 1] as usize == len && i + len <= body.len() => {
                ids.push(IdAt::Raw { offset: i, len });
                i += len;
            }
            _ => i += 1,
        }
    }
    ids
}

/// Offsets of known ids in a JSON body: quoted hex strings of 32 or 16 digits.
fn find_hex(body: &[u8], known: &HashMap<Vec<u8>, usize>) -> Vec<IdAt> {
    let mut ids = Vec::new();
    for (quote, _) in body.iter().enumerate().filter(|(_, b)| **b == b'"') {
        for len in [32, 16] {
            let (start, end) = (quote + 1, quote + 1 + len);
            let Some(text) = body.get(start..end) else {
                continue;
            };
            if body.get(end) != Some(&b'"') || !text.iter().all(u8::is_ascii_hexdigit) {
                continue;
            }
            let Ok(first) = hex::decode(&text[..16]) else {
                continue;
            };
            if known.get(&first) == Some(&(len / 2)) {
                ids.push(IdAt::Hex { offset: start, len });
            }
        }
    }
    ids
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

/// The bodies a run sends: patched per request, or a prepared gzip pool.
enum Bodies {
    Patched(Template),
    Pool(Vec<Vec<u8>>),
}

/// The salt of request `k`.
fn salt(seed: u64, k: u64) -> u64 {
    workload::mix(seed ^ workload::mix(k + 1))
}

impl Bodies {
    fn get(&self, seed: u64, k: u64) -> Vec<u8> {
        match self {
            Bodies::Patched(template) => template.body(salt(seed, k)),
            Bodies::Pool(pool) => pool[k as usize % pool.len()].clone(),
        }
    }
}

/// What one run saw.
#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
    ok: u64,
}

struct Plan {
    url: String,
    content_type: &'static str,
    gzip: bool,
    bodies: Bodies,
    seed: u64,
    requests: Option<u64>,
    deadline: Option<Duration>,
    rate: f64,
}

async fn worker(plan: Arc<Plan>, next: Arc<AtomicU64>, started: Instant) -> Outcome {
    let client = reqwest::Client::new();
    let mut outcome = Outcome::default();
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if plan.requests.is_some_and(|n| k >= n)
            || plan.deadline.is_some_and(|d| started.elapsed() >= d)
        {
            return outcome;
        }
        if plan.rate > 0.0 {
            let due = Duration::from_secs_f64(k as f64 / plan.rate);
            if plan.deadline.is_some_and(|d| due >= d) {
                return outcome;
            }
            tokio::time::sleep_until((started + due).into()).await;
        }
        let mut request = client
            .post(&plan.url)
            .header("content-type", plan.content_type)
            .body(plan.bodies.get(plan.seed, k));
        if plan.gzip {
            request = request.header("content-encoding", "gzip");
        }
        let sent = Instant::now();
        let status = match request.send().await {
            Ok(response) => {
                let status = response.status();
                let read = response.bytes().await;
                match read {
                    Ok(_) if status.is_success() => None,
                    Ok(_) => Some(status.as_u16().to_string()),
                    Err(e) => Some(format!("body: {e}")),
                }
            }
            Err(e) if e.is_connect() => Some("connect".into()),
            Err(e) if e.is_timeout() => Some("timeout".into()),
            Err(_) => Some("transport".into()),
        };
        outcome.latencies.push(sent.elapsed());
        match status {
            None => outcome.ok += 1,
            Some(what) => *outcome.errors.entry(what).or_default() += 1,
        }
    }
}

/// CPU time of the calling thread (on-CPU nanoseconds from the scheduler).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// user + sys CPU time of the whole process (`/proc/self/stat`, USER_HZ = 100).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let total = ticks(11).unwrap_or(0) + ticks(12).unwrap_or(0);
    Duration::from_millis(total * 10)
}

/// Runs the plan on a current-thread runtime on this thread.
fn generate(plan: Plan, concurrency: usize) -> (Outcome, Duration, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let plan = Arc::new(plan);
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            workers.spawn(worker(plan.clone(), next.clone(), started));
        }
        let mut all = Outcome::default();
        while let Some(done) = workers.join_next().await {
            let done = done.expect("a worker panicked");
            all.latencies.extend(done.latencies);
            all.ok += done.ok;
            for (what, n) in done.errors {
                *all.errors.entry(what).or_default() += n;
            }
        }
        all
    });
    (outcome, started.elapsed(), thread_cpu() - cpu_before)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn bodies(args: &Args, seed: u64, requests: Option<u64>) -> Bodies {
    let batch = args.batch.max(1);
    let n = requests.map_or(args.pool, |n| n as usize).max(1) as u64;
    let compress = |body: Vec<u8>| if args.gzip { gzip(&body) } else { body };
    match args.workload {
        Workload::Varied if !args.gzip => Bodies::Patched(Template::new(args.format, batch)),
        Workload::Varied => {
            let template = Template::new(args.format, batch);
            Bodies::Pool(
                (0..n)
                    .map(|k| gzip(&template.body(salt(seed, k))))
                    .collect(),
            )
        }
        Workload::Realistic => {
            let base_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            Bodies::Pool(
                (0..n)
                    .map(|k| {
                        let request = realistic::realistic_request(seed, k, batch, base_ns);
                        compress(encode(args.format, &request))
                    })
                    .collect(),
            )
        }
    }
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Protobuf => "application/x-protobuf",
        Format::Json => "application/json",
    }
}

fn encode(format: Format, request: &ExportTraceServiceRequest) -> Vec<u8> {
    match format {
        Format::Protobuf => request.encode_to_vec(),
        Format::Json => serde_json::to_vec(request).expect("OTLP requests serialize"),
    }
}

/// What a run measured.
struct Report {
    outcome: Outcome,
    wall: Duration,
    /// CPU time of the load thread, and of the whole process.
    cpu: Duration,
    process: Duration,
    requests: Option<u64>,
    wire_len: usize,
    preparation: String,
    /// With `--spawn-backend`: spans in its database after the run.
    stored: Option<u64>,
    /// With `--spawn-backend`: the database's files at rest after the clean stop, bytes.
    at_rest: Option<u64>,
}

/// The database file with its WAL and shared-memory files, if any.
fn files_bytes(db: &std::path::Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

fn run(args: &Args) -> Result<Report, Box<dyn std::error::Error>> {
    let total = args.total.or(args.duration.is_none().then_some(200_000));
    let requests = total.map(|t| t.div_ceil(args.batch.max(1)));
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let bodies = bodies(args, seed, requests);
    let (wire_len, preparation) = match &bodies {
        Bodies::Patched(template) => (
            template.body.len(),
            format!("{} ids rewritten per request", template.ids.len()),
        ),
        Bodies::Pool(pool) => {
            let mean = pool.iter().map(Vec::len).sum::<usize>() / pool.len();
            let per_span = mean as f64 / args.batch.max(1) as f64;
            let what = if args.gzip { "gzip " } else { "" };
            (
                mean,
                format!(
                    "a pool of {} distinct {what}bodies, {per_span:.1} bytes per span",
                    pool.len()
                ),
            )
        }
    };

    // The backend, when asked for, runs on a runtime of its own.
    let backend_runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let db_path = args
        .db
        .clone()
        .unwrap_or_else(|| dir.path().join("otelite.db"));
    let (endpoint, stop, serving) = if args.spawn_backend {
        let config = otelite_backend::Config {
            db_path: db_path.clone(),
            otlp_listen: "127.0.0.1:0".parse()?,
            otlp_grpc_listen: "127.0.0.1:0".parse()?,
            query_listen: "127.0.0.1:0".parse()?,
            ..Default::default()
        };
        let server = backend_runtime.block_on(otelite_backend::Server::bind(config))?;
        let endpoint = format!("http://{}", server.otlp_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = backend_runtime.spawn(server.run(async move {
            let _ = stopped.await;
        }));
        (endpoint, Some(stop), Some(serving))
    } else {
        (args.endpoint.trim_end_matches('/').to_owned(), None, None)
    };

    let plan = Plan {
        url: format!("{endpoint}/v1/traces"),
        content_type: content_type(args.format),
        gzip: args.gzip,
        bodies,
        seed,
        requests,
        deadline: args.duration.map(Duration::from_secs_f64),
        rate: args.rate,
    };
    let concurrency = args.concurrency;
    let process_before = process_cpu();
    let (mut outcome, wall, cpu) = std::thread::Builder::new()
        .name("loadgen".into())
        .spawn(move || generate(plan, concurrency))?
        .join()
        .map_err(|_| "the load thread panicked")?;
    let process = process_cpu() - process_before;

    let mut stored = None;
    let mut at_rest = None;
    if let (Some(stop), Some(serving)) = (stop, serving) {
        let _ = stop.send(());
        backend_runtime.block_on(serving)??;
        let conn = rusqlite::Connection::open(&db_path)?;
        let spans: i64 =
            conn.query_row("SELECT coalesce(sum(span_count), 0) FROM traces", [], |r| {
                r.get(0)
            })?;
        stored = Some(spans as u64);
        drop(conn);
        at_rest = Some(files_bytes(&db_path));
    }
    outcome.latencies.sort();
    Ok(Report {
        outcome,
        wall,
        cpu,
        process,
        requests,
        wire_len,
        preparation,
        stored,
        at_rest,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let Report {
        outcome,
        wall,
        cpu,
        process,
        requests,
        wire_len,
        preparation,
        stored,
        at_rest,
    } = run(&args)?;
    let sent = outcome.latencies.len() as u64;
    let spans = outcome.ok * args.batch;
    println!(
        "{:?}{} · {:?} · {} spans/request ({} bytes on the wire, {preparation}) · concurrency {} · rate {}",
        args.format,
        if args.gzip { "+gzip" } else { "" },
        args.workload,
        args.batch,
        wire_len,
        args.concurrency,
        if args.rate > 0.0 {
            format!("{}/s", args.rate)
        } else {
            "max".into()
        },
    );
    println!(
        "sent {sent} requests in {:.2} s: {} accepted = {spans} spans",
        wall.as_secs_f64(),
        outcome.ok
    );
    println!("accepted: {:.0} spans/s", spans as f64 / wall.as_secs_f64());
    println!(
        "latency: p50 {:.1} ms · p95 {:.1} ms · p99 {:.1} ms",
        percentile(&outcome.latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&outcome.latencies, 0.95).as_secs_f64() * 1e3,
        percentile(&outcome.latencies, 0.99).as_secs_f64() * 1e3,
    );
    if outcome.errors.is_empty() {
        println!("errors: none");
    }
    for (what, n) in &outcome.errors {
        println!("errors: {n} × {what}");
    }
    if let Some(stored) = stored {
        println!("stored by the backend: {stored} spans");
        if let Some(bytes) = at_rest {
            println!(
                "database at rest after the stop: {bytes} bytes, {:.1} bytes per span",
                bytes as f64 / stored.max(1) as f64
            );
        }
    }
    let pooled = args.gzip || args.workload == Workload::Realistic;
    if pooled && requests.is_none() && sent > args.pool as u64 {
        println!(
            "warning: {} requests reused a body of the pool of {} (duplicates for the backend)",
            sent - args.pool as u64,
            args.pool
        );
    }
    println!(
        "loadgen CPU: {:.1} % of one core (its thread: {:.2} s over {:.2} s wall); whole process{}: {:.1} %",
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        if args.spawn_backend {
            ", backend included"
        } else {
            ""
        },
        100.0 * process.as_secs_f64() / wall.as_secs_f64(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few thousand spans through a backend in this process, in both
    /// encodings: every request accepted, and every span stored once (the
    /// rewritten ids are new in every request).
    #[test]
    fn smoke_run_stores_every_span_it_sends() -> Result<(), Box<dyn std::error::Error>> {
        for (format, gzip) in [(Format::Protobuf, true), (Format::Json, false)] {
            let args = Args::parse_from([
                "loadgen",
                "--spawn-backend",
                "--total",
                "3000",
                "--batch",
                "500",
                "--concurrency",
                "2",
                "--format",
                if format == Format::Json {
                    "json"
                } else {
                    "protobuf"
                },
            ]);
            let args = Args { gzip, ..args };
            let report = run(&args)?;
            assert_eq!(report.requests, Some(6));
            assert_eq!(
                report.outcome.ok, 6,
                "{format:?}: {:?}",
                report.outcome.errors
            );
            assert!(report.outcome.errors.is_empty());
            assert_eq!(report.outcome.latencies.len(), 6);
            assert_eq!(report.stored, Some(3000), "{format:?}");
            assert!(report.wire_len > 0);
        }
        Ok(())
    }
}
