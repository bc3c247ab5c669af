//! `otelite rates`: per service, how many spans each of the six stages saw
//! (and the collector hop, for all services, when a Collector reports)
//! (N) and what share of the baseline that is (R). Losses (R < 1) are
//! marked; stages nothing counted (exporter stages of SDKs without otelite's
//! counters) show as `-`. The `LOST (WHY)` column says where spans were
//! lost and why: each stage's losses by reason; `DROPPED BY POLICY` apart
//! from it (when rules dropped any), the spans keep/drop rules dropped, by
//! rule (not losses). `UPSTREAM LOSS (ESTIMATE)`, when any span's parent
//! never arrived: at least how many spans were lost before otelite, from
//! the parents still missing after the grace period (see `rates`).

use super::render::{self, Cell, Tone};
use super::source::Source;
use super::time::Window;
use super::{CliError, Common, Context, write_json};
use crate::rates::{Rates, StageRate, UpstreamLossEstimate};
use crate::stage::Stage;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct RatesArgs {
    /// Only this service (given empty: all, as the API's `service=`).
    #[arg(long)]
    pub service: Option<String>,
    #[command(flatten)]
    pub window: Window,
    /// How long after a span arrived its parent is waited for before the
    /// span counts as an orphan, in the upstream loss estimate; with
    /// --server the server's own orphan_grace applies
    #[arg(
        long,
        env = "OTELITE_ORPHAN_GRACE",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = super::time::parse_duration
    )]
    pub orphan_grace: Duration,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Serialize)]
struct RatesBody {
    start: u64,
    end: u64,
    #[serde(flatten)]
    report: crate::rates::RatesReport,
}

pub async fn run(
    args: &RatesArgs,
    source: &Source,
    out: &mut impl Write,
    context: Context,
) -> Result<(), CliError> {
    let (start, end) = args
        .window
        .resolve(context.now_ns)
        .map_err(CliError::BadArgument)?;
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(i64::MAX as u64));
    let service = super::filter(&args.service);
    let report = source
        .rates(service.as_deref(), start, end, args.orphan_grace)
        .await?;
    if args.common.json {
        return write_json(out, &RatesBody { start, end, report });
    }
    if report.services.is_empty() {
        writeln!(out, "no stage counts recorded")?;
        return Ok(());
    }
    // The collector hop is only known for all services together: its
    // column shows when a Collector reported, with the sum's row.
    let hop = report
        .all
        .stages
        .iter()
        .any(|s| s.stage == Stage::Collector);
    let stages: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|s| hop || *s != Stage::Collector)
        .collect();
    // Only where rules dropped spans: without rules the table is as it was.
    let drops = report
        .services
        .iter()
        .any(|r| r.stages.iter().any(|s| !s.dropped.is_empty()));
    // Only where a parent is missing: otherwise the table is as it was.
    let orphans = report
        .all
        .upstream_loss_estimate
        .as_ref()
        .is_some_and(|e| e.orphans > 0);
    let cells_of = |rates: &Rates| {
        let mut cells = row(rates, &stages);
        if drops {
            cells.push(dropped_cell(&rates.stages));
        }
        if orphans {
            cells.push(estimate_cell(rates.upstream_loss_estimate.as_ref()));
        }
        cells
    };
    let mut table: Vec<Vec<Cell>> = report.services.iter().map(cells_of).collect();
    // With one service the sum would repeat its row, but for the hop.
    if report.services.len() > 1 || hop {
        table.push(cells_of(&report.all));
    }
    let mut headers: Vec<String> = std::iter::once("SERVICE".to_owned())
        .chain(stages.iter().map(|s| s.as_str().to_uppercase()))
        .chain(std::iter::once("LOST (WHY)".to_owned()))
        .collect();
    if drops {
        headers.push("DROPPED BY POLICY".to_owned());
    }
    if orphans {
        headers.push("UPSTREAM LOSS (ESTIMATE)".to_owned());
    }
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    render::table(out, &headers, &table, context.colour)?;
    if let Some(note) = &report.all.note {
        writeln!(out, "\nnote: {}", super::escape::escaped(note))?;
    }
    if let Some(estimate) = report
        .all
        .upstream_loss_estimate
        .as_ref()
        .filter(|_| orphans)
    {
        writeln!(
            out,
            "\nupstream loss (estimate): at least {} spans lost before otelite: the parents \
             {} stored spans name, still missing {}s after those arrived",
            estimate.lower_bound, estimate.orphans, estimate.grace_seconds
        )?;
    }
    Ok(())
}

/// `>= 3 (5 orphans)`: at least how many spans were lost upstream, and of
/// how many stored spans' parents.
pub fn estimate_cell(estimate: Option<&UpstreamLossEstimate>) -> Cell {
    match estimate {
        Some(e) if e.orphans > 0 => Cell::toned(
            format!(">= {} ({} orphans)", e.lower_bound, e.orphans),
            Tone::Alert,
        ),
        Some(_) => Cell::plain("0"),
        None => Cell::toned("-", Tone::Faint),
    }
}

fn row(rates: &Rates, stages: &[Stage]) -> Vec<Cell> {
    let name = rates.service.clone().unwrap_or_else(|| "(all)".into());
    std::iter::once(Cell::plain(name))
        .chain(stages.iter().map(|&stage| {
            rates
                .stages
                .iter()
                .find(|s| s.stage == stage)
                .map_or_else(|| Cell::toned("-", Tone::Faint), stage_cell)
        }))
        .chain(std::iter::once(why_cell(&rates.stages)))
        .collect()
}

/// `collect 7970 (queue_full 7970); store 1 (conflict 1)`: each stage that
/// lost spans, with its reasons.
pub fn why_cell(stages: &[StageRate]) -> Cell {
    let losses: Vec<String> = stages
        .iter()
        .filter(|s| s.lost.unwrap_or(0) > 0 || !s.reasons.is_empty())
        .map(|s| {
            let reasons: Vec<String> = s.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
            let lost = s.lost.unwrap_or_else(|| s.reasons.values().sum());
            format!("{} {lost} ({})", s.stage.as_str(), reasons.join(", "))
        })
        .collect();
    if losses.is_empty() {
        Cell::toned("-", Tone::Faint)
    } else {
        Cell::toned(losses.join("; "), Tone::Alert)
    }
}

/// `analyze: health-checks 12 (12.0%), sample 8 (8.0%)`: each stage where
/// rules dropped spans, each rule with its count and share of the spans
/// that reached the stage.
pub fn dropped_cell(stages: &[StageRate]) -> Cell {
    let drops: Vec<String> = stages
        .iter()
        .filter(|s| !s.dropped.is_empty())
        .map(|s| {
            let rules: Vec<String> = s
                .dropped
                .iter()
                .map(|d| match d.share {
                    Some(share) => format!("{} {} ({:.1}%)", d.rule, d.n, share * 100.0),
                    None => format!("{} {}", d.rule, d.n),
                })
                .collect();
            format!("{}: {}", s.stage.as_str(), rules.join(", "))
        })
        .collect();
    if drops.is_empty() {
        Cell::toned("-", Tone::Faint)
    } else {
        Cell::toned(drops.join("; "), Tone::Policy)
    }
}

/// `N (R%)`; a loss gets a trailing `!` so it shows without colour too.
pub fn stage_cell(stage: &StageRate) -> Cell {
    match (stage.n, stage.rate) {
        (None, _) => Cell::toned("-", Tone::Faint),
        (Some(n), None) => Cell::plain(n.to_string()),
        (Some(n), Some(rate)) if rate < 1.0 => {
            Cell::toned(format!("{n} ({:.1}%) !", rate * 100.0), Tone::Alert)
        }
        (Some(n), Some(rate)) => Cell::plain(format!("{n} ({:.1}%)", rate * 100.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(n: Option<u64>, rate: Option<f64>) -> StageRate {
        StageRate {
            stage: Stage::Store,
            n,
            rate,
            lost: None,
            reasons: Default::default(),
            dropped: Vec::new(),
        }
    }

    #[test]
    fn cells_show_unknowns_and_mark_losses() {
        assert_eq!(
            stage_cell(&stage(None, None)),
            Cell::toned("-", Tone::Faint)
        );
        assert_eq!(stage_cell(&stage(Some(0), None)), Cell::plain("0"));
        assert_eq!(
            stage_cell(&stage(Some(10), Some(1.0))),
            Cell::plain("10 (100.0%)")
        );
        assert_eq!(
            stage_cell(&stage(Some(9), Some(0.9))),
            Cell::toned("9 (90.0%) !", Tone::Alert)
        );
    }

    #[test]
    fn the_why_column_names_each_stage_that_lost_spans_and_its_reasons() {
        let collect = StageRate {
            stage: Stage::Collect,
            n: Some(60),
            rate: Some(0.6),
            lost: Some(40),
            reasons: [("queue_full".to_owned(), 38), ("unaccounted".to_owned(), 2)].into(),
            dropped: Vec::new(),
        };
        let store = StageRate {
            stage: Stage::Store,
            n: Some(59),
            rate: Some(0.59),
            lost: Some(1),
            reasons: [("conflict".to_owned(), 1)].into(),
            dropped: Vec::new(),
        };
        let clean = StageRate {
            stage: Stage::Analyze,
            lost: Some(0),
            ..stage(Some(60), Some(0.6))
        };
        assert_eq!(
            why_cell(&[collect, clean.clone(), store]),
            Cell::toned(
                "collect 40 (queue_full 38, unaccounted 2); store 1 (conflict 1)",
                Tone::Alert
            )
        );
        assert_eq!(why_cell(&[clean]), Cell::toned("-", Tone::Faint));
    }

    #[test]
    fn the_estimate_cell_gives_the_lower_bound_and_the_orphans() {
        let estimate = |lower_bound, orphans| UpstreamLossEstimate {
            lower_bound,
            orphans,
            grace_seconds: 60,
        };
        assert_eq!(
            estimate_cell(Some(&estimate(2, 5))),
            Cell::toned(">= 2 (5 orphans)", Tone::Alert)
        );
        assert_eq!(estimate_cell(Some(&estimate(0, 0))), Cell::plain("0"));
        assert_eq!(estimate_cell(None), Cell::toned("-", Tone::Faint));
    }

    #[test]
    fn the_dropped_column_lists_each_rule_apart_from_the_losses() {
        let analyze = StageRate {
            stage: Stage::Analyze,
            lost: Some(0),
            dropped: vec![
                crate::rates::PolicyDrop {
                    rule: "health-checks".into(),
                    n: 12,
                    share: Some(0.12),
                },
                crate::rates::PolicyDrop {
                    rule: "sample".into(),
                    n: 8,
                    share: None,
                },
            ],
            ..stage(Some(80), Some(1.0))
        };
        assert_eq!(
            dropped_cell(std::slice::from_ref(&analyze)),
            Cell::toned("analyze: health-checks 12 (12.0%), sample 8", Tone::Policy)
        );
        assert_eq!(why_cell(&[analyze]), Cell::toned("-", Tone::Faint));
    }
}
