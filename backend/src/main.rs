//! The `otelite` command: parses flags, then runs the backend (`serve`) or
//! one of the commands that read stored spans, from the database file or a
//! running server (`otelite_backend::cli`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use otelite_backend::{Config, LogFormat, ServeArgs, Server, StoreKind, cli};
use std::process::ExitCode;

/// Ingest allocates per span (decoding, tokens, bodies) on every request
/// thread; mimalloc's thread-local free lists keep that off a shared lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "otelite",
    version,
    about = "A self-hosted OpenTelemetry trace store on SQLite that shows where spans were lost"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start-up: boxing a variant would save nothing worth having.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Receive OTLP/HTTP and OTLP/gRPC, store spans in SQLite and serve the query API.
    ///
    /// Each setting is taken from its flag, else its OTELITE_* environment
    /// variable, else the config file, else its default.
    Serve(Box<ServeArgs>),
    #[command(flatten)]
    Read(Box<cli::Command>),
    /// Exit 0 if a running otelite answers /readyz with 2xx, else 1 (a
    /// container HEALTHCHECK: scratch images have no curl).
    Health(cli::health::HealthArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: anyhow's `Debug` repeats every cause (and adds a
            // backtrace under RUST_BACKTRACE), which told each failure twice.
            eprintln!("Error: {}", cli::report::one_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = args.load()?;
            init_logs(config.log_format);
            serve(config).await
        }
        Command::Read(command) => {
            init_logs(LogFormat::Text);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            Ok(cli::run(&command, &mut out, cli::Context::detect()).await?)
        }
        Command::Health(args) => {
            let healthy = cli::health::run(&args, |name| std::env::var(name).ok()).await?;
            println!("{healthy}");
            Ok(())
        }
    }
}

/// Logs go to stderr (stdout carries the listening addresses); the level
/// comes from RUST_LOG.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "otelite_backend=info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = match config.store {
        StoreKind::Sqlite => format!("database {}", config.db_path.display()),
        StoreKind::Clickhouse => format!("ClickHouse {}", config.clickhouse_url),
    };
    let server = Server::bind(config).await.context("starting otelite")?;
    let shutdown = shutdown_signal();
    // Scripts and tests read these lines to find the ports.
    println!("otelite: {store}");
    let scheme = if server.tls() { "https" } else { "http" };
    println!(
        "otelite: OTLP/HTTP listening on {scheme}://{}",
        server.otlp_addr()
    );
    println!(
        "otelite: OTLP/gRPC listening on {scheme}://{}",
        server.otlp_grpc_addr()
    );
    println!(
        "otelite: query API listening on {scheme}://{}",
        server.query_addr()
    );
    server.run(shutdown).await.context("serving")?;
    println!("otelite: stopped");
    Ok(())
}

fn shutdown_signal() -> impl Future<Output = ()> {
    // Registered now, before the addresses are printed: a SIGTERM sent as
    // soon as they are must reach the handler, not the default action.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
