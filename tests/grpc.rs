//! OTLP/gRPC: the official gRPC exporters, unchanged, send to otelite's
//! gRPC listener (Python's `opentelemetry-exporter-otlp-proto-grpc`, Rust's
//! `opentelemetry-otlp` over tonic, Node's and Go's `otlptracegrpc`), with
//! and without gzip, and every span reads back as the client reports it
//! sent it (the scenario of `foreign_clients`). Then what a gRPC client
//! can get wrong or run into, through a plain tonic client: undecodable and
//! oversized messages, a wrong token, invalid spans (partial success), the
//! server at its concurrency limit (UNAVAILABLE with RetryInfo, which the
//! Python exporter honours and retries), metrics feeding the funnel, and
//! shutdown answering the call in flight.

use crate::foreign_clients::{check, client_command, run_id, rust_scenario};
use crate::support::fixtures::{otlp_request, span};
use crate::support::foreign::{self, Sent};
use crate::support::{Backend, WAIT, unique_trace_id};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otelite_model::SpanId;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::{Code, Request};

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn grpc_url(backend: &Backend) -> String {
    format!("http://{}", backend.grpc)
}

async fn trace_client(backend: &Backend) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(grpc_url(backend))
        .await
        .expect("a gRPC connection to otelite")
}

/// The foreign-client scenario from a script, sent over gRPC.
async fn script_over_grpc(backend: &Backend, language: &'static str, protocol: &'static str) {
    let service = format!("{language}-{protocol}-client");
    let run_id = run_id(&service);
    // Go's exporter takes host:port; the others a URL.
    let endpoint = match language {
        "go" => backend.grpc.to_string(),
        _ => grpc_url(backend),
    };
    let id = run_id.clone();
    let sent = tokio::task::spawn_blocking(move || {
        foreign::run(client_command(language, [&endpoint, &id, protocol]))
    })
    .await
    .expect("client thread");
    check(
        backend,
        &sent,
        &service,
        &format!("otelite-e2e-{language}"),
        &run_id,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_exporter() {
    let backend = Backend::start().await;
    script_over_grpc(&backend, "python", "grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_exporter_gzip() {
    let backend = Backend::start().await;
    script_over_grpc(&backend, "python", "grpc-gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_grpc_exporter() {
    let backend = Backend::start().await;
    script_over_grpc(&backend, "node", "grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_grpc_exporter_gzip() {
    let backend = Backend::start().await;
    script_over_grpc(&backend, "node", "grpc-gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_otlptracegrpc() {
    let backend = Backend::start().await;
    script_over_grpc(&backend, "go", "grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_otlptracegrpc_gzip() {
    let backend = Backend::start().await;
    script_over_grpc(&backend, "go", "grpc-gzip").await;
}

/// With TLS on, the gRPC listener speaks TLS too (HTTP/2 by ALPN), and the
/// Python exporter's `authorization` header carries the ingest token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_exporter_over_tls_with_the_ingest_token() {
    let pki = crate::support::pki::pki();
    let tls = otelite_backend::net::TlsFiles {
        cert: pki.cert.clone(),
        key: pki.key.clone(),
    };
    let backend = Backend::start_with(|config| {
        config.tls = Some(tls);
        config.ingest_token = Some(otelite_backend::net::BearerToken::new("s3cret"));
    })
    .await;
    let service = "python-grpc-client";
    let run_id = run_id("python-grpc-tls");
    let (endpoint, id) = (format!("https://{}", backend.grpc), run_id.clone());
    let cert = pki.cert.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let mut command = client_command("python", [&endpoint, &id, "grpc"]);
        command
            .env("OTEL_EXPORTER_OTLP_CERTIFICATE", cert)
            .env("OTELITE_TOKEN", "s3cret");
        foreign::run(command)
    })
    .await
    .expect("client thread");
    // The query listener speaks TLS too: read back on a plain restart.
    let backend = Backend::restart(backend.stop().await).await;
    check(&backend, &sent, service, "otelite-e2e-python", &run_id).await;
}

/// `opentelemetry-otlp`'s tonic exporter: built inside the runtime (its
/// channel's worker runs there), exporting from the SDK's batch thread.
async fn rust_over_grpc(gzip: bool) {
    let backend = Backend::start().await;
    let service = if gzip {
        "rust-grpc-gzip-client"
    } else {
        "rust-grpc-client"
    };
    let run_id = run_id(service);
    let (endpoint, id) = (grpc_url(&backend), run_id.clone());
    let runtime = tokio::runtime::Handle::current();
    let sent = tokio::task::spawn_blocking(move || {
        let _inside = runtime.enter();
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint);
        if gzip {
            exporter = exporter.with_compression(opentelemetry_otlp::Compression::Gzip);
        }
        let exporter = exporter.build().expect("opentelemetry-otlp gRPC exporter");
        rust_scenario(exporter, service, id)
    })
    .await
    .expect("client thread");
    check(&backend, &sent, service, "otelite-e2e-rust", &run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_opentelemetry_otlp_grpc() {
    rust_over_grpc(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_opentelemetry_otlp_grpc_gzip() {
    rust_over_grpc(true).await;
}

/// A message whose field 1 (`resource_spans`, a message) holds bytes that
/// are no protobuf message: `ExportTraceServiceRequest` cannot decode it.
#[derive(Clone, PartialEq, prost::Message)]
struct Undecodable {
    #[prost(bytes = "vec", tag = "1")]
    resource_spans: Vec<u8>,
}

/// One span with a `filler` attribute of `bytes` bytes.
fn request_of_size(bytes: usize) -> ExportTraceServiceRequest {
    let span = span(unique_trace_id(7), SpanId([7; 8]))
        .attribute("filler", otelite_model::AnyValue::String("x".repeat(bytes)))
        .build();
    otlp_request(&[span])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_otlp_status_and_the_server_stays_up() {
    const LIMIT: usize = 64 * 1024;
    let backend = Backend::start_with(|config| config.max_body_bytes = LIMIT).await;
    let channel = Channel::from_shared(grpc_url(&backend))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");

    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.expect("channel ready");
    let garbage = Undecodable {
        resource_spans: vec![0xff; 16],
    };
    let codec = tonic_prost::ProstCodec::<Undecodable, ExportTraceServiceResponse>::default();
    let path = http::uri::PathAndQuery::from_static(TRACE_EXPORT);
    let refused = raw
        .unary(Request::new(garbage), path, codec)
        .await
        .expect_err("an undecodable message is refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    let mut client = TraceServiceClient::new(channel.clone());
    let too_long = client
        .export(request_of_size(2 * LIMIT))
        .await
        .expect_err("a message over the body limit is refused");
    assert_eq!(too_long.code(), Code::ResourceExhausted, "{too_long:?}");

    // Small on the wire, over the limit once inflated.
    let mut gzip =
        TraceServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
    let bomb = gzip
        .export(request_of_size(16 * LIMIT))
        .await
        .expect_err("a gzip message inflating past the limit is refused");
    assert_eq!(bomb.code(), Code::ResourceExhausted, "{bomb:?}");

    // Still serving, and a message within the limit is stored, gzip or not.
    let fits = request_of_size(LIMIT / 2);
    let trace_id = hex::encode(&fits.resource_spans[0].scope_spans[0].spans[0].trace_id);
    let answer = gzip.export(fits).await.expect("a message within the limit");
    assert_eq!(answer.into_inner().partial_success, None);
    assert_eq!(backend.wait_for_trace(&trace_id, 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_token_is_required_in_the_authorization_metadata() {
    let token = otelite_backend::net::BearerToken::new("s3cret");
    let backend = Backend::start_with(|config| config.ingest_token = Some(token)).await;
    let mut client = trace_client(&backend).await;
    let with = |value: Option<&str>| {
        let mut request = Request::new(request_of_size(10));
        if let Some(value) = value {
            let value = value.parse().expect("metadata value");
            request.metadata_mut().insert("authorization", value);
        }
        request
    };
    for wrong in [None, Some("Bearer nope"), Some("s3cret")] {
        let refused = client
            .export(with(wrong))
            .await
            .expect_err("no or a wrong token is refused");
        assert_eq!(
            refused.code(),
            Code::Unauthenticated,
            "{wrong:?}: {refused:?}"
        );
    }
    client
        .export(with(Some("Bearer s3cret")))
        .await
        .expect("the right token is admitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spans_are_a_partial_success_and_the_valid_ones_are_stored() {
    let backend = Backend::start().await;
    let trace = unique_trace_id(9);
    let good = span(trace, SpanId([1; 8])).name("good").build();
    let bad = span(trace, SpanId([2; 8])).name("bad").build();
    let mut request = otlp_request(&[good, bad]);
    // A span id of 3 bytes: invalid by the OTLP specification.
    request.resource_spans[0].scope_spans[0].spans[1].span_id = vec![2; 3];
    let answer = trace_client(&backend)
        .await
        .export(request)
        .await
        .expect("a request with some invalid spans is answered OK")
        .into_inner();
    let partial = answer.partial_success.expect("partial_success is set");
    assert_eq!(partial.rejected_spans, 1, "{partial:?}");
    assert!(
        partial.error_message.contains("span_id"),
        "the message names the fault: {partial:?}"
    );
    let stored = backend.wait_for_trace(&trace.to_hex(), 1).await;
    assert_eq!(
        stored.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["good"]
    );
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// An SDK's own counters for `service`: 4 spans ended, 4 processed, 3 exported.
fn counters(service: &str) -> ExportMetricsServiceRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let sum = |name: &str, value: i64| {
        crate::support::fixtures::cumulative_sum(name, value, Vec::new(), now - 60_000_000_000, now)
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![text("service.name", service)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    sum("otel.sdk.span.ended", 4),
                    sum("otel.sdk.processor.span.processed", 4),
                    sum("otel.sdk.exporter.span.exported", 3),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_grpc_feed_the_funnel_as_over_http() {
    let backend = Backend::start().await;
    let service = "grpc-counted";
    let trace = unique_trace_id(11);
    let spans: Vec<_> = (1..=3u8)
        .map(|i| span(trace, SpanId([i; 8])).service(service).build())
        .collect();
    trace_client(&backend)
        .await
        .export(otlp_request(&spans))
        .await
        .expect("spans over gRPC");
    MetricsServiceClient::connect(grpc_url(&backend))
        .await
        .expect("connect")
        .export(counters(service))
        .await
        .expect("counters over gRPC");
    let rates = backend
        .wait_for_rates(service, |r| r.exporter_counters && r.n("store") == Some(3))
        .await;
    assert_eq!(
        rates.counts(),
        [Some(4), Some(4), Some(3), Some(3), Some(3), Some(3)],
        "{rates:#?}"
    );
}

/// One HTTP request whose chunked body never ends, holding an admission.
async fn hold_admission(backend: &Backend) -> TcpStream {
    let mut held = TcpStream::connect(backend.otlp).await.expect("connect");
    held.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .expect("send a head");
    held
}

/// The admission is one for both transports: with the only one held by an
/// HTTP request, a gRPC call is refused at once with UNAVAILABLE and a
/// `RetryInfo`; the Python exporter, refused so, waits and retries, and
/// its spans are all stored once the admission is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_unavailable_with_retry_info_and_the_client_retries() {
    let backend = Backend::start_with(|config| config.max_concurrent_requests = 1).await;
    let mut client = trace_client(&backend).await;
    // On a busy machine the probe can overtake the held request's head and
    // be admitted itself: hold again until the probe is refused.
    let deadline = Instant::now() + WAIT;
    let (held, refused) = loop {
        let held = hold_admission(&backend).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        match client.export(request_of_size(10)).await {
            Err(status) => break (held, status),
            Ok(_) => assert!(Instant::now() < deadline, "the probe is never refused"),
        }
    };
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.details().windows(9).any(|w| w == b"RetryInfo"),
        "the refusal carries a google.rpc.RetryInfo: {refused:?}"
    );

    let endpoint = grpc_url(&backend);
    // Spawned now (not a lazy future): the client must start while we wait.
    let client = tokio::task::spawn_blocking(move || {
        foreign::run(client_command(
            "python",
            [&endpoint, "grpc-overload", "grpc"],
        ))
    });
    let rejected = || {
        metric(
            &backend,
            "otelite_requests_rejected_total{reason=\"overloaded\"}",
        )
    };
    let deadline = Instant::now() + WAIT;
    while rejected().await < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the Python exporter is never refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Closing the held request's connection ends it and frees the admission.
    drop(held);
    let sent: Sent = client.await.expect("client thread");
    let stored = backend.wait_for_trace(&sent.trace_id, 4).await;
    let mut ids: Vec<String> = stored.iter().map(|s| s.span_id.to_hex()).collect();
    let mut expected: Vec<String> = sent.spans.values().cloned().collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected, "the client's four spans, each once");
}

/// A sample from `/metrics`, by its full series name (0 when absent).
async fn metric(backend: &Backend, series: &str) -> f64 {
    crate::support::metric_sample(backend.query_url("/metrics"), series)
        .await
        .unwrap_or(0.0)
}

/// Shutdown stops the gRPC listener accepting, then lets the call in flight
/// finish: held at its commit by the test's own lock on the database, it is
/// answered OK once the lock goes, and its span is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_call_in_flight_before_stopping() {
    let backend = Backend::start().await;
    let grpc = backend.grpc;
    let mut client = trace_client(&backend).await;
    let lock = rusqlite::Connection::open(backend.db_path()).expect("open the database");
    lock.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let trace = unique_trace_id(13);
    let request = otlp_request(&[span(trace, SpanId([3; 8])).build()]);
    let call = tokio::spawn(async move { client.export(request).await });
    let deadline = Instant::now() + WAIT;
    while metric(&backend, "otelite_write_queue_spans").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the call never reaches the writer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stopping = tokio::spawn(backend.stop());
    while TcpStream::connect(grpc).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the gRPC listener keeps accepting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock.execute_batch("ROLLBACK").expect("let the lock go");
    let answer = call
        .await
        .expect("call task")
        .expect("the call in flight is answered OK");
    assert_eq!(answer.into_inner().partial_success, None);

    let backend = Backend::restart(stopping.await.expect("stop task")).await;
    assert_eq!(backend.wait_for_trace(&trace.to_hex(), 1).await.len(), 1);
}

/// One call of the flood below: `spans` spans of one trace, each with a
/// 2 000-byte attribute.
fn flood_call(tag: u8, spans: usize) -> (String, ExportTraceServiceRequest) {
    let trace = unique_trace_id(tag);
    let spans: Vec<_> = (0..spans)
        .map(|n| {
            span(trace, SpanId([tag, n as u8, 1, 1, 1, 1, 1, 1]))
                .attribute("filler", otelite_model::AnyValue::String("f".repeat(2_000)))
                .build()
        })
        .collect();
    (trace.to_hex(), otlp_request(&spans))
}

/// gRPC calls are in the byte budget (`max_inflight_bytes`) as OTLP/HTTP
/// requests are. A budget that holds one call's message and decoded form
/// (about 42 KB, budgeted at 5× that) but not two: a flood of concurrent
/// callers gets UNAVAILABLE with a `RetryInfo` for some calls; every call
/// acknowledged has all its spans stored, no refused one has any, and the
/// budget's peak in /metrics counts the calls' bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_past_the_byte_budget_is_refused_with_retry_info_and_acked_spans_stored() {
    const BUDGET: usize = 300 * 1024;
    const CALLERS: usize = 12;
    const CALLS: usize = 3;
    const SPANS: usize = 20;
    let backend = Backend::start_with(|config| config.max_inflight_bytes = BUDGET).await;
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let url = grpc_url(&backend);
            tokio::spawn(async move {
                let mut client = TraceServiceClient::connect(url).await.expect("connect");
                let mut outcomes = Vec::new();
                for call in 0..CALLS {
                    let (trace, request) = flood_call((caller * CALLS + call) as u8, SPANS);
                    let size = prost::Message::encoded_len(&request);
                    outcomes.push((trace, size, client.export(request).await));
                }
                outcomes
            })
        })
        .collect();
    let (mut acked, mut refused, mut largest) = (Vec::new(), Vec::new(), 0);
    for caller in callers {
        for (trace, size, outcome) in caller.await.expect("a caller did not panic") {
            largest = largest.max(size);
            match outcome {
                Ok(answer) => {
                    assert_eq!(answer.into_inner().partial_success, None);
                    acked.push(trace);
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                    assert!(
                        status.details().windows(9).any(|w| w == b"RetryInfo"),
                        "the refusal carries a google.rpc.RetryInfo: {status:?}"
                    );
                    refused.push(trace);
                }
            }
        }
    }
    println!(
        "gRPC flood: {} acked, {} refused; calls of {largest} B",
        acked.len(),
        refused.len()
    );
    assert!(!acked.is_empty() && !refused.is_empty(), "some of each");
    for trace in &acked {
        let stored = backend.trace(trace).await.unwrap_or_default();
        let mut ids: Vec<SpanId> = stored.iter().map(|s| s.span_id).collect();
        ids.sort_by_key(|id| id.0);
        ids.dedup();
        assert_eq!(ids.len(), SPANS, "every span of acked trace {trace}, once");
    }
    for trace in &refused {
        assert!(
            backend.trace(trace).await.is_none(),
            "refused {trace} not stored"
        );
    }
    let peak = metric(&backend, "otelite_inflight_bytes_peak").await;
    let capacity = metric(&backend, "otelite_inflight_bytes_capacity").await;
    assert_eq!(capacity, BUDGET as f64);
    assert!(
        peak >= largest as f64 && peak <= capacity,
        "the peak {peak} counts a call's {largest} B, within {capacity}"
    );
    assert_eq!(
        metric(
            &backend,
            "otelite_requests_rejected_total{reason=\"overloaded\"}"
        )
        .await,
        refused.len() as f64
    );
}
