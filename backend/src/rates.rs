//! Stage rates: `R_stage = N_stage / N_total`, per service and for all,
//! and where spans were lost. Each lost span is counted once, at the first
//! stage it did not pass: a stage's `lost` is the gap from the stage
//! before, split by the reasons reported there (the SDKs' `error.type`,
//! the backend's own causes); what no reason explains is `unaccounted`
//! (e.g. spans still in the SDK's queue when it last reported).
//!
//! The two views of a rejected span are reconciled here: the exporter
//! counts a span the backend refused (partial success) as a failed export
//! (`error.type=rejected`), the backend as received and lost at process
//! (invalid) or at the store (conflict). Such spans count as transmitted,
//! as far as the backend saw them arrive, so each is lost once.
//!
//! When a service's SDK reports no exporter counters (most foreign SDKs),
//! the exporter-side stages are unknown: they are reported as such and the
//! rates are taken relative to the spans that reached the backend (passed
//! or lost at process). In the sum over all services, such a service's
//! spans count as having reached process unharmed, so that the other
//! services' losses still show.
//!
//! Spans dropped by a keep/drop rule (at analyze) are no loss: each stage
//! lists them apart, by rule, with their share of the spans that reached
//! it, and they leave its gap out of `lost`. The rates of that stage and
//! every later one are taken against the spans kept (the baseline less
//! the drops so far), so with nothing lost `R_store` is 1 whatever the
//! rules drop.
//!
//! Spans lost before the backend leave a trace without counters too: their
//! stored children, whose parent never arrives (orphans). Each parent still
//! missing a grace period after its child arrived is a span lost upstream,
//! in the child's own SDK or in the service that called it; their number,
//! per service (the orphans' own) and for all, is the `upstreamLossEstimate`:
//! a lower bound (a lost span with no stored child leaves nothing), never
//! mixed into the rates. It is given for services with counters too: their
//! counters do not see a parent lost in another service, nor spans lost
//! with the process that would have counted them.
//!
//! An OpenTelemetry Collector between the apps and otelite is the
//! `collector` hop, from its own counters (spans its exporters lost, by its
//! reason). Those carry the Collector's resource, not the apps', so the hop
//! is counted for all services together, listed in the sum only: its `n` is
//! what reached process, through the Collector or around it.

use crate::analyze::policy;
use crate::stage::Stage;
use crate::storage::{Orphans, RateRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a parent is waited for unless told otherwise: an SDK exports a
/// span when it ends, so a parent comes after its children by its own
/// duration plus the batch delays of both SDKs (5 s each by default).
pub const DEFAULT_ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The reason the exporter reports spans the backend refused under.
const REJECTED: &str = "rejected";
/// The part of a stage's gap no reported reason explains.
pub const UNACCOUNTED: &str = "unaccounted";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRate {
    pub stage: Stage,
    /// `None` when nothing counts this stage for these spans.
    pub n: Option<u64>,
    pub rate: Option<f64>,
    /// Spans lost at this stage; `None` when unknown (and for `total`).
    #[serde(default)]
    pub lost: Option<u64>,
    /// `lost` by reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, u64>,
    /// Spans dropped here by keep/drop rules: not lost, not in `lost`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<PolicyDrop>,
}

/// Spans one rule dropped at a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDrop {
    pub rule: String,
    pub n: u64,
    /// Of the spans that reached the stage (passed the one before), when
    /// that is known.
    pub share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    /// `None` for the sum over all services.
    pub service: Option<String>,
    pub exporter_counters: bool,
    /// The stage the rates are relative to.
    pub baseline: Stage,
    pub stages: Vec<StageRate>,
    pub note: Option<String>,
    /// The OpenTelemetry Collectors (their own `service.name`) whose
    /// counters give the `collector` hop; only in the sum over all services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collectors: Vec<String>,
    /// `None` when the store was not asked (see [`with_orphans`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_loss_estimate: Option<UpstreamLossEstimate>,
}

/// Spans lost before the backend, estimated from the stored spans whose
/// parent never arrived (see the module's doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamLossEstimate {
    /// The distinct parents still missing: spans lost upstream, at least.
    pub lower_bound: u64,
    /// The stored spans whose parent is missing.
    pub orphans: u64,
    /// How long after its child arrived a parent is waited for.
    pub grace_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatesReport {
    pub all: Rates,
    pub services: Vec<Rates>,
}

/// One service's (or all services') counts: spans that passed each stage,
/// and spans lost at each stage by reason.
#[derive(Debug, Clone, Default)]
struct Tally {
    passed: BTreeMap<Stage, u64>,
    lost: BTreeMap<Stage, BTreeMap<String, u64>>,
    /// Spans dropped by rules, per stage and rule.
    dropped: BTreeMap<Stage, BTreeMap<String, u64>>,
    /// The Collectors (their `service.name`) that reported the hop.
    collectors: Vec<String>,
}

impl Tally {
    fn add(&mut self, row: &RateRow) {
        let Some(reason) = row.reason.as_deref() else {
            *self.passed.entry(row.stage).or_default() += row.n;
            return;
        };
        let (by_stage, key) = match policy::rule_of(reason) {
            Some(rule) => (&mut self.dropped, rule),
            None => (&mut self.lost, reason),
        };
        *by_stage
            .entry(row.stage)
            .or_default()
            .entry(key.to_owned())
            .or_default() += row.n;
    }

    fn has_counters(&self) -> bool {
        self.passed.contains_key(&Stage::Total)
    }

    fn passed(&self, stage: Stage) -> u64 {
        self.passed.get(&stage).copied().unwrap_or(0)
    }

    fn lost_at(&self, stage: Stage) -> u64 {
        self.lost.get(&stage).map_or(0, |r| r.values().sum())
    }

    fn dropped_at(&self, stage: Stage) -> u64 {
        self.dropped.get(&stage).map_or(0, |r| r.values().sum())
    }

    /// Spans the backend saw arrive: passed process or lost there.
    fn received(&self) -> u64 {
        self.passed(Stage::Process) + self.lost_at(Stage::Process)
    }

    /// Moves spans the exporter reports as rejected, as far as the backend
    /// saw them arrive, from lost at transmit to transmitted. Applying it
    /// twice changes nothing.
    fn reconcile(&mut self) {
        let arrived = self.received();
        let transmitted = self.passed(Stage::Transmit);
        let Some(transmit_lost) = self.lost.get_mut(&Stage::Transmit) else {
            return;
        };
        let rejected = transmit_lost.get(REJECTED).copied().unwrap_or(0);
        let moved = rejected.min(arrived.saturating_sub(transmitted));
        if moved == 0 {
            return;
        }
        if rejected == moved {
            transmit_lost.remove(REJECTED);
        } else {
            transmit_lost.insert(REJECTED.to_owned(), rejected - moved);
        }
        *self.passed.entry(Stage::Transmit).or_default() += moved;
    }
}

pub fn report(rows: &[RateRow]) -> RatesReport {
    let (hop, rows): (Vec<&RateRow>, Vec<&RateRow>) =
        rows.iter().partition(|r| r.stage == Stage::Collector);
    let mut per_service: BTreeMap<&str, Tally> = BTreeMap::new();
    for row in rows {
        per_service.entry(&row.service).or_default().add(row);
    }
    for tally in per_service.values_mut() {
        tally.reconcile();
    }
    let services: Vec<Rates> = per_service
        .iter()
        .map(|(service, tally)| rates(Some(service.to_string()), tally, None))
        .collect();
    let without: Vec<&str> = per_service
        .iter()
        .filter(|(_, tally)| !tally.has_counters())
        .map(|(service, _)| *service)
        .collect();
    let with_counters = per_service.len() - without.len();
    let mut total = Tally::default();
    for tally in per_service.values() {
        for stage in Stage::ALL {
            let n = if stage.is_exporter_side() && !tally.has_counters() {
                // Mixed with services that report: a silent service's
                // spans count from process on, as if none was lost before,
                // so the others' losses still show (as a lower bound).
                if with_counters == 0 {
                    continue;
                }
                tally.received()
            } else {
                tally.passed(stage)
            };
            *total.passed.entry(stage).or_default() += n;
        }
        for (stage, reasons) in &tally.lost {
            for (reason, n) in reasons {
                *total
                    .lost
                    .entry(*stage)
                    .or_default()
                    .entry(reason.clone())
                    .or_default() += n;
            }
        }
        for (stage, rules) in &tally.dropped {
            for (rule, n) in rules {
                *total
                    .dropped
                    .entry(*stage)
                    .or_default()
                    .entry(rule.clone())
                    .or_default() += n;
            }
        }
    }
    add_hop(&mut total, &hop);
    let note = (!without.is_empty() && with_counters > 0).then(|| {
        format!(
            "no exporter counters from {}: their spans count as reaching process unharmed, \
             so losses before process are a lower bound",
            without.join(", ")
        )
    });
    let note = join_notes(note, hop_note(&total));
    RatesReport {
        all: rates(None, &total, note),
        services,
    }
}

/// Adds the Collectors' counts to the sum over all services: the spans they
/// lost, by reason, and as passed the hop what reached process.
fn add_hop(total: &mut Tally, hop: &[&RateRow]) {
    if hop.is_empty() {
        return;
    }
    for row in hop {
        if let Some(reason) = &row.reason {
            *total
                .lost
                .entry(Stage::Collector)
                .or_default()
                .entry(reason.clone())
                .or_default() += row.n;
        }
        if !total.collectors.contains(&row.service) {
            total.collectors.push(row.service.clone());
        }
    }
    let reached = total.received();
    total.passed.insert(Stage::Collector, reached);
}

fn hop_note(total: &Tally) -> Option<String> {
    (!total.collectors.is_empty()).then(|| {
        format!(
            "the collector hop is counted for all services together: the counters of {} carry \
             the Collector's own resource, not the apps'",
            total.collectors.join(", ")
        )
    })
}

fn join_notes(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

fn rates(service: Option<String>, tally: &Tally, note: Option<String>) -> Rates {
    let exporter_counters = tally.has_counters();
    let hop = !tally.collectors.is_empty();
    let (baseline, baseline_n) = if exporter_counters {
        (Stage::Total, tally.passed(Stage::Total))
    } else if hop {
        // What reached the Collector or otelite.
        let reached = tally.passed(Stage::Collector) + tally.lost_at(Stage::Collector);
        (Stage::Collector, reached)
    } else {
        (Stage::Process, tally.received())
    };
    let mut before: Option<u64> = None;
    let mut dropped_so_far = 0;
    let mut stages = Vec::with_capacity(Stage::ALL.len());
    for stage in Stage::ALL {
        if stage == Stage::Collector && !hop {
            continue;
        }
        let n = if stage.is_exporter_side() && !exporter_counters {
            None
        } else {
            Some(tally.passed(stage))
        };
        let (lost, reasons) = losses(stage, before, n, tally);
        dropped_so_far += tally.dropped_at(stage);
        // Against the spans kept: a rule's drops are no loss.
        let against = baseline_n.saturating_sub(dropped_so_far);
        stages.push(StageRate {
            stage,
            n,
            rate: n.filter(|_| against > 0).map(|n| n as f64 / against as f64),
            lost,
            reasons,
            dropped: drops(stage, before, tally),
        });
        before = n;
    }
    let note = note.or_else(|| {
        (!exporter_counters && service.is_some()).then(|| {
            "this service's SDK reports no exporter counters: total, collect and transmit are unknown, \
             rates are relative to the spans that reached process"
                .to_owned()
        })
    });
    Rates {
        service,
        exporter_counters,
        baseline,
        stages,
        note,
        collectors: tally.collectors.clone(),
        upstream_loss_estimate: None,
    }
}

/// Adds the orphans a store counted over the report's window to each
/// service and to the sum; a service with none gets zero. Without a row
/// for all (a server too old to count them) the estimates stay unknown.
pub fn with_orphans(mut report: RatesReport, orphans: &[Orphans]) -> RatesReport {
    let Some(all) = orphans.iter().find(|o| o.service.is_none()) else {
        return report;
    };
    let estimate = |found: Option<&Orphans>| UpstreamLossEstimate {
        lower_bound: found.map_or(0, |o| o.parents),
        orphans: found.map_or(0, |o| o.spans),
        grace_seconds: all.grace.as_secs(),
    };
    for rates in &mut report.services {
        let found = orphans
            .iter()
            .find(|o| o.service.is_some() && o.service == rates.service);
        rates.upstream_loss_estimate = Some(estimate(found));
    }
    report.all.upstream_loss_estimate = Some(estimate(Some(all)));
    report
}

/// The spans rules dropped at `stage`, by rule, with their share of the
/// spans that reached it (`before`).
fn drops(stage: Stage, before: Option<u64>, tally: &Tally) -> Vec<PolicyDrop> {
    let Some(rules) = tally.dropped.get(&stage) else {
        return Vec::new();
    };
    rules
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(rule, n)| PolicyDrop {
            rule: rule.clone(),
            n: *n,
            share: before.filter(|b| *b > 0).map(|b| *n as f64 / b as f64),
        })
        .collect()
}

/// The spans lost at `stage`, and why: the gap from the stage before (less
/// what rules dropped there) when both are known, else what was reported
/// there.
fn losses(
    stage: Stage,
    before: Option<u64>,
    n: Option<u64>,
    tally: &Tally,
) -> (Option<u64>, BTreeMap<String, u64>) {
    let mut reasons = tally.lost.get(&stage).cloned().unwrap_or_default();
    reasons.retain(|_, n| *n > 0);
    let reported: u64 = reasons.values().sum();
    match (stage, before, n) {
        (Stage::Total, _, _) | (_, _, None) => (None, reasons),
        (_, Some(before), Some(n)) => {
            let gap = before
                .saturating_sub(n)
                .saturating_sub(tally.dropped_at(stage));
            if gap > reported {
                reasons.insert(UNACCOUNTED.to_owned(), gap - reported);
            }
            (Some(gap.max(reported)), reasons)
        }
        (_, None, Some(_)) => (Some(reported), reasons),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str, stage: Stage, n: u64) -> RateRow {
        RateRow {
            service: service.into(),
            stage,
            reason: None,
            n,
        }
    }

    fn lost(service: &str, stage: Stage, reason: &str, n: u64) -> RateRow {
        RateRow {
            service: service.into(),
            stage,
            reason: Some(reason.into()),
            n,
        }
    }

    /// (lost, reasons) of a stage.
    fn loss_of(rates: &Rates, stage: Stage) -> (Option<u64>, Vec<(&str, u64)>) {
        let found = rates
            .stages
            .iter()
            .find(|s| s.stage == stage)
            .expect("every stage is listed");
        let reasons = found
            .reasons
            .iter()
            .map(|(r, n)| (r.as_str(), *n))
            .collect();
        (found.lost, reasons)
    }

    fn rate_of(rates: &Rates, stage: Stage) -> (Option<u64>, Option<f64>) {
        let found = rates
            .stages
            .iter()
            .find(|s| s.stage == stage)
            .expect("every stage is listed");
        (found.n, found.rate)
    }

    #[test]
    fn rates_are_relative_to_total_when_the_exporter_reports() {
        let rows = [
            row("a", Stage::Total, 100),
            row("a", Stage::Collect, 90),
            row("a", Stage::Transmit, 80),
            row("a", Stage::Process, 80),
            row("a", Stage::Analyze, 80),
            row("a", Stage::Store, 40),
        ];
        let report = report(&rows);
        let a = &report.services[0];
        assert_eq!(a.baseline, Stage::Total);
        assert_eq!(rate_of(a, Stage::Collect), (Some(90), Some(0.9)));
        assert_eq!(rate_of(a, Stage::Store), (Some(40), Some(0.4)));
        assert_eq!(report.all.stages, a.stages);
    }

    #[test]
    fn without_exporter_counters_the_exporter_stages_are_unknown() {
        let rows = [
            row("py", Stage::Process, 10),
            row("py", Stage::Analyze, 10),
            row("py", Stage::Store, 5),
        ];
        let report = report(&rows);
        let py = &report.services[0];
        assert!(!py.exporter_counters);
        assert_eq!(py.baseline, Stage::Process);
        assert_eq!(rate_of(py, Stage::Total), (None, None));
        assert_eq!(rate_of(py, Stage::Store), (Some(5), Some(0.5)));
        assert!(py.note.is_some());
    }

    #[test]
    fn mixed_services_keep_the_reporting_ones_losses_in_the_sum() {
        // rust lost 95 of 100 at collect; py says nothing before process.
        let rows = [
            row("rust", Stage::Total, 100),
            row("rust", Stage::Collect, 5),
            row("rust", Stage::Transmit, 5),
            row("rust", Stage::Process, 5),
            row("py", Stage::Process, 5),
            row("py", Stage::Store, 4),
        ];
        let report = report(&rows);
        let all = &report.all;
        assert_eq!(all.baseline, Stage::Total);
        assert_eq!(rate_of(all, Stage::Total), (Some(105), Some(1.0)));
        assert_eq!(rate_of(all, Stage::Collect), (Some(10), Some(10.0 / 105.0)));
        assert_eq!(rate_of(all, Stage::Store), (Some(4), Some(4.0 / 105.0)));
        assert!(all.note.as_deref().is_some_and(|n| n.contains("py")));
    }

    #[test]
    fn with_no_service_reporting_all_is_relative_to_process() {
        let rows = [row("py", Stage::Process, 5), row("go", Stage::Process, 5)];
        let all = report(&rows).all;
        assert_eq!(all.baseline, Stage::Process);
        assert_eq!(rate_of(&all, Stage::Total), (None, None));
        assert_eq!(rate_of(&all, Stage::Process), (Some(10), Some(1.0)));
        assert_eq!(all.note, None);
    }

    #[test]
    fn a_queue_overflow_is_lost_at_collect_with_its_reason() {
        let rows = [
            row("py", Stage::Total, 20_000),
            row("py", Stage::Collect, 12_030),
            lost("py", Stage::Collect, "queue_full", 7_970),
            row("py", Stage::Transmit, 12_030),
            row("py", Stage::Process, 12_030),
            row("py", Stage::Analyze, 12_030),
            row("py", Stage::Store, 12_030),
        ];
        let py = &report(&rows).services[0];
        assert_eq!(loss_of(py, Stage::Total), (None, vec![]));
        assert_eq!(
            loss_of(py, Stage::Collect),
            (Some(7_970), vec![("queue_full", 7_970)])
        );
        for stage in [
            Stage::Transmit,
            Stage::Process,
            Stage::Analyze,
            Stage::Store,
        ] {
            assert_eq!(loss_of(py, stage), (Some(0), vec![]), "{stage:?}");
        }
    }

    #[test]
    fn a_gap_no_reason_explains_is_unaccounted() {
        let rows = [
            row("a", Stage::Total, 100),
            row("a", Stage::Collect, 90),
            lost("a", Stage::Collect, "queue_full", 4),
            row("a", Stage::Transmit, 90),
        ];
        let a = &report(&rows).services[0];
        assert_eq!(
            loss_of(a, Stage::Collect),
            (Some(10), vec![("queue_full", 4), (UNACCOUNTED, 6)])
        );
    }

    /// Ten spans sent in one request: one invalid, one reusing the ids of
    /// a stored span, eight stored. The exporter saw two rejected.
    fn rejected_batch() -> Vec<RateRow> {
        vec![
            row("a", Stage::Total, 10),
            row("a", Stage::Collect, 10),
            row("a", Stage::Transmit, 8),
            lost("a", Stage::Transmit, "rejected", 2),
            row("a", Stage::Process, 9),
            lost("a", Stage::Process, "invalid_span_id", 1),
            row("a", Stage::Analyze, 9),
            row("a", Stage::Store, 8),
            lost("a", Stage::Store, "conflict", 1),
        ]
    }

    #[test]
    fn spans_the_backend_rejected_are_lost_once_where_the_backend_refused_them() {
        let a = &report(&rejected_batch()).services[0];
        assert_eq!(rate_of(a, Stage::Transmit), (Some(10), Some(1.0)));
        assert_eq!(loss_of(a, Stage::Transmit), (Some(0), vec![]));
        assert_eq!(
            loss_of(a, Stage::Process),
            (Some(1), vec![("invalid_span_id", 1)])
        );
        assert_eq!(loss_of(a, Stage::Analyze), (Some(0), vec![]));
        assert_eq!(loss_of(a, Stage::Store), (Some(1), vec![("conflict", 1)]));
    }

    #[test]
    fn reconciling_twice_changes_nothing() {
        let mut tally = Tally::default();
        for row in &rejected_batch() {
            tally.add(row);
        }
        tally.reconcile();
        let once = (tally.passed.clone(), tally.lost.clone());
        tally.reconcile();
        assert_eq!((tally.passed, tally.lost), once);
    }

    #[test]
    fn rejections_past_what_arrived_stay_lost_at_transmit() {
        // The exporter says 5 were rejected; the backend saw only 2 of them.
        let rows = [
            row("a", Stage::Total, 10),
            row("a", Stage::Collect, 10),
            row("a", Stage::Transmit, 5),
            lost("a", Stage::Transmit, "rejected", 5),
            row("a", Stage::Process, 5),
            lost("a", Stage::Process, "invalid_trace_id", 2),
        ];
        let a = &report(&rows).services[0];
        assert_eq!(rate_of(a, Stage::Transmit), (Some(7), Some(0.7)));
        assert_eq!(
            loss_of(a, Stage::Transmit),
            (Some(3), vec![("rejected", 3)])
        );
        assert_eq!(
            loss_of(a, Stage::Process),
            (Some(2), vec![("invalid_trace_id", 2)])
        );
    }

    #[test]
    fn without_counters_invalid_spans_show_as_lost_at_process() {
        let rows = [
            row("go", Stage::Process, 9),
            lost("go", Stage::Process, "invalid_span_id", 1),
            row("go", Stage::Analyze, 9),
            row("go", Stage::Store, 9),
        ];
        let go = &report(&rows).services[0];
        assert_eq!(rate_of(go, Stage::Process), (Some(9), Some(0.9)));
        assert_eq!(
            loss_of(go, Stage::Process),
            (Some(1), vec![("invalid_span_id", 1)])
        );
        assert_eq!(loss_of(go, Stage::Transmit), (None, vec![]));
    }

    #[test]
    fn policy_drops_are_listed_apart_and_later_rates_are_against_the_spans_kept() {
        // 100 spans reach process; a rule drops 12 health checks and a
        // sample rule 8 more; 78 of the 80 kept are stored, 2 conflict.
        let rows = [
            row("py", Stage::Process, 100),
            lost("py", Stage::Analyze, "policy:health-checks", 12),
            lost("py", Stage::Analyze, "policy:sample-py", 8),
            row("py", Stage::Analyze, 80),
            row("py", Stage::Store, 78),
            lost("py", Stage::Store, "conflict", 2),
        ];
        let report = report(&rows);
        for py in [&report.services[0], &report.all] {
            let analyze = &py.stages[4];
            assert_eq!(analyze.stage, Stage::Analyze);
            assert_eq!(
                analyze.dropped,
                vec![
                    PolicyDrop {
                        rule: "health-checks".into(),
                        n: 12,
                        share: Some(0.12)
                    },
                    PolicyDrop {
                        rule: "sample-py".into(),
                        n: 8,
                        share: Some(0.08)
                    },
                ]
            );
            // Drops are no loss.
            assert_eq!(loss_of(py, Stage::Analyze), (Some(0), vec![]));
            assert_eq!(rate_of(py, Stage::Process), (Some(100), Some(1.0)));
            assert_eq!(rate_of(py, Stage::Analyze), (Some(80), Some(1.0)));
            assert_eq!(rate_of(py, Stage::Store), (Some(78), Some(78.0 / 80.0)));
            assert_eq!(loss_of(py, Stage::Store), (Some(2), vec![("conflict", 2)]));
            assert!(py.stages[5].dropped.is_empty());
        }
    }

    #[test]
    fn a_gap_at_analyze_beyond_the_drops_is_still_a_loss() {
        let rows = [
            row("a", Stage::Total, 10),
            row("a", Stage::Collect, 10),
            row("a", Stage::Transmit, 10),
            row("a", Stage::Process, 10),
            lost("a", Stage::Analyze, "policy:noisy", 5),
            row("a", Stage::Analyze, 4),
            row("a", Stage::Store, 4),
        ];
        let a = &report(&rows).services[0];
        assert_eq!(
            loss_of(a, Stage::Analyze),
            (Some(1), vec![(UNACCOUNTED, 1)])
        );
        assert_eq!(rate_of(a, Stage::Transmit), (Some(10), Some(1.0)));
        assert_eq!(rate_of(a, Stage::Store), (Some(4), Some(0.8)));
    }

    #[test]
    fn policy_drops_read_back_from_json_as_written() {
        let rows = [
            row("a", Stage::Process, 4),
            lost("a", Stage::Analyze, "policy:noisy", 1),
            row("a", Stage::Analyze, 3),
        ];
        let report = report(&rows);
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(
            json["all"]["stages"][4]["dropped"],
            serde_json::json!([{ "rule": "noisy", "n": 1, "share": 0.25 }])
        );
        let back: RatesReport = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, report);
    }

    /// A silent Python app through a Collector that lost 35 of 45 spans:
    /// 30 to its full queue, 5 after its retries.
    fn collector_loss(with_exporter_counters: bool) -> Vec<RateRow> {
        let mut rows = vec![
            row("py", Stage::Process, 10),
            row("py", Stage::Analyze, 10),
            row("py", Stage::Store, 10),
            row("otelcol", Stage::Collector, 10),
            lost("otelcol", Stage::Collector, "enqueue_failed", 30),
            lost("otelcol", Stage::Collector, "send_failed(Unavailable)", 5),
        ];
        if with_exporter_counters {
            rows.extend([
                row("py", Stage::Total, 50),
                row("py", Stage::Collect, 50),
                row("py", Stage::Transmit, 50),
            ]);
        }
        rows
    }

    #[test]
    fn a_collectors_losses_are_the_collector_hop_of_the_sum_with_its_reasons() {
        let report = report(&collector_loss(false));
        let services: Vec<_> = report.services.iter().map(|s| s.service.clone()).collect();
        assert_eq!(
            services,
            [Some("py".to_owned())],
            "the Collector is no service"
        );
        let py = &report.services[0];
        assert!(py.stages.iter().all(|s| s.stage != Stage::Collector));
        let all = &report.all;
        let names: Vec<_> = all.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(
            names,
            [
                "total",
                "collect",
                "transmit",
                "collector",
                "process",
                "analyze",
                "store"
            ]
        );
        assert_eq!(all.baseline, Stage::Collector);
        assert_eq!(
            rate_of(all, Stage::Collector),
            (Some(10), Some(10.0 / 45.0))
        );
        assert_eq!(
            loss_of(all, Stage::Collector),
            (
                Some(35),
                vec![("enqueue_failed", 30), ("send_failed(Unavailable)", 5)]
            )
        );
        assert_eq!(loss_of(all, Stage::Process), (Some(0), vec![]));
        assert!(all.note.as_deref().is_some_and(|n| n.contains("otelcol")));
    }

    #[test]
    fn behind_exporter_counters_the_collector_hop_is_the_gap_after_transmit() {
        let all = report(&collector_loss(true)).all;
        assert_eq!(all.baseline, Stage::Total);
        assert_eq!(rate_of(&all, Stage::Collector), (Some(10), Some(0.2)));
        assert_eq!(
            loss_of(&all, Stage::Collector),
            (
                Some(40),
                vec![
                    ("enqueue_failed", 30),
                    ("send_failed(Unavailable)", 5),
                    (UNACCOUNTED, 5)
                ]
            )
        );
    }

    fn orphans(service: Option<&str>, spans: u64, parents: u64) -> Orphans {
        Orphans {
            service: service.map(str::to_owned),
            spans,
            parents,
            grace: std::time::Duration::from_secs(90),
        }
    }

    #[test]
    fn the_upstream_loss_estimate_is_the_missing_parents_per_service_and_for_all() {
        let rows = [
            row("rust", Stage::Total, 4),
            row("rust", Stage::Process, 4),
            row("py", Stage::Process, 6),
        ];
        // py: 3 orphans of 2 lost parents; rust: none.
        let found = [orphans(Some("py"), 3, 2), orphans(None, 3, 2)];
        let report = with_orphans(report(&rows), &found);
        let estimate = |lower_bound, orphans| {
            Some(UpstreamLossEstimate {
                lower_bound,
                orphans,
                grace_seconds: 90,
            })
        };
        let by_service: Vec<_> = report
            .services
            .iter()
            .map(|r| (r.service.as_deref(), r.upstream_loss_estimate.clone()))
            .collect();
        assert_eq!(
            by_service,
            [(Some("py"), estimate(2, 3)), (Some("rust"), estimate(0, 0))]
        );
        assert_eq!(report.all.upstream_loss_estimate, estimate(2, 3));
        // Never mixed into the rates.
        assert_eq!(
            rate_of(&report.services[0], Stage::Process),
            (Some(6), Some(1.0))
        );
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(
            json["all"]["upstreamLossEstimate"],
            serde_json::json!({ "lowerBound": 2, "orphans": 3, "graceSeconds": 90 })
        );
    }

    #[test]
    fn without_a_count_for_all_the_estimate_stays_unknown() {
        let rows = [row("py", Stage::Process, 6)];
        let report = with_orphans(report(&rows), &[orphans(Some("py"), 3, 2)]);
        assert_eq!(report.all.upstream_loss_estimate, None);
        assert_eq!(report.services[0].upstream_loss_estimate, None);
        let json = serde_json::to_value(&report).expect("serializes");
        assert!(json["all"].get("upstreamLossEstimate").is_none());
    }

    #[test]
    fn without_a_collector_there_is_no_collector_hop() {
        let all = report(&[row("py", Stage::Process, 1)]).all;
        assert!(all.stages.iter().all(|s| s.stage != Stage::Collector));
        assert_eq!(all.stages.len(), 6);
    }
}
