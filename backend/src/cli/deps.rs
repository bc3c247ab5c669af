//! `otelite deps`: the service graph as edges, parent → child, with the
//! calls and failed calls counted over a time range.

use super::render::{self, Cell, Tone};
use super::source::Source;
use super::time::Window;
use super::{CliError, Common, Context, write_json};
use crate::storage::Dependency;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct DepsArgs {
    #[command(flatten)]
    pub window: Window,
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(
    args: &DepsArgs,
    source: &Source,
    out: &mut impl Write,
    context: Context,
) -> Result<(), CliError> {
    let (start, end) = args
        .window
        .resolve(context.now_ns)
        .map_err(CliError::BadArgument)?;
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(i64::MAX as u64));
    let edges = source.dependencies(start, end).await?;
    if args.common.json {
        #[derive(Serialize)]
        struct Body<'a> {
            dependencies: &'a [Dependency],
        }
        return write_json(
            out,
            &Body {
                dependencies: &edges,
            },
        );
    }
    if edges.is_empty() {
        writeln!(out, "no calls between services recorded")?;
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = edges
        .iter()
        .map(|edge| {
            let tone = if edge.error_count > 0 {
                Tone::Alert
            } else {
                Tone::Plain
            };
            vec![
                Cell::plain(&edge.parent),
                Cell::plain("→"),
                Cell::plain(&edge.child),
                Cell::plain(edge.call_count.to_string()),
                Cell::toned(edge.error_count.to_string(), tone),
            ]
        })
        .collect();
    let headers = ["PARENT", "", "CHILD", "CALLS", "ERRORS"];
    Ok(render::table(out, &headers, &rows, context.colour)?)
}
