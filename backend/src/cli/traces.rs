//! `otelite traces` (search, newest first) and `otelite trace ID` (the span
//! tree as a waterfall, or the model spans as JSON).

use super::render::{self, Cell, Tone, WaterfallRow};
use super::services::parse_kind;
use super::source::Source;
use super::time::{Window, format_duration, format_time, parse_duration};
use super::{CliError, Common, Context, write_json};
use crate::storage::{TraceQuery, TraceSummary};
use otelite_model::{Span, SpanId, SpanKind, StatusCode, TraceId};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct TracesArgs {
    /// Traces with a span of this service (given empty: any, as the API's
    /// `service=`).
    #[arg(long)]
    pub service: Option<String>,
    /// Traces with a span of this name (given empty: any).
    #[arg(long)]
    pub operation: Option<String>,
    /// Traces with a span of this kind: server, client, internal, producer, consumer.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<SpanKind>,
    /// Traces with a span that has this attribute, `key=value`; repeatable.
    #[arg(long = "attr", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
    /// Traces with a span whose string attribute starts with a prefix,
    /// `key=prefix`; repeatable.
    #[arg(long = "attr-prefix", value_parser = parse_attribute)]
    pub attribute_prefixes: Vec<(String, String)>,
    /// Only traces with a failed span.
    #[arg(long)]
    pub error: bool,
    /// Traces with a span at least this long, e.g. 10ms.
    #[arg(long, value_parser = parse_duration)]
    pub min_duration: Option<Duration>,
    /// Traces with a span at most this long, e.g. 1s.
    #[arg(long, value_parser = parse_duration)]
    pub max_duration: Option<Duration>,
    #[command(flatten)]
    pub window: Window,
    /// Most traces to show.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// The trace id, 32 hex digits.
    pub id: String,
    #[command(flatten)]
    pub common: Common,
}

pub fn parse_attribute(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

pub async fn run_traces(
    args: &TracesArgs,
    source: &Source,
    out: &mut impl Write,
    context: Context,
) -> Result<(), CliError> {
    let (start_ns, end_ns) = args
        .window
        .resolve(context.now_ns)
        .map_err(CliError::BadArgument)?;
    let nanos = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
    let query = TraceQuery {
        service: super::filter(&args.service),
        operation: super::filter(&args.operation),
        kind: args.kind,
        attributes: args.attributes.clone(),
        attribute_prefixes: args.attribute_prefixes.clone(),
        error_only: args.error,
        min_duration_ns: args.min_duration.map(nanos),
        max_duration_ns: args.max_duration.map(nanos),
        start_ns,
        end_ns,
        limit: args.limit as usize,
        ..TraceQuery::default()
    };
    let traces = source.search(&query).await?;
    if args.common.json {
        #[derive(Serialize)]
        struct Body<'a> {
            traces: &'a [TraceSummary],
        }
        return write_json(out, &Body { traces: &traces });
    }
    if traces.is_empty() {
        writeln!(out, "no traces found")?;
        return Ok(());
    }
    let rows: Vec<Vec<Cell>> = traces.iter().map(summary_row).collect();
    let headers = [
        "TRACE ID", "START", "DURATION", "ROOT", "SPANS", "ERRORS", "SERVICES",
    ];
    Ok(render::table(out, &headers, &rows, context.colour)?)
}

fn summary_row(trace: &TraceSummary) -> Vec<Cell> {
    let root = match (&trace.root_service, &trace.root_name) {
        (Some(service), Some(name)) => Cell::plain(format!("{service}: {name}")),
        _ => Cell::toned("(root missing)", Tone::Faint),
    };
    let spans = if trace.orphan_span_count > 0 {
        format!(
            "{} ({} orphaned)",
            trace.span_count, trace.orphan_span_count
        )
    } else {
        trace.span_count.to_string()
    };
    let error_tone = if trace.error_count > 0 {
        Tone::Alert
    } else {
        Tone::Plain
    };
    let services: Vec<String> = trace
        .services
        .iter()
        .map(|s| format!("{}({})", s.name, s.span_count))
        .collect();
    vec![
        Cell::plain(&trace.trace_id),
        Cell::plain(format_time(trace.start_time_unix_nano)),
        Cell::plain(format_duration(trace.duration_nanos)),
        root,
        Cell::plain(spans),
        Cell::toned(trace.error_count.to_string(), error_tone),
        Cell::plain(services.join(" ")),
    ]
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceBody<'a> {
    trace_id: TraceId,
    spans: &'a [Span],
}

pub async fn run_trace(
    args: &TraceArgs,
    source: &Source,
    out: &mut impl Write,
    context: Context,
) -> Result<(), CliError> {
    let id = TraceId::from_hex(args.id.trim()).ok_or_else(|| {
        CliError::BadArgument(format!("trace id {:?} is not 32 hex digits", args.id))
    })?;
    let spans = source.trace(&id).await?;
    if args.common.json {
        return write_json(
            out,
            &TraceBody {
                trace_id: id,
                spans: &spans,
            },
        );
    }
    write_tree(out, &id, &spans, context.colour)
}

/// A trace as the `trace` command prints it: a header line and the
/// waterfall. Spans may come from a server otelite does not trust: any
/// times and parent ids must print (the fuzz target `cli_answers`).
pub fn write_tree(
    out: &mut impl Write,
    id: &TraceId,
    spans: &[Span],
    colour: bool,
) -> Result<(), CliError> {
    let start = spans
        .iter()
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_time_unix_nano)
        .max()
        .unwrap_or(start);
    let errors = spans
        .iter()
        .filter(|s| s.status.code == StatusCode::Error)
        .count();
    writeln!(
        out,
        "trace {id}  start {}  duration {}  spans {}  errors {}\n",
        format_time(start),
        format_duration(end.saturating_sub(start)),
        spans.len(),
        errors
    )?;
    render::waterfall(out, &tree_rows(spans), start, end, colour)?;
    Ok(())
}

/// The spans depth first, children by start time; a span whose parent is
/// not stored is shown as a root, and says so.
pub fn tree_rows(spans: &[Span]) -> Vec<WaterfallRow> {
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent_span_id.and_then(|p| index.get(&p)) {
            Some(&parent) if parent != i => children[parent].push(i),
            _ => roots.push(i),
        }
    }
    let mut rows = Vec::with_capacity(spans.len());
    let mut seen = vec![false; spans.len()];
    // Spans caught in a parent cycle are unreachable from the roots: they
    // come last, as roots of their own.
    for root in roots.into_iter().chain(0..spans.len()) {
        let mut stack = vec![(root, 0)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let span = &spans[i];
            let orphan = span.parent_span_id.is_some_and(|p| !index.contains_key(&p));
            rows.push(WaterfallRow {
                depth,
                name: if orphan {
                    format!("{} (parent not stored)", span.name)
                } else {
                    span.name.clone()
                },
                service: span.service_name().to_owned(),
                start_ns: span.start_time_unix_nano,
                end_ns: span.end_time_unix_nano,
                error: span.status.code == StatusCode::Error,
            });
            stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use otelite_model::{Resource, Scope, Status};
    use std::sync::Arc;

    fn span(id: u8, parent: Option<u8>, start: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            trace_state: String::new(),
            flags: 1,
            resource: Arc::new(Resource::new(vec![], 0, String::new())),
            scope: Arc::new(Scope::default()),
            name: format!("s{id}"),
            kind: SpanKind::Internal,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 10,
            status: Status::default(),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
        }
    }

    fn shape(spans: &[Span]) -> Vec<(usize, String)> {
        tree_rows(spans)
            .into_iter()
            .map(|row| (row.depth, row.name))
            .collect()
    }

    #[test]
    fn the_tree_is_depth_first_with_children_by_start() {
        let spans = [
            span(1, None, 0),
            span(2, Some(1), 1),
            span(3, Some(1), 2),
            span(4, Some(2), 3),
        ];
        let expected = [(0, "s1"), (1, "s2"), (2, "s4"), (1, "s3")];
        assert_eq!(shape(&spans), expected.map(|(d, n)| (d, n.to_owned())));
    }

    #[test]
    fn orphans_and_cycles_still_show_every_span_once() {
        let spans = [
            span(1, None, 0),
            span(2, Some(9), 1), // parent not stored
            span(3, Some(4), 2), // 3 and 4 are each other's parent
            span(4, Some(3), 3),
            span(5, Some(5), 4), // its own parent
        ];
        let expected = [
            (0, "s1"),
            (0, "s2 (parent not stored)"),
            (0, "s5"),
            (0, "s3"),
            (1, "s4"),
        ];
        assert_eq!(shape(&spans), expected.map(|(d, n)| (d, n.to_owned())));
    }

    #[test]
    fn attributes_are_key_equals_value() {
        assert_eq!(
            parse_attribute("user.id=7"),
            Ok(("user.id".into(), "7".into()))
        );
        assert_eq!(parse_attribute("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert_eq!(
            parse_attribute("empty="),
            Ok(("empty".into(), String::new()))
        );
        assert!(parse_attribute("=7").is_err());
        assert!(parse_attribute("novalue").is_err());
    }
}
