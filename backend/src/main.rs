//! The `otelite` command: parses flags, then runs the backend (`serve`) or
//! one of the commands that read a database file (`otelite_backend::cli`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use otelite_backend::{Config, Server, cli};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    Serve {
        /// SQLite database file (created if missing).
        #[arg(long, default_value = "./otelite.db")]
        db: PathBuf,
        /// Address of the OTLP/HTTP receiver; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:4318")]
        otlp_listen: SocketAddr,
        /// Address of the query API; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:16686")]
        query_listen: SocketAddr,
        /// Largest request body in bytes, after decompression.
        #[arg(long, default_value_t = otelite_backend::DEFAULT_MAX_BODY_BYTES)]
        max_body_bytes: usize,
    },
    #[command(flatten)]
    Read(cli::Command),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "otelite_backend=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            db,
            otlp_listen,
            query_listen,
            max_body_bytes,
        } => {
            let config = Config {
                db_path: db.clone(),
                otlp_listen,
                query_listen,
                max_body_bytes,
                ..Config::default()
            };
            let server = Server::bind(config).await.context("starting otelite")?;
            // Scripts and tests read these lines to find the ports.
            println!("otelite: database {}", db.display());
            println!(
                "otelite: OTLP/HTTP listening on http://{}",
                server.otlp_addr()
            );
            println!(
                "otelite: query API listening on http://{}",
                server.query_addr()
            );
            server.run(shutdown_signal()).await.context("serving")?;
            println!("otelite: stopped");
            Ok(())
        }
        Command::Read(command) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            Ok(cli::run(&command, &mut out, cli::Context::detect())?)
        }
    }
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
