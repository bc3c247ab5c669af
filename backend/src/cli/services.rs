//! `otelite services` and `otelite operations SERVICE`.

use super::render::{self, Cell};
use super::{CliError, Common, open, write_json};
use crate::store;
use otelite_exporter::model::SpanKind;
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

pub fn run_services(args: &ServicesArgs, out: &mut impl Write) -> Result<(), CliError> {
    let services = store::services(&open(&args.common.db)?)?;
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
        writeln!(out, "{service}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Operation<'a> {
    name: &'a str,
    kind: SpanKind,
}

pub fn run_operations(args: &OperationsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let conn = open(&args.common.db)?;
    let operations = store::operations(&conn, &args.service, args.kind)?;
    if operations.is_empty() && !store::services(&conn)?.contains(&args.service) {
        return Err(CliError::UnknownService {
            service: args.service.clone(),
            db: args.common.db.clone(),
        });
    }
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

pub fn parse_kind(text: &str) -> Result<SpanKind, String> {
    KINDS
        .into_iter()
        .find(|kind| kind_name(*kind) == text.to_ascii_lowercase())
        .ok_or_else(|| {
            format!(
                "{text:?} is not a span kind: use server, client, internal, producer or consumer"
            )
        })
}

const KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

pub fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "unspecified",
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_in_any_case() {
        for kind in KINDS {
            assert_eq!(parse_kind(kind_name(kind)), Ok(kind));
        }
        assert_eq!(parse_kind("SERVER"), Ok(SpanKind::Server));
        assert!(parse_kind("serverless").is_err());
    }
}
