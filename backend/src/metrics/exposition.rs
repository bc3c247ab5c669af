//! The Prometheus text exposition format (version 0.0.4), written by hand:
//! a few counters, gauges and one histogram family do not need a crate.

use super::latency::BUCKETS_SECONDS;
use super::{Metrics, Rejection};
use crate::stage::Stage;
use crate::storage::retention::Totals;
use crate::storage::{Orphans, WriteHealth};
use std::fmt::{Display, Write};

/// What the store reports at scrape time.
pub struct StoreGauges {
    pub health: WriteHealth,
    /// Spans through each stage since the database was created, per service;
    /// `None` when the read failed (the series are then left out).
    pub stage_counts: Option<Vec<(String, Stage, u64)>>,
    /// Spans keep/drop rules dropped since the database was created:
    /// (service, rule, spans); `None` when the read failed.
    pub policy_drops: Option<Vec<(String, String, u64)>>,
    /// Spans whose parent never arrived, over all time, per service and for
    /// all (`service: None`, left out here); `None` when the read failed.
    pub orphans: Option<Vec<Orphans>>,
    pub db_bytes: u64,
    /// The files' largest size since start, where the store tracks it.
    pub db_peak_bytes: Option<u64>,
    pub retention: Totals,
}

/// Which count of an [`Orphans`] row a gauge shows.
type OrphanCount = fn(&Orphans) -> u64;

const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// The whole `/metrics` body.
pub fn render(metrics: &Metrics, store: &StoreGauges) -> String {
    let mut out = Text(String::new());
    out.single(
        "otelite_spans_received_total",
        COUNTER,
        "Spans in decoded OTLP trace requests.",
        metrics.received(),
    );
    out.single(
        "otelite_spans_accepted_total",
        COUNTER,
        "Spans committed to the database.",
        metrics.accepted(),
    );
    out.single(
        "otelite_spans_duplicate_total",
        COUNTER,
        "Spans received again exactly as stored (retries): acknowledged, not stored twice.",
        metrics.duplicates(),
    );
    let name = "otelite_spans_rejected_total";
    out.family(name, COUNTER, "Decoded spans not stored, by reason.");
    for reason in [
        Rejection::InvalidSpan,
        Rejection::Conflict,
        Rejection::Overloaded,
        Rejection::Unavailable,
    ] {
        let labels = [("reason", reason.as_str())];
        out.sample(name, &labels, metrics.spans_rejected(reason));
    }
    let name = "otelite_requests_rejected_total";
    out.family(
        name,
        COUNTER,
        "OTLP requests answered with an error, by reason.",
    );
    // Invalid and conflicting spans never fail a request: the rest of the
    // batch is stored.
    for reason in Rejection::ALL
        .into_iter()
        .filter(|r| !matches!(r, Rejection::InvalidSpan | Rejection::Conflict))
    {
        let labels = [("reason", reason.as_str())];
        out.sample(name, &labels, metrics.requests_rejected(reason));
    }
    let budget = metrics.byte_budget();
    for (name, help, value) in [
        (
            "otelite_inflight_bytes",
            "Bytes of request bodies and their decoded form held by the receivers now.",
            budget.in_use(),
        ),
        (
            "otelite_inflight_bytes_peak",
            "The most bytes in flight at once since start.",
            budget.peak(),
        ),
        (
            "otelite_inflight_bytes_capacity",
            "Bytes in flight before new requests get 503 (max_inflight_bytes).",
            budget.capacity(),
        ),
    ] {
        out.single(name, GAUGE, help, value);
    }
    write_store(&mut out, store);
    write_retention(&mut out, &store.retention);
    write_latency(&mut out, metrics);
    out.0
}

fn write_store(out: &mut Text, store: &StoreGauges) {
    let health = &store.health;
    for (name, help, value) in [
        (
            "otelite_write_queue_requests",
            "Write requests waiting for the writer thread.",
            health.queued_requests,
        ),
        (
            "otelite_write_queue_requests_capacity",
            "Write requests that may wait before new ones get 503.",
            health.request_capacity,
        ),
        (
            "otelite_write_queue_spans",
            "Spans waiting for the writer thread.",
            health.queued_spans,
        ),
        (
            "otelite_write_queue_spans_capacity",
            "Spans that may wait before new requests get 503.",
            health.span_capacity,
        ),
    ] {
        out.single(name, GAUGE, help, value);
    }
    out.single(
        "otelite_database_size_bytes",
        GAUGE,
        "Size of the SQLite database files (database, WAL and shared memory).",
        store.db_bytes,
    );
    if let Some(peak) = store.db_peak_bytes {
        out.single(
            "otelite_database_size_peak_bytes",
            GAUGE,
            "The largest size of the database files seen since start (after each commit).",
            peak,
        );
    }
    if let Some(counts) = &store.stage_counts {
        let name = "otelite_stage_spans_total";
        out.family(
            name,
            COUNTER,
            "Spans counted at each stage, per service (as /api/rates).",
        );
        for (service, stage, n) in counts {
            out.sample(name, &[("service", service), ("stage", stage.as_str())], n);
        }
    }
    if let Some(drops) = &store.policy_drops {
        let name = "otelite_policy_dropped_spans_total";
        out.family(
            name,
            COUNTER,
            "Spans dropped at analyze by a keep/drop rule, per rule and service (not lost).",
        );
        for (service, rule, n) in drops {
            out.sample(name, &[("rule", rule), ("service", service)], n);
        }
    }
    if let Some(orphans) = &store.orphans {
        // Gauges: a parent that arrives late, and retention, take orphans
        // away. Per service only: a parent two services miss is one span,
        // which a sum of the series would count twice (/api/rates has `all`).
        let families: [(&str, &str, OrphanCount); 2] = [
            (
                "otelite_upstream_loss_estimate_spans",
                "ESTIMATE, a lower bound: spans lost before otelite, as the distinct parents \
                 that stored spans of the service name and that never arrived within \
                 orphan_grace (/api/rates' upstreamLossEstimate.lowerBound, over all time).",
                |o| o.parents,
            ),
            (
                "otelite_orphan_spans",
                "Stored spans whose parent never arrived within orphan_grace, per service.",
                |o| o.spans,
            ),
        ];
        for (name, help, value) in families {
            out.family(name, GAUGE, help);
            for row in orphans {
                if let Some(service) = &row.service {
                    out.sample(name, &[("service", service)], value(row));
                }
            }
        }
    }
}

fn write_retention(out: &mut Text, totals: &Totals) {
    for (name, help, value) in [
        (
            "otelite_retention_deleted_spans_total",
            "Spans deleted by retention (--retention, --max-db-size).",
            totals.deleted_spans,
        ),
        (
            "otelite_retention_deleted_traces_total",
            "Traces whose last span retention deleted.",
            totals.deleted_traces,
        ),
        (
            "otelite_retention_batches_total",
            "Retention delete transactions.",
            totals.batches,
        ),
        (
            "otelite_retention_runs_total",
            "Retention runs (one per minute while retention is on).",
            totals.runs,
        ),
    ] {
        out.single(name, COUNTER, help, value);
    }
}

fn write_latency(out: &mut Text, metrics: &Metrics) {
    const NAME: &str = "otelite_http_request_duration_seconds";
    out.family(
        NAME,
        "histogram",
        "Time to answer an HTTP request, per route template.",
    );
    for (route, histogram) in metrics.latency.snapshot() {
        let (cumulative, sum) = histogram.snapshot();
        let bounds = BUCKETS_SECONDS
            .iter()
            .map(ToString::to_string)
            .chain(["+Inf".to_owned()]);
        for (le, count) in bounds.zip(&cumulative) {
            out.sample(
                &format!("{NAME}_bucket"),
                &[("route", route), ("le", &le)],
                count,
            );
        }
        let total = cumulative.last().copied().unwrap_or(0);
        out.sample(&format!("{NAME}_sum"), &[("route", route)], sum);
        out.sample(&format!("{NAME}_count"), &[("route", route)], total);
    }
}

struct Text(String);

// Writing to a String cannot fail, hence the ignored results.
impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        let _ = write!(self.0, "{name}");
        for (i, (key, label)) in labels.iter().enumerate() {
            let open = if i == 0 { "{" } else { "," };
            let _ = write!(self.0, "{open}{key}=\"{}\"", escape(label));
        }
        let close = if labels.is_empty() { "" } else { "}" };
        let _ = writeln!(self.0, "{close} {value}");
    }

    /// A family with one sample and no labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
