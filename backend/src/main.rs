//! The `otelite` command: parses flags, then runs the backend (`serve`) or
//! one of the commands that read stored spans, from the database file or a
//! running server (`otelite_backend::cli`).

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use otelite_backend::{Config, LogFormat, RawConfig, Secret, Server, cli, load_config};
use std::net::SocketAddr;
use std::path::PathBuf;

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
enum Command {
    /// Receive OTLP/HTTP, store spans in SQLite and serve the query API.
    ///
    /// Each setting is taken from its flag, else its OTELITE_* environment
    /// variable, else the config file, else its default.
    Serve(ServeArgs),
    #[command(flatten)]
    Read(cli::Command),
    /// Exit 0 if a running otelite answers /readyz with 2xx, else 1 (a
    /// container HEALTHCHECK: scratch images have no curl).
    Health(cli::health::HealthArgs),
}

/// Flags only: `otelite_backend::load_config` adds the environment, the
/// file and the defaults, so the defaults are in the help text, not here.
#[derive(Args)]
struct ServeArgs {
    /// TOML file with the settings below as keys (db = "…", otlp_listen = "…")
    /// [env: OTELITE_CONFIG]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// SQLite database file (created if missing)
    /// [default: ./otelite.db] [env: OTELITE_DB]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Address of the OTLP/HTTP receiver; port 0 picks a free port
    /// [default: 127.0.0.1:4318] [env: OTELITE_OTLP_LISTEN]
    #[arg(long, value_name = "ADDR")]
    otlp_listen: Option<SocketAddr>,
    /// Address of the query API, /healthz, /readyz and /metrics; port 0 picks a free port
    /// [default: 127.0.0.1:16686] [env: OTELITE_QUERY_LISTEN]
    #[arg(long, value_name = "ADDR")]
    query_listen: Option<SocketAddr>,
    /// Largest request body in bytes, after decompression
    /// [default: 20971520] [env: OTELITE_MAX_BODY_BYTES]
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Write requests that may wait for the writer before new ones get 503
    /// [default: 256] [env: OTELITE_WRITE_QUEUE]
    #[arg(long, value_name = "N")]
    write_queue: Option<usize>,
    /// Spans that may wait for the writer before new requests get 503
    /// [default: 100000] [env: OTELITE_MAX_QUEUED_SPANS]
    #[arg(long, value_name = "N")]
    max_queued_spans: Option<usize>,
    /// OTLP requests read and decoded at once; more get 503 with Retry-After,
    /// which bounds memory [default: 16] [env: OTELITE_MAX_CONCURRENT_REQUESTS]
    #[arg(long, value_name = "N")]
    max_concurrent_requests: Option<usize>,
    /// Bearer token required on /v1/traces and /v1/metrics (prefer the
    /// variable: flags show in `ps`) [default: none] [env: OTELITE_INGEST_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    ingest_token: Option<Secret>,
    /// Bearer token required on /api/* and /metrics; /healthz, /readyz and
    /// the web UI's files stay open [default: none] [env: OTELITE_QUERY_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    query_token: Option<Secret>,
    /// PEM certificate chain: both listeners speak TLS (with --tls-key)
    /// [default: none] [env: OTELITE_TLS_CERT]
    #[arg(long, value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert [default: none] [env: OTELITE_TLS_KEY]
    #[arg(long, value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// Log lines as text or json (one object per line); the level comes
    /// from RUST_LOG [default: text] [env: OTELITE_LOG_FORMAT]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Delete traces that started longer ago than this (7d, 36h; 0 keeps all),
    /// in small batches in the background, and give the space back to the disk
    /// [default: 0] [env: OTELITE_RETENTION]
    #[arg(long, value_name = "AGE")]
    retention: Option<otelite_backend::storage::retention::Age>,
    /// Above this size (file in use plus WAL: 10GB, 512MiB; 0 is no limit),
    /// delete the oldest traces until under 90 % of it
    /// [default: 0] [env: OTELITE_MAX_DB_SIZE]
    #[arg(long, value_name = "SIZE")]
    max_db_size: Option<otelite_backend::storage::retention::ByteSize>,
    /// Where spans are kept: sqlite (the --db file) or clickhouse (--clickhouse-url)
    /// [default: sqlite] [env: OTELITE_STORE]
    #[arg(long, value_name = "STORE")]
    store: Option<otelite_backend::StoreKind>,
    /// ClickHouse's HTTP interface; a path names the database (default otelite),
    /// created if missing [default: http://127.0.0.1:8123] [env: OTELITE_CLICKHOUSE_URL]
    #[arg(long, value_name = "URL")]
    clickhouse_url: Option<String>,
}

impl ServeArgs {
    fn into_raw(self) -> (RawConfig, Option<PathBuf>) {
        let raw = RawConfig {
            db: self.db,
            otlp_listen: self.otlp_listen,
            query_listen: self.query_listen,
            max_body_bytes: self.max_body_bytes,
            write_queue: self.write_queue,
            max_queued_spans: self.max_queued_spans,
            max_concurrent_requests: self.max_concurrent_requests,
            ingest_token: self.ingest_token,
            query_token: self.query_token,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            log_format: self.log_format,
            retention: self.retention,
            max_db_size: self.max_db_size,
            store: self.store,
            clickhouse_url: self.clickhouse_url,
        };
        (raw, self.config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let (flags, file) = args.into_raw();
            let config = load_config(flags, file, |name| std::env::var(name).ok())?;
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
        otelite_backend::StoreKind::Sqlite => format!("database {}", config.db_path.display()),
        otelite_backend::StoreKind::Clickhouse => format!("ClickHouse {}", config.clickhouse_url),
    };
    let server = Server::bind(config).await.context("starting otelite")?;
    // Scripts and tests read these lines to find the ports.
    println!("otelite: {store}");
    let scheme = if server.tls() { "https" } else { "http" };
    println!(
        "otelite: OTLP/HTTP listening on {scheme}://{}",
        server.otlp_addr()
    );
    println!(
        "otelite: query API listening on {scheme}://{}",
        server.query_addr()
    );
    server.run(shutdown_signal()).await.context("serving")?;
    println!("otelite: stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The help text states the defaults by hand: keep it in step with `Config`.
    #[test]
    fn serve_help_names_each_variable_and_default() {
        let mut command = Cli::command();
        let help = command
            .find_subcommand_mut("serve")
            .map(|serve| serve.render_help().to_string())
            .unwrap_or_default();
        let defaults = Config::default();
        for expected in [
            "OTELITE_CONFIG".to_owned(),
            "OTELITE_DB".to_owned(),
            "OTELITE_OTLP_LISTEN".to_owned(),
            "OTELITE_QUERY_LISTEN".to_owned(),
            "OTELITE_MAX_BODY_BYTES".to_owned(),
            "OTELITE_WRITE_QUEUE".to_owned(),
            "OTELITE_MAX_QUEUED_SPANS".to_owned(),
            "OTELITE_MAX_CONCURRENT_REQUESTS".to_owned(),
            "OTELITE_INGEST_TOKEN".to_owned(),
            "OTELITE_QUERY_TOKEN".to_owned(),
            "OTELITE_TLS_CERT".to_owned(),
            "OTELITE_TLS_KEY".to_owned(),
            "OTELITE_LOG_FORMAT".to_owned(),
            "OTELITE_STORE".to_owned(),
            "OTELITE_CLICKHOUSE_URL".to_owned(),
            format!("[default: {}]", defaults.log_format),
            format!("[default: {}]", defaults.db_path.display()),
            format!("[default: {}]", defaults.otlp_listen),
            format!("[default: {}]", defaults.query_listen),
            format!("[default: {}]", defaults.max_body_bytes),
            format!("[default: {}]", defaults.write_queue_capacity),
            format!("[default: {}]", defaults.max_queued_spans),
            format!("[default: {}]", defaults.max_concurrent_requests),
        ] {
            assert!(
                help.contains(&expected),
                "serve --help lacks {expected}:\n{help}"
            );
        }
    }
}
