//! The `otelite` commands that read stored spans: each parses its flags
//! (clap), asks one question of its [`source`] and writes a table (or JSON
//! with `--json`) to `out`. The source is the database file, opened
//! read-only with no server running (`--db`, the default), or a running
//! `otelite serve` asked over its query API (`--server URL` or
//! `OTELITE_SERVER`, with `--query-token` or `OTELITE_QUERY_TOKEN`); the
//! output is the same for the same data.
//!
//! - [`source`]: the reader the flags name (the file, a ClickHouse
//!   database or a running server, each a `storage::TraceReader`) behind
//!   one set of typed answers.
//! - [`services`]: `services`, `operations SERVICE`
//! - [`traces`]: `traces`, a search; `trace ID`, the waterfall
//! - [`rates`]: `rates`, the six stages per service
//! - [`deps`]: `deps`, the service graph
//! - [`render`] and [`time`]: tables, waterfall, colour; durations and times.
//!
//! [`health`] (`otelite health`) stands apart: it only asks a running server
//! whether it is ready. [`report`] words any command's failure for stderr.

pub mod deps;
pub mod escape;
pub mod health;
pub mod rates;
pub mod render;
pub mod report;
pub mod services;
pub mod source;
pub mod time;
pub mod traces;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod untrusted_tests;

use crate::storage::StoreError;
use crate::storage::remote::RemoteError;
use serde::Serialize;
use source::Source;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(StoreError),
    /// From `--server`: named apart so its causes can be matched.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("no such file: {}", .0.display())]
    NoSuchFile(PathBuf),
    /// A query of the database file failed (a damaged file, say).
    #[error("cannot read {place}: {source}")]
    Database {
        place: String,
        source: rusqlite::Error,
    },
    /// `place` is the database file or the server's URL.
    #[error("no trace {id} in {place}")]
    UnknownTrace { id: String, place: String },
    #[error("no service {service:?} in {place}")]
    UnknownService { service: String, place: String },
    #[error("{0}")]
    BadArgument(String),
    /// A server's search pages that would never end.
    #[error("{place}: {source}")]
    Paging {
        place: String,
        source: source::PagingError,
    },
    /// A server that kept the whole command past its bound.
    #[error(
        "{place}: no complete answer within {deadline:?} ({} × --timeout for a whole command)",
        source::COMMAND_TIMEOUTS
    )]
    CommandTimeout { place: String, deadline: Duration },
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Remote(error) => Self::Remote(error),
            error => Self::Store(error),
        }
    }
}

/// Flags every reading command takes. The environment is read by
/// `Source::resolve`, so the help states those variables by hand.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// SQLite database file written by `otelite serve`, read with no server
    /// running [default: ./otelite.db]
    #[arg(long, value_name = "PATH", conflicts_with = "server")]
    pub db: Option<PathBuf>,
    /// Ask a running `otelite serve` instead: the URL of its query listener,
    /// e.g. http://127.0.0.1:16686 [env: OTELITE_SERVER]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Read a ClickHouse database that `otelite serve --store clickhouse`
    /// writes, e.g. http://127.0.0.1:8123/otelite (the path names the
    /// database), with no server running
    #[arg(long, value_name = "URL", conflicts_with_all = ["db", "server"])]
    pub clickhouse_url: Option<String>,
    /// With --server: the server's query token, sent as `Authorization:
    /// Bearer` (prefer the variable: flags show in `ps`) [env: OTELITE_QUERY_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub query_token: Option<String>,
    /// With an https --server: PEM certificates to trust besides Mozilla's
    /// roots (a private CA or a self-signed server) [env: OTELITE_SERVER_CA]
    #[arg(long, value_name = "PATH")]
    pub server_ca: Option<PathBuf>,
    /// With --server: give up on an answer that takes longer than this, and
    /// on the whole command after four times this
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = time::parse_duration)]
    pub timeout: Duration,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What a command needs from its surroundings, so tests can fix it.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// ANSI colour: on only when stdout is a terminal and `NO_COLOR` is
    /// unset (no-color.org).
    pub colour: bool,
    /// The instant `--since` counts back from.
    pub now_ns: u64,
    /// Reads an environment variable (`OTELITE_SERVER` and the like).
    pub var: fn(&str) -> Option<String>,
}

impl Context {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Self {
            colour: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            now_ns: crate::stage::now_ns(),
            var: |name| std::env::var(name).ok(),
        }
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// List the services that sent spans.
    Services(services::ServicesArgs),
    /// List a service's span names (operations) and kinds.
    Operations(services::OperationsArgs),
    /// Search traces, newest first.
    Traces(traces::TracesArgs),
    /// Show one trace as a span tree with a waterfall.
    Trace(traces::TraceArgs),
    /// Show how many spans got through each pipeline stage, per service.
    Rates(rates::RatesArgs),
    /// Show the calls between services.
    Deps(deps::DepsArgs),
}

impl Command {
    pub fn common(&self) -> &Common {
        match self {
            Command::Services(args) => &args.common,
            Command::Operations(args) => &args.common,
            Command::Traces(args) => &args.common,
            Command::Trace(args) => &args.common,
            Command::Rates(args) => &args.common,
            Command::Deps(args) => &args.common,
        }
    }
}

/// Runs `command`, writing to `out`. A closed pipe (`otelite traces | head`)
/// ends the output quietly.
pub async fn run(
    command: &Command,
    out: &mut impl Write,
    context: Context,
) -> Result<(), CliError> {
    let source = &Source::resolve(command.common(), context.var).await?;
    let work = async {
        match command {
            Command::Services(args) => services::run_services(args, source, out).await,
            Command::Operations(args) => services::run_operations(args, source, out).await,
            Command::Traces(args) => traces::run_traces(args, source, out, context).await,
            Command::Trace(args) => traces::run_trace(args, source, out, context).await,
            Command::Rates(args) => rates::run(args, source, out, context).await,
            Command::Deps(args) => deps::run(args, source, out, context).await,
        }
    };
    let result = match source.deadline() {
        Some(deadline) => tokio::time::timeout(deadline, work)
            .await
            .unwrap_or_else(|_| {
                Err(CliError::CommandTimeout {
                    place: source.place_name().to_owned(),
                    deadline,
                })
            }),
        None => work.await,
    }
    .and_then(|()| Ok(out.flush()?));
    match result {
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A filter flag given empty (`--service ""`) filters nothing, as the
/// query API takes `service=`: `--db` and `--server` then answer alike.
fn filter(value: &Option<String>) -> Option<String> {
    value.clone().filter(|value| !value.is_empty())
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
