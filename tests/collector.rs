//! apps → OpenTelemetry Collector → otelite: a real Collector
//! (`tests/clients/collector`, on the README's `docs/otelcol.yaml`) between
//! the official Python SDK and otelite. Every span the app sends, over
//! OTLP/HTTP or OTLP/gRPC, is stored once with its content; spans the
//! Collector loses show at the `collector` hop of `/api/rates` and
//! `otelite rates`, with the Collector's reason and its own count (read from
//! its Prometheus endpoint, not from otelite).

use crate::foreign_clients::{check, client_command, run_id};
use crate::support::Backend;
use crate::support::collector::{Collector, Forward};
use crate::support::foreign;
use crate::support::process::blocking;

/// The Python scenario client sends through a Collector that forwards the
/// way `forward` says; otelite stores the four spans once, as sent.
async fn through_the_collector(protocol: &'static str, forward: Forward) {
    let backend = Backend::start().await;
    let otelite = backend.otlp;
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
    through_the_collector("proto", Forward::OtlpHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_otlp_grpc_through_the_collector_arrives_once() {
    through_the_collector("grpc", Forward::OtlpHttp).await;
}
