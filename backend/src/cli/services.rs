//! `otelite services` and `otelite operations SERVICE`.

use super::render::{self, Cell};
use super::source::Source;
use super::{CliError, Common, write_json};
use otelite_model::SpanKind;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OperationsArgs {
    pub service: String,
    /// Only spans of this kind: server, client, internal, producer, consumer.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<SpanKind>,
    #[command(flatten)]
    pub common: Common,
}

pub async fn run_services(
    args: &ServicesArgs,
    source: &Source,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let services = source.services().await?;
    if args.common.json {
        #[derive(Serialize)]
        struct Body<'a> {
            services: &'a [String],
        }
        return write_json(
            out,
            &Body {
                services: &services,
            },
        );
    }
    for service in services {
        writeln!(out, "{}", super::escape::escaped(&service))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Operation<'a> {
    name: &'a str,
    kind: SpanKind,
}

pub async fn run_operations(
    args: &OperationsArgs,
    source: &Source,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let operations = source.operations(&args.service, args.kind).await?;
    if args.common.json {
        let operations: Vec<Operation> = operations
            .iter()
            .map(|(name, kind)| Operation { name, kind: *kind })
            .collect();
        #[derive(Serialize)]
        struct Body<'a> {
            service: &'a str,
            operations: Vec<Operation<'a>>,
        }
        let service = &args.service;
        return write_json(
            out,
            &Body {
                service,
                operations,
            },
        );
    }
    let rows: Vec<Vec<Cell>> = operations
        .iter()
        .map(|(name, kind)| vec![Cell::plain(name), Cell::plain(kind_name(*kind))])
        .collect();
    Ok(render::table(out, &["OPERATION", "KIND"], &rows, false)?)
}

pub use crate::text::{parse_span_kind as parse_kind, span_kind_name as kind_name};
