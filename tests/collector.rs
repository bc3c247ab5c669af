//! apps → OpenTelemetry Collector → otelite: a real Collector
//! (`tests/clients/collector`, on the README's `docs/otelcol.yaml`) between
//! the official Python SDK and otelite. Every span the app sends, over
//! OTLP/HTTP or OTLP/gRPC, is stored once with its content; spans the
//! Collector loses show at the `collector` hop of `/api/rates` and
//! `otelite rates`, with the Collector's reason and its own count (read from
//! its Prometheus endpoint, not from otelite).

use crate::foreign_clients::{check, client_command, run_id};
use crate::support::collector::{Collector, Forward, OwnCounts};
use crate::support::foreign;
use crate::support::process::{blocking, otelite_bin};
use crate::support::{Backend, ServiceRates, wait_until};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

/// The Python scenario client sends through a Collector that forwards the
/// way `forward` says (given otelite's gRPC address); otelite stores the
/// four spans once, as sent.
async fn through_the_collector(protocol: &'static str, forward: fn(SocketAddr) -> Forward) {
    let backend = Backend::start().await;
    let otelite = backend.otlp;
    let forward = forward(backend.grpc);
    let collector = blocking(move || Collector::start(otelite, forward, &[])).await;
    let endpoint = match protocol {
        "grpc" => collector.grpc_url(),
        _ => collector.http_url(),
    };
    let service = format!("python-{protocol}-client");
    let run = run_id(&format!("collector-{service}"));
    let id = run.clone();
    let sent =
        blocking(move || foreign::run(client_command("python", [&endpoint, &id, protocol]))).await;
    check(&backend, &sent, &service, "otelite-e2e-python", &run).await;
    drop(collector);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_otlp_http_through_the_collector_arrives_once() {
    through_the_collector("proto", |_| Forward::OtlpHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_otlp_grpc_through_the_collector_arrives_once() {
    through_the_collector("grpc", |_| Forward::OtlpHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_through_a_collector_forwarding_over_otlp_grpc_arrives_once() {
    through_the_collector("proto", Forward::OtlpGrpc).await;
}

/// What `batches.py` reports: spans its exporter had acknowledged or not.
#[derive(Debug, Deserialize)]
struct Batches {
    exported: u64,
    failed: u64,
}

/// Sends `batches` × `per_batch` spans of `service` to `endpoint`.
async fn send_batches(
    endpoint: String,
    service: &'static str,
    batches: u64,
    per_batch: u64,
) -> Batches {
    blocking(move || {
        let mut command = Command::new(foreign::python());
        command
            .arg(foreign::clients_dir().join("python/batches.py"))
            .args([
                &endpoint,
                service,
                &batches.to_string(),
                &per_batch.to_string(),
            ]);
        foreign::run_for(command)
    })
    .await
}

const EXPORTER: (&str, &str) = ("exporter", "otlp_http/otelite");

/// The Collector's own totals for its otelite exporter: (sent, the lost
/// spans by the reason otelite files them under).
fn own_totals(own: &OwnCounts) -> (u64, BTreeMap<String, u64>) {
    let sent = own.sum("otelcol_exporter_sent_spans_total", &[EXPORTER]);
    let mut lost = BTreeMap::new();
    let enqueue = own.sum("otelcol_exporter_enqueue_failed_spans_total", &[EXPORTER]);
    if enqueue > 0 {
        lost.insert("enqueue_failed".to_owned(), enqueue);
    }
    // At `level: normal` v0.165 labels a failed send with no error.type.
    let failed = "otelcol_exporter_send_failed_spans_total";
    let mut typed = 0;
    for error in own.label_values(failed, "error_type") {
        let n = own.sum(failed, &[EXPORTER, ("error_type", &error)]);
        lost.insert(format!("send_failed({error})"), n);
        typed += n;
    }
    let untyped = own.sum(failed, &[EXPORTER]) - typed;
    if untyped > 0 {
        lost.insert("send_failed".to_owned(), untyped);
    }
    (sent, lost)
}

/// The sum over all services in `/api/rates`.
async fn all_rates(backend: &Backend) -> ServiceRates {
    let (status, mut body) = backend.get_json("/api/rates").await;
    assert_eq!(status, 200, "{body}");
    body["all"]["service"] = "(all)".into();
    serde_json::from_value(body["all"].clone()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// otelite is down while an app sends 1 000 spans through a Collector with a
/// one-batch sending queue and a one-second retry window: the Collector
/// acknowledges them all to the app, then loses every one (its queue full,
/// or its retries over). Once otelite is back, the Collector's own counters
/// reach it, and the collector hop of `/api/rates` and `otelite rates`
/// shows exactly the loss the Collector reported on its own Prometheus
/// endpoint, under its reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_lost_inside_the_collector_show_at_the_collector_hop() {
    const SERVICE: &str = "py-through-collector";
    let backend = Backend::start().await;
    let otelite = backend.otlp;
    let collector = blocking(move || {
        Collector::start(
            otelite,
            Forward::OtlpHttp,
            &[
                "processors::batch::send_batch_size=50",
                "processors::batch::send_batch_max_size=50",
                "exporters::otlp_http/otelite::sending_queue::queue_size=1",
                "exporters::otlp_http/otelite::sending_queue::num_consumers=1",
                "exporters::otlp_http/otelite::retry_on_failure::initial_interval=100ms",
                "exporters::otlp_http/otelite::retry_on_failure::max_interval=200ms",
                "exporters::otlp_http/otelite::retry_on_failure::max_elapsed_time=1s",
            ],
        )
    })
    .await;
    let stopped = backend.stop().await;

    let app = send_batches(collector.http_url(), SERVICE, 20, 50).await;
    assert_eq!(
        (app.exported, app.failed),
        (1_000, 0),
        "the Collector took them all"
    );
    let collector = std::sync::Arc::new(collector);
    let settled = {
        let collector = collector.clone();
        wait_until(
            "the Collector settled every span it accepted",
            move || {
                let collector = collector.clone();
                async move { blocking(move || collector.own_counts()).await }
            },
            |own| {
                let (sent, lost) = own_totals(own);
                own.sum("otelcol_receiver_accepted_spans_total", &[]) == 1_000
                    && sent + lost.values().sum::<u64>() == 1_000
            },
        )
        .await
    };
    let (sent, lost) = own_totals(&settled);
    assert_eq!(sent, 0, "otelite was down: {lost:?}");

    // otelite back: ten more spans get through, and the Collector's next
    // report carries its totals.
    let backend = Backend::restart(stopped).await;
    let app = send_batches(collector.http_url(), SERVICE, 1, 10).await;
    assert_eq!((app.exported, app.failed), (10, 0));
    backend
        .wait_for_rates(SERVICE, |r| r.n("store") == Some(10))
        .await;
    let lost_n: u64 = lost.values().sum();
    let all = wait_until(
        "the collector hop in /api/rates",
        || all_rates(&backend),
        |all| {
            all.stages
                .iter()
                .any(|s| s.stage == "collector" && s.lost == Some(lost_n))
        },
    )
    .await;
    let hop = all.stage("collector");
    assert_eq!(
        (hop.n, hop.lost, &hop.reasons),
        (Some(10), Some(1_000), &lost),
        "the Collector's own counts: {settled:?}\n{all:#?}"
    );
    assert_eq!(
        all.stage_names(),
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
    assert_eq!(all.baseline, "collector", "{all:#?}");
    crate::support::assert_rate(&all, "collector", 10, 1_010);
    assert_eq!(all.stage("process").lost, Some(0), "{all:#?}");
    assert!(
        all.note
            .as_deref()
            .is_some_and(|n| n.contains("otelcol-otelite-test")),
        "the note names the Collector: {all:#?}"
    );
    // Per service, the hop is unknown: the Collector's counters carry its own
    // resource.
    let service = backend.rates(SERVICE).await.expect("the app's rates");
    assert!(
        !service.stage_names().contains(&"collector"),
        "{service:#?}"
    );

    // /metrics counts what the Collector forwarded, under its own name,
    // once its next report says it sent the ten.
    let line = r#"otelite_stage_spans_total{service="otelcol-otelite-test",stage="collector"} 10"#;
    let url = backend.query_url("/metrics");
    wait_until(
        "the Collector's sent spans in /metrics",
        || async {
            let reply = reqwest::get(&url).await.expect("GET /metrics");
            reply.text().await.expect("/metrics body")
        },
        |metrics| metrics.lines().any(|l| l == line),
    )
    .await;

    // `otelite rates` shows the same hop, with the Collector's reasons.
    let url = format!("http://{}", backend.query);
    let out = blocking(move || {
        Command::new(otelite_bin())
            .args(["rates", "--server", &url])
            .env_remove("OTELITE_SERVER")
            .output()
            .expect("run otelite rates")
    })
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("COLLECTOR"), "{text}");
    let reasons: Vec<String> = lost.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let why = format!("collector 1000 ({})", reasons.join(", "));
    assert!(text.contains(&why), "expected {why:?} in:\n{text}");
}

/// The README shows the configuration the tests run: `docs/otelcol.yaml`
/// from its first key on, verbatim.
#[test]
fn the_readme_shows_the_tested_collector_configuration() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read_to_string(crate::support::collector::sample_config())
        .expect("docs/otelcol.yaml");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let body: String = file
        .lines()
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(
        readme.contains(&format!("```yaml\n{body}```")),
        "README.md must show docs/otelcol.yaml from `receivers:` on:\n{body}"
    );
}
