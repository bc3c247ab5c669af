//! The exporter against a scripted fake endpoint: retries and their limits,
//! partial success, outages that must fail within the timeout, the request
//! on the wire, queue-overflow accounting and the metrics report.

mod support;

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use otelite_exporter::metrics::{EXPORTER_SPAN_EXPORTED, PROCESSOR_SPAN_PROCESSED, SPAN_ENDED};
use otelite_exporter::{
    Compression, Counters, FailureKind, OteliteExporter, OteliteExporterBuilder,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{FakeEndpoint, Recorded, Reply};

fn resource() -> Resource {
    Resource::builder().with_service_name("test-svc").build()
}

fn builder(endpoint: &str) -> OteliteExporterBuilder {
    OteliteExporter::builder()
        .with_endpoint(endpoint)
        .with_metrics_interval(Duration::ZERO)
}

fn start(builder: OteliteExporterBuilder) -> (SdkTracerProvider, Arc<Counters>) {
    let counters = builder.counters();
    let provider = builder.build_provider(resource()).expect("provider");
    (provider, counters)
}

fn emit(provider: &SdkTracerProvider, n: usize) {
    let tracer = provider.tracer("test-lib");
    for i in 0..n {
        tracer.start(format!("span-{i}")).end();
    }
}

/// `provider.shutdown()` off the async threads, with a guard against hangs.
async fn shutdown(provider: SdkTracerProvider) -> OTelSdkResult {
    let join = tokio::task::spawn_blocking(move || provider.shutdown());
    tokio::time::timeout(Duration::from_secs(60), join)
        .await
        .expect("shutdown hung")
        .expect("shutdown panicked")
}

/// (error.type, value) of every point of `name` in a metrics report.
fn points(report: &Recorded, name: &str) -> Vec<(Option<String>, i64)> {
    let request = report.metrics();
    let metric = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    let Some(metric::Data::Sum(sum)) = &metric.data else {
        panic!("{name} is not a sum");
    };
    sum.data_points
        .iter()
        .map(|p| {
            let error_type = p
                .attributes
                .iter()
                .find(|kv| kv.key == "error.type")
                .map(|kv| {
                    format!("{:?}", kv.value.as_ref().and_then(|v| v.value.clone()))
                        .trim_start_matches("Some(StringValue(\"")
                        .trim_end_matches("\"))")
                        .to_owned()
                });
            let value = match p.value {
                Some(number_data_point::Value::AsInt(v)) => v,
                _ => -1,
            };
            (error_type, value)
        })
        .collect()
}

fn last_report(endpoint: &FakeEndpoint) -> Recorded {
    endpoint.metrics().pop().expect("a metrics report")
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_503_honouring_retry_after_then_succeeds() {
    let endpoint = FakeEndpoint::start(vec![Reply::Status(503, Some("1"))], Reply::Ok).await;
    let (provider, counters) = start(builder(&endpoint.url()));
    emit(&provider, 3);
    let started = Instant::now();
    shutdown(provider).await.expect("shutdown");

    let traces = endpoint.traces();
    assert_eq!(traces.len(), 2, "one 503, one retry");
    assert_eq!(
        traces[0].raw, traces[1].raw,
        "the same encoded body is resent"
    );
    assert_eq!(traces[1].span_count(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was not honoured"
    );
    let snap = counters.snapshot();
    assert_eq!(
        (snap.spans_ended, snap.spans_collected, snap.spans_exported),
        (3, 3, 3)
    );
    assert_eq!(snap.failed_total(), 0);

    let report = last_report(&endpoint);
    assert_eq!(points(&report, SPAN_ENDED), vec![(None, 3)]);
    assert_eq!(
        points(&report, PROCESSOR_SPAN_PROCESSED),
        vec![(None, 3), (Some("queue_full".into()), 0)]
    );
    assert_eq!(points(&report, EXPORTER_SPAN_EXPORTED), vec![(None, 3)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_503_backs_off_until_the_deadline_then_fails() {
    let endpoint = FakeEndpoint::start(vec![], Reply::Status(503, None)).await;
    let (provider, counters) =
        start(builder(&endpoint.url()).with_timeout(Duration::from_millis(1500)));
    emit(&provider, 2);
    let _ = shutdown(provider).await;

    assert!(endpoint.traces().len() >= 2, "retried with backoff");
    let snap = counters.snapshot();
    assert_eq!(snap.failed(FailureKind::Http5xx), 2, "{snap:?}");
    assert_eq!(snap.spans_exported, 0);
}

async fn refused_without_retry(status: u16) {
    let endpoint = FakeEndpoint::start(vec![Reply::Status(status, Some("0"))], Reply::Ok).await;
    let (provider, counters) = start(builder(&endpoint.url()));
    emit(&provider, 2);
    // The SDK's batch processor reports Ok from shutdown even when its last
    // export failed; the counters are where the failure shows.
    let _ = shutdown(provider).await;

    assert_eq!(endpoint.traces().len(), 1, "{status} must not be retried");
    let snap = counters.snapshot();
    assert_eq!((snap.spans_collected, snap.spans_exported), (2, 0));
    assert_eq!(snap.failed(FailureKind::Http4xx), 2);
    let report = last_report(&endpoint);
    assert_eq!(
        points(&report, EXPORTER_SPAN_EXPORTED),
        vec![(None, 0), (Some("http_4xx".into()), 2)]
    );
    // Nothing was dropped by the queue, even though the last export failed.
    assert_eq!(
        points(&report, PROCESSOR_SPAN_PROCESSED),
        vec![(None, 2), (Some("queue_full".into()), 0)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_request_is_not_retried() {
    refused_without_retry(400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_too_large_is_not_retried() {
    refused_without_retry(413).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_success_rejected_spans_are_counted() {
    let endpoint = FakeEndpoint::start(vec![], Reply::PartialSuccess(2)).await;
    let (provider, counters) = start(builder(&endpoint.url()));
    emit(&provider, 5);
    shutdown(provider)
        .await
        .expect("a partial success is a success");

    let snap = counters.snapshot();
    assert_eq!(snap.spans_exported, 3);
    assert_eq!(snap.failed(FailureKind::Rejected), 2);
    assert_eq!(
        points(&last_report(&endpoint), EXPORTER_SPAN_EXPORTED),
        vec![(None, 3), (Some("rejected".into()), 2)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_port_fails_within_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (provider, counters) = start(
        builder(&format!("http://127.0.0.1:{port}")).with_timeout(Duration::from_millis(800)),
    );
    emit(&provider, 2);
    let _ = shutdown(provider).await;

    let snap = counters.snapshot();
    assert_eq!(snap.spans_collected, 2);
    assert_eq!(snap.spans_exported, 0);
    assert_eq!(snap.failed(FailureKind::Transport), 2, "{snap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_endpoint_times_out_instead_of_hanging() {
    let endpoint = FakeEndpoint::start(vec![], Reply::Hang).await;
    let (provider, counters) =
        start(builder(&endpoint.url()).with_timeout(Duration::from_millis(800)));
    emit(&provider, 2);
    let _ = shutdown(provider).await;

    assert_eq!(counters.snapshot().failed(FailureKind::Timeout), 2);
    assert_eq!(
        points(&last_report(&endpoint), EXPORTER_SPAN_EXPORTED),
        vec![(None, 0), (Some("timeout".into()), 2)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_body_decodes_to_the_request() {
    let endpoint = FakeEndpoint::start(vec![], Reply::Ok).await;
    let (provider, _) = start(builder(&endpoint.url()).with_headers([("x-api-key", "secret")]));
    emit(&provider, 2);
    shutdown(provider).await.expect("shutdown");

    let traces = endpoint.traces();
    let request = &traces[0];
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("content-type"), Some("application/x-protobuf"));
    assert_eq!(header("content-encoding"), Some("gzip"));
    assert_eq!(header("x-api-key"), Some("secret"));
    assert_ne!(
        request.raw, request.body,
        "the body on the wire is compressed"
    );

    let spans = otelite_exporter::model::otlp::from_otlp(request.traces());
    assert!(spans.rejected.is_empty());
    let mut names: Vec<_> = spans.spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["span-0", "span-1"]);
    assert!(
        spans
            .spans
            .iter()
            .all(|s| s.service_name() == "test-svc" && s.scope.name == "test-lib")
    );
    // The metrics report uses the same headers and compression.
    let report = last_report(&endpoint);
    assert_eq!(
        report.headers.get("content-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    assert_eq!(
        report.headers.get("x-api-key").map(|v| v.as_bytes()),
        Some(&b"secret"[..])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uncompressed_body_is_plain_protobuf() {
    let endpoint = FakeEndpoint::start(vec![], Reply::Ok).await;
    let (provider, _) = start(builder(&endpoint.url()).with_compression(Compression::None));
    emit(&provider, 1);
    shutdown(provider).await.expect("shutdown");

    let request = &endpoint.traces()[0];
    assert!(request.headers.get("content-encoding").is_none());
    assert_eq!(request.span_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_overflow_is_counted_exactly() {
    let (open_gate, gate) = tokio::sync::watch::channel(false);
    let endpoint = FakeEndpoint::start(vec![], Reply::Gated(gate)).await;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(16)
        .with_max_export_batch_size(4)
        .build();
    let (provider, counters) = start(builder(&endpoint.url()).with_batch_config(batch));

    // A full batch goes out and is held by the endpoint, blocking the processor…
    emit(&provider, 4);
    endpoint.wait_for_traces(1).await;
    // …so all but 16 of these overflow the queue.
    emit(&provider, 200);
    open_gate.send(true).expect("gate");
    shutdown(provider).await.expect("shutdown");

    let received: usize = endpoint.traces().iter().map(Recorded::span_count).sum();
    let snap = counters.snapshot();
    assert_eq!(snap.spans_ended, 204);
    assert_eq!(
        snap.spans_collected, received as u64,
        "collected = what reached the endpoint"
    );
    assert_eq!(snap.spans_exported, received as u64);
    let dropped = snap.spans_ended - snap.spans_collected;
    assert!(dropped >= 200 - 16, "dropped {dropped}");

    let report = last_report(&endpoint);
    assert_eq!(
        points(&report, PROCESSOR_SPAN_PROCESSED),
        vec![
            (None, received as i64),
            (Some("queue_full".into()), dropped as i64)
        ]
    );
    assert_eq!(points(&report, SPAN_ENDED), vec![(None, 204)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_reports_carry_the_resource() {
    let endpoint = FakeEndpoint::start(vec![], Reply::Ok).await;
    let builder = builder(&endpoint.url()).with_metrics_interval(Duration::from_millis(50));
    let (provider, _) = start(builder);
    emit(&provider, 1);
    for _ in 0..3000 {
        if endpoint.metrics().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reports = endpoint.metrics();
    assert!(reports.len() >= 2, "periodic reports arrive");
    let request = reports[0].metrics();
    let rm = &request.resource_metrics[0];
    let service = rm
        .resource
        .iter()
        .flat_map(|r| &r.attributes)
        .find(|kv| kv.key == "service.name")
        .map(|kv| format!("{:?}", kv.value));
    assert!(
        service.as_ref().is_some_and(|s| s.contains("test-svc")),
        "{service:?}"
    );
    assert_eq!(
        rm.scope_metrics[0].scope.as_ref().map(|s| s.name.as_str()),
        Some("otelite-exporter")
    );
    shutdown(provider).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_exporter_sends_the_final_report_itself() {
    let endpoint = FakeEndpoint::start(vec![], Reply::Ok).await;
    let exporter = builder(&endpoint.url()).build().expect("exporter");
    let counters = exporter.counters();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .build();
    emit(&provider, 3);
    shutdown(provider).await.expect("shutdown");

    assert_eq!(counters.snapshot().spans_exported, 3);
    let reports = endpoint.metrics();
    assert_eq!(reports.len(), 1);
    // No CountingProcessor: ended spans are not counted, drops are not known.
    assert_eq!(
        points(&reports[0], PROCESSOR_SPAN_PROCESSED),
        vec![(None, 3)]
    );
}

/// The app has no tokio runtime at all; the exporter brings its own.
#[test]
fn works_without_a_runtime_in_the_app() {
    let server = tokio::runtime::Runtime::new().expect("server runtime");
    let endpoint = server.block_on(FakeEndpoint::start(vec![], Reply::Ok));
    let (provider, counters) = start(builder(&endpoint.url()));
    emit(&provider, 2);
    provider.shutdown().expect("shutdown");
    drop(provider);
    assert_eq!(counters.snapshot().spans_exported, 2);
    assert_eq!(endpoint.traces().len(), 1);
}

/// Spans and shutdown from inside a single-threaded tokio runtime: the
/// exporter does not need that runtime, so there is no deadlock.
#[test]
fn shutdown_inside_a_current_thread_runtime_does_not_deadlock() {
    let server = tokio::runtime::Runtime::new().expect("server runtime");
    let endpoint = server.block_on(FakeEndpoint::start(vec![], Reply::Ok));
    let app = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("app runtime");
    let counters = app.block_on(async {
        let (provider, counters) = start(builder(&endpoint.url()));
        emit(&provider, 2);
        provider.shutdown().expect("shutdown");
        counters
    });
    assert_eq!(counters.snapshot().spans_exported, 2);
    assert_eq!(endpoint.metrics().len(), 1);
}
