//! Stage rates: `R_stage = N_stage / N_total`, per service and for all.
//! When a service's SDK reports no exporter counters (most foreign SDKs),
//! the exporter-side stages are unknown: they are reported as such and the
//! rates are taken relative to the first stage the backend saw, `process`.

use crate::stage::Stage;
use crate::storage::RateRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRate {
    pub stage: Stage,
    /// `None` when nothing counts this stage for these spans.
    pub n: Option<u64>,
    pub rate: Option<f64>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatesReport {
    pub all: Rates,
    pub services: Vec<Rates>,
}

type Counts = BTreeMap<Stage, u64>;

pub fn report(rows: &[RateRow]) -> RatesReport {
    let mut per_service: BTreeMap<&str, Counts> = BTreeMap::new();
    for row in rows {
        *per_service
            .entry(&row.service)
            .or_default()
            .entry(row.stage)
            .or_default() += row.n;
    }
    let services: Vec<Rates> = per_service
        .iter()
        .map(|(service, counts)| rates(Some(service.to_string()), counts, None))
        .collect();
    let without: Vec<&str> = per_service
        .iter()
        .filter(|(_, counts)| !counts.contains_key(&Stage::Total))
        .map(|(service, _)| *service)
        .collect();
    let mut total = Counts::new();
    for counts in per_service.values() {
        for (stage, n) in counts {
            // Exporter counts of some services only would make a meaningless sum.
            if without.is_empty() || !stage.is_exporter_side() {
                *total.entry(*stage).or_default() += n;
            }
        }
    }
    let note = (!without.is_empty() && !per_service.is_empty()).then(|| {
        format!(
            "no exporter counters from {}; rates for all services are relative to the process stage",
            without.join(", ")
        )
    });
    RatesReport {
        all: rates(None, &total, note),
        services,
    }
}

fn rates(service: Option<String>, counts: &Counts, note: Option<String>) -> Rates {
    let exporter_counters = counts.contains_key(&Stage::Total);
    let baseline = if exporter_counters {
        Stage::Total
    } else {
        Stage::Process
    };
    let baseline_n = counts.get(&baseline).copied().unwrap_or(0);
    let stages = Stage::ALL
        .into_iter()
        .map(|stage| {
            let n = if stage.is_exporter_side() && !exporter_counters {
                None
            } else {
                Some(counts.get(&stage).copied().unwrap_or(0))
            };
            StageRate {
                stage,
                n,
                rate: n
                    .filter(|_| baseline_n > 0)
                    .map(|n| n as f64 / baseline_n as f64),
            }
        })
        .collect();
    let note = note.or_else(|| {
        (!exporter_counters && service.is_some()).then(|| {
            "this service's SDK reports no exporter counters: total, collect and transmit are unknown, rates are relative to process".to_owned()
        })
    });
    Rates {
        service,
        exporter_counters,
        baseline,
        stages,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str, stage: Stage, n: u64) -> RateRow {
        RateRow {
            service: service.into(),
            stage,
            n,
        }
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
    fn mixed_services_sum_only_backend_stages_for_all() {
        let rows = [
            row("rust", Stage::Total, 10),
            row("rust", Stage::Process, 10),
            row("py", Stage::Process, 5),
        ];
        let report = report(&rows);
        assert_eq!(rate_of(&report.all, Stage::Total), (None, None));
        assert_eq!(rate_of(&report.all, Stage::Process), (Some(15), Some(1.0)));
        assert!(report.all.note.as_deref().is_some_and(|n| n.contains("py")));
    }
}
