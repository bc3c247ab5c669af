//! What an exporter costs the app that uses it: CPU time per span of the same
//! instrumented app with a no-op exporter, with `opentelemetry-otlp`'s
//! OTLP/HTTP protobuf exporter and with otelite's exporter, measured in one
//! run against a real otelite backend on loopback.
//!
//! `cargo run --release --example exporter_cost -- [--spans 50000] [--rounds 5]
//!  [--rate 10000] [--backend sink|otelite]
//!  [--variants noop,official,official-gzip,otelite,otelite-none]`
//!
//! Method. The receiver runs in this process on loopback port 0: by default a
//! sink that reads each request whole and answers 200 with an empty body (so
//! that it always keeps up and costs the shared cores little), or with
//! `--backend otelite` a real otelite backend (temporary database; on a busy
//! machine it may fall behind, and then the queue drops: lower `--rate`).
//! Each variant of the app runs as a child process (this binary with
//! `--child`), so the receiver's CPU is never counted. The child builds its
//! provider, then reads its process CPU clock (`CLOCK_PROCESS_CPUTIME_ID`:
//! every thread, also those that have exited: the app thread, the SDK's batch
//! thread, the exporter's runtime or HTTP client thread), runs the workload,
//! calls `provider.shutdown()` (which flushes every span and, for otelite,
//! sends the final counters) and reads the clock again. Start-up is outside
//! the window; everything the exporter does for the spans is inside,
//! including the kernel's side of sending on loopback.
//!
//! Workload: traces of 10 nested spans (an HTTP server span, database and
//! HTTP client spans, internal spans), 10 attributes (strings and integers,
//! some formatted per request) and one event per span, through the SDK's
//! `BatchSpanProcessor` (batches of 512; queue of 16 384 so that a slow
//! backend moment drops nothing) in every variant, the no-op one included.
//! The app is paced at `--rate` spans/s so no exporter falls behind; the
//! child checks that every span reached the exporter and was acknowledged.
//!
//! Rounds alternate the variants (each round starts one further along the
//! list) to spread machine noise; the summary gives medians over rounds of
//! the CPU per span, of the cost added over the same round's no-op run, and
//! the ratio otelite / official of those added costs.

use clap::{Parser, ValueEnum};
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfig, BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use std::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Variant {
    /// A `SpanExporter` that drops every batch.
    Noop,
    /// `opentelemetry-otlp` HTTP/protobuf, its default (no compression), blocking reqwest client.
    Official,
    /// The same with gzip (flate2's default level).
    OfficialGzip,
    /// otelite's exporter as `build_provider` wires it: gzip (its default), counters, metrics report.
    Otelite,
    /// The same without compression.
    OteliteNone,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Noop => "noop",
            Self::Official => "official",
            Self::OfficialGzip => "official-gzip",
            Self::Otelite => "otelite",
            Self::OteliteNone => "otelite-none",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Noop => "no-op exporter (baseline)",
            Self::Official => "opentelemetry-otlp, protobuf",
            Self::OfficialGzip => "opentelemetry-otlp, protobuf + gzip",
            Self::Otelite => "otelite, protobuf + gzip (default)",
            Self::OteliteNone => "otelite, protobuf",
        }
    }
}

#[derive(Debug, Parser)]
#[command(about = "CPU per span that an exporter adds to the app using it")]
struct Args {
    /// Spans per run (one variant, one round); rounded up to whole traces of 10.
    #[arg(long, default_value_t = 50_000)]
    spans: u64,
    /// Rounds; each runs every variant once.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Spans per second the app creates.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Variants to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "noop,official,official-gzip,otelite,otelite-none"
    )]
    variants: Vec<Variant>,
    /// Internal: run one variant as the app against `--endpoint`.
    #[arg(long, value_enum, hide = true)]
    child: Option<Variant>,
    #[arg(long, hide = true, default_value = "")]
    endpoint: String,
    /// What receives the spans: a sink that reads each request and answers
    /// 200 with an empty body, or a real otelite backend (in this process).
    #[arg(long, value_enum, default_value = "sink")]
    backend: Backend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sink,
    Otelite,
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.child {
        Some(variant) => child(variant, &args.endpoint, args.spans, args.rate),
        None => parent(&args),
    }
}

// ---------------------------------------------------------------- the app

/// What one child run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    spans: u64,
    cpu_ns: u64,
    app_thread_ns: u64,
    wall_ns: u64,
    reached_exporter: u64,
    acknowledged: u64,
}

fn cpu_ns(clock: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Counts what reaches the exporter and what it reports as sent.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    reached: Arc<AtomicU64>,
    acknowledged: Arc<AtomicU64>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        self.reached.fetch_add(spans, Ordering::Relaxed);
        let sent = self.inner.export(batch);
        let acknowledged = self.acknowledged.clone();
        async move {
            let outcome = sent.await;
            if outcome.is_ok() {
                acknowledged.fetch_add(spans, Ordering::Relaxed);
            }
            outcome
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Drops every batch.
#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(batch);
        std::future::ready(Ok(()))
    }
}

fn batch_config() -> BatchConfig {
    BatchConfigBuilder::default()
        .with_max_queue_size(16_384)
        .with_max_export_batch_size(512)
        .build()
}

/// Reads (spans that reached the exporter, spans acknowledged) after the run.
type Counts = Box<dyn Fn() -> (u64, u64)>;

/// The provider of one variant, and how to read its counts afterwards.
fn provider(variant: Variant, endpoint: &str) -> Result<(SdkTracerProvider, Counts)> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(format!("exporter-cost-{}", variant.name()))
        .build();
    let reached = Arc::new(AtomicU64::new(0));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let counts = {
        let (reached, acknowledged) = (reached.clone(), acknowledged.clone());
        Box::new(move || {
            (
                reached.load(Ordering::Relaxed),
                acknowledged.load(Ordering::Relaxed),
            )
        }) as Counts
    };
    match variant {
        Variant::Noop => {
            let exporter = Counted {
                inner: NoopExporter,
                reached,
                acknowledged,
            };
            let processor = BatchSpanProcessor::new(exporter, batch_config());
            Ok((with(processor, resource), counts))
        }
        Variant::Official | Variant::OfficialGzip => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{endpoint}/v1/traces"));
            if variant == Variant::OfficialGzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            let exporter = Counted {
                inner: builder.build()?,
                reached,
                acknowledged,
            };
            let processor = BatchSpanProcessor::new(exporter, batch_config());
            Ok((with(processor, resource), counts))
        }
        Variant::Otelite | Variant::OteliteNone => {
            let mut builder = otelite_exporter::OteliteExporter::builder()
                .with_endpoint(endpoint)
                .with_batch_config(batch_config());
            if variant == Variant::OteliteNone {
                builder = builder.with_compression(otelite_exporter::Compression::None);
            }
            let counters = builder.counters();
            let counts = Box::new(move || {
                let snap = counters.snapshot();
                (snap.spans_collected, snap.spans_exported)
            });
            Ok((builder.build_provider(resource)?, counts))
        }
    }
}

fn with(
    processor: impl opentelemetry_sdk::trace::SpanProcessor + 'static,
    resource: opentelemetry_sdk::Resource,
) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(processor)
        .build()
}

/// One trace: name, kind and parent (index into this list) of each span.
const TRACE: [(&str, SpanKind, Option<usize>); 10] = [
    ("GET /api/orders/{id}", SpanKind::Server, None),
    ("authenticate", SpanKind::Internal, Some(0)),
    ("SELECT shop.sessions", SpanKind::Client, Some(1)),
    ("load order", SpanKind::Internal, Some(0)),
    ("SELECT shop.orders", SpanKind::Client, Some(3)),
    ("SELECT shop.order_items", SpanKind::Client, Some(3)),
    ("GET /inventory/stock", SpanKind::Client, Some(0)),
    ("GET cache", SpanKind::Client, Some(0)),
    ("render order", SpanKind::Internal, Some(0)),
    ("serialize json", SpanKind::Internal, Some(8)),
];

/// The attributes of a span of request `order`: static strings, integers
/// and values formatted per request, as instrumentation libraries set them.
fn attributes(order: u64, name: &'static str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/api/orders/{id}"),
        KeyValue::new("url.path", format!("/api/orders/{order}")),
        KeyValue::new("http.response.status_code", 200_i64),
        KeyValue::new("server.address", "shop.example.internal"),
        KeyValue::new("server.port", 8080_i64),
        KeyValue::new("user.id", format!("user-{}", order % 997)),
        KeyValue::new("order.id", order as i64),
        KeyValue::new("network.protocol.version", "1.1"),
        KeyValue::new("code.function.name", name),
    ]
}

fn one_trace(tracer: &opentelemetry_sdk::trace::Tracer, order: u64) {
    let mut contexts: Vec<Context> = Vec::with_capacity(TRACE.len());
    for (name, kind, parent) in TRACE {
        let parent = parent.map_or_else(Context::new, |p| contexts[p].clone());
        let mut span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes(order, name))
            .start_with_context(tracer, &parent);
        span.add_event(
            "cache.miss",
            vec![KeyValue::new("cache.key", format!("order:{order}"))],
        );
        contexts.push(Context::new().with_span(span));
    }
    // Children end before their parents.
    for cx in contexts.iter().rev() {
        cx.span().end();
    }
}

/// Creates `traces` traces at `rate` spans/s (checked every 10 traces).
fn workload(tracer: &opentelemetry_sdk::trace::Tracer, traces: u64, rate: u64) {
    let started = Instant::now();
    for order in 0..traces {
        one_trace(tracer, order);
        if order % 10 == 9 {
            let due = Duration::from_secs_f64(((order + 1) * 10) as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
}

/// The child: one variant of the app, measured; prints one line.
fn child(variant: Variant, endpoint: &str, spans: u64, rate: u64) -> Result<()> {
    let (provider, counts) = provider(variant, endpoint)?;
    let tracer = provider.tracer("shop-orders");
    let traces = spans.div_ceil(TRACE.len() as u64);
    let (process, thread) = (
        rustix::time::ClockId::ProcessCPUTime,
        rustix::time::ClockId::ThreadCPUTime,
    );
    let (cpu0, thread0, wall0) = (cpu_ns(process), cpu_ns(thread), Instant::now());
    workload(&tracer, traces, rate.max(1));
    // The app thread's own share, before shutdown makes it wait.
    let app_thread_ns = cpu_ns(thread) - thread0;
    provider.shutdown()?;
    let (cpu_ns, wall_ns) = (cpu_ns(process) - cpu0, wall0.elapsed().as_nanos() as u64);
    let (reached_exporter, acknowledged) = counts();
    println!(
        "{} {cpu_ns} {app_thread_ns} {wall_ns} {reached_exporter} {acknowledged}",
        traces * TRACE.len() as u64
    );
    Ok(())
}

// ------------------------------------------------------ the measuring side

fn run_child(
    exe: &std::path::Path,
    variant: Variant,
    endpoint: &str,
    args: &Args,
    spans: u64,
) -> Result<Run> {
    let output = std::process::Command::new(exe)
        .args(["--child", variant.name(), "--endpoint", endpoint])
        .args([
            "--spans",
            &spans.to_string(),
            "--rate",
            &args.rate.to_string(),
        ])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "{} run failed ({}): {}",
            variant.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let text = String::from_utf8(output.stdout)?;
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    let [
        spans,
        cpu_ns,
        app_thread_ns,
        wall_ns,
        reached_exporter,
        acknowledged,
    ] = numbers[..]
    else {
        return Err(format!("unexpected child output: {text:?}").into());
    };
    Ok(Run {
        spans,
        cpu_ns,
        app_thread_ns,
        wall_ns,
        reached_exporter,
        acknowledged,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn per_span(ns: u64, spans: u64) -> f64 {
    ns as f64 / 1000.0 / spans as f64
}

type Serving = tokio::task::JoinHandle<std::result::Result<(), Box<dyn Error + Send + Sync>>>;

/// Starts the receiver on loopback port 0: its base URL, a stop switch and
/// its task.
async fn start_backend(
    backend: Backend,
    dir: &std::path::Path,
) -> Result<(String, tokio::sync::oneshot::Sender<()>, Serving)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    match backend {
        Backend::Otelite => {
            let config = otelite_backend::Config {
                db_path: dir.join("otelite.db"),
                otlp_listen: "127.0.0.1:0".parse()?,
                otlp_grpc_listen: "127.0.0.1:0".parse()?,
                query_listen: "127.0.0.1:0".parse()?,
                ..Default::default()
            };
            let server = otelite_backend::Server::bind(config).await?;
            let endpoint = format!("http://{}", server.otlp_addr());
            let serving = tokio::spawn(async move {
                server
                    .run(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .map_err(Into::into)
            });
            Ok((endpoint, stop, serving))
        }
        Backend::Sink => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let endpoint = format!("http://{}", listener.local_addr()?);
            let serving = tokio::spawn(async move {
                tokio::select! {
                    _ = stopped => Ok(()),
                    outcome = sink(listener) => outcome,
                }
            });
            Ok((endpoint, stop, serving))
        }
    }
}

/// Reads every request whole and answers 200 with an empty body (an empty
/// `Export…ServiceResponse`: everything accepted).
async fn sink(listener: tokio::net::TcpListener) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, hyper::service::service_fn(accept_all))
                .await;
        });
    }
}

async fn accept_all(
    request: http::Request<hyper::body::Incoming>,
) -> std::result::Result<http::Response<http_body_util::Empty<bytes::Bytes>>, hyper::Error> {
    use http_body_util::BodyExt;
    request.into_body().collect().await?;
    let mut response = http::Response::new(http_body_util::Empty::new());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(response)
}

fn parent(args: &Args) -> Result<()> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (endpoint, stop, serving) = runtime.block_on(start_backend(args.backend, dir.path()))?;

    let variants = &args.variants;
    // Warm-up: page cache, connections, the backend's first transactions.
    for &variant in variants {
        run_child(&exe, variant, &endpoint, args, (args.spans / 10).max(10))?;
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
    println!("round  variant          CPU µs/span  app thread µs/span  wall s");
    for round in 0..args.rounds {
        for k in 0..variants.len() {
            let i = (round + k) % variants.len();
            let run = run_child(&exe, variants[i], &endpoint, args, args.spans)?;
            if run.reached_exporter != run.spans || run.acknowledged != run.spans {
                return Err(format!(
                    "{}: {} spans, {} reached the exporter, {} acknowledged: lower --rate",
                    variants[i].name(),
                    run.spans,
                    run.reached_exporter,
                    run.acknowledged
                )
                .into());
            }
            println!(
                "{round:>5}  {:<15}  {:>11.3}  {:>18.3}  {:>6.2}",
                variants[i].name(),
                per_span(run.cpu_ns, run.spans),
                per_span(run.app_thread_ns, run.spans),
                run.wall_ns as f64 / 1e9
            );
            runs[i].push(run);
        }
    }
    let _ = stop.send(());
    runtime.block_on(serving)??;
    summary(args, variants, &runs);
    Ok(())
}

fn summary(args: &Args, variants: &[Variant], runs: &[Vec<Run>]) {
    let noop = variants.iter().position(|v| *v == Variant::Noop);
    // Per round: the variant's CPU per span minus that round's no-op run.
    let added = |i: usize| -> Option<f64> {
        let noop = noop?;
        Some(median(
            runs[i]
                .iter()
                .zip(&runs[noop])
                .map(|(run, base)| {
                    per_span(run.cpu_ns, run.spans) - per_span(base.cpu_ns, base.spans)
                })
                .collect(),
        ))
    };
    println!();
    println!(
        "{} spans per run at {} spans/s, {} rounds, receiver: {:?}; medians over rounds",
        runs[0].first().map_or(0, |r| r.spans),
        args.rate,
        args.rounds,
        args.backend
    );
    println!();
    println!("| exporter | CPU µs/span | of which app thread | added over no-op |");
    println!("|---|---|---|---|");
    for (i, variant) in variants.iter().enumerate() {
        let cpu = median(
            runs[i]
                .iter()
                .map(|r| per_span(r.cpu_ns, r.spans))
                .collect(),
        );
        let app = median(
            runs[i]
                .iter()
                .map(|r| per_span(r.app_thread_ns, r.spans))
                .collect(),
        );
        let added = added(i).map_or("—".to_owned(), |a| format!("{a:.3}"));
        println!("| {} | {cpu:.3} | {app:.3} | {added} |", variant.describe());
    }
    let index = |v: Variant| variants.iter().position(|x| *x == v);
    let ratio = |ours: Variant, theirs: Variant| {
        let (a, b) = (added(index(ours)?)?, added(index(theirs)?)?);
        Some(a / b)
    };
    println!();
    for (ours, theirs) in [
        (Variant::Otelite, Variant::Official),
        (Variant::OteliteNone, Variant::Official),
        (Variant::Otelite, Variant::OfficialGzip),
    ] {
        if let Some(r) = ratio(ours, theirs) {
            println!(
                "added cost ratio {} / {}: {r:.2}",
                ours.name(),
                theirs.name()
            );
        }
    }
}
