//! The `otelite` commands that read a database file directly, with no server
//! running: each parses its flags (clap), opens the file read-only, runs one
//! store query and writes a table (or JSON with `--json`) to `out`.
//!
//! - [`services`]: `services`, `operations SERVICE`
//! - [`traces`]: `traces`, a search; `trace ID`, the waterfall
//! - [`rates`]: `rates`, the six stages per service
//! - [`deps`]: `deps`, the service graph
//! - [`render`] and [`time`]: tables, waterfall, colour; durations and times.
//!
//! [`health`] (`otelite health`) is the exception: it asks a running server.

pub mod deps;
pub mod health;
pub mod rates;
pub mod render;
pub mod services;
pub mod time;
pub mod traces;

#[cfg(test)]
mod tests;

use crate::store::{self, StoreError};
use rusqlite::Connection;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such file: {}", .0.display())]
    NoSuchFile(PathBuf),
    #[error("no trace {id} in {}", db.display())]
    UnknownTrace { id: String, db: PathBuf },
    #[error("no service {service:?} in {}", db.display())]
    UnknownService { service: String, db: PathBuf },
    #[error("{0}")]
    BadArgument(String),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Flags every reading command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// SQLite database file written by `otelite serve`.
    #[arg(long, default_value = "./otelite.db")]
    pub db: PathBuf,
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
}

impl Context {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Self {
            colour: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            now_ns: time::now_ns(),
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

/// Runs `command`, writing to `out`. A closed pipe (`otelite traces | head`)
/// ends the output quietly.
pub fn run(command: &Command, out: &mut impl Write, context: Context) -> Result<(), CliError> {
    let result = match command {
        Command::Services(args) => services::run_services(args, out),
        Command::Operations(args) => services::run_operations(args, out),
        Command::Traces(args) => traces::run_traces(args, out, context),
        Command::Trace(args) => traces::run_trace(args, out, context),
        Command::Rates(args) => rates::run(args, out, context),
        Command::Deps(args) => deps::run(args, out, context),
    }
    .and_then(|()| Ok(out.flush()?));
    match result {
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn open(db: &Path) -> Result<Connection, CliError> {
    // Said plainly here: SQLite's own word for a missing file is vague.
    if !db.exists() {
        return Err(CliError::NoSuchFile(db.to_owned()));
    }
    Ok(store::open_read_only(db)?)
}

fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
