//! Stage rates: `R_stage = N_stage / N_total`, per service and for all.
//! When a service's SDK reports no exporter counters (most foreign SDKs),
//! the exporter-side stages are unknown: they are reported as such and the
//! rates are taken relative to the first stage the backend saw, `process`.
//! In the sum over all services, such a service's spans count as having
//! reached process unharmed, so that the other services' losses still show.

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
    let with_counters = per_service.len() - without.len();
    let mut total = Counts::new();
    for counts in per_service.values() {
        let has_counters = counts.contains_key(&Stage::Total);
        for stage in Stage::ALL {
            let n = if stage.is_exporter_side() && !has_counters {
                // Mixed with services that report: a silent service's
                // spans count from process on, as if none was lost before,
                // so the others' losses still show (as a lower bound).
                if with_counters == 0 {
                    continue;
                }
                counts.get(&Stage::Process).copied().unwrap_or(0)
            } else {
                counts.get(&stage).copied().unwrap_or(0)
            };
            *total.entry(stage).or_default() += n;
        }
    }
    let note = (!without.is_empty() && with_counters > 0).then(|| {
        format!(
            "no exporter counters from {}: their spans count as reaching process unharmed, \
             so losses before process are a lower bound",
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
}
