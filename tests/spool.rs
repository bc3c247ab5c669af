//! The exporter's spool: spans made while the backend is down, across an
//! app restart, arrive once it is back, each exactly once; a full spool
//! drops what does not fit and counts it, and the report of that loss
//! still reaches the backend; a short-lived app empties the spool at
//! shutdown; a backend that never answers does not cost the last batch;
//! providers sharing a directory keep each other's spans; a file that does
//! not decode is lost in the spool, not blamed on transmission; a
//! directory others may write is refused.

use crate::support::{Backend, GatedProxy, resource, shutdown};
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracerProvider};
use otelite_exporter::counters::{Counters, FailureKind};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

const SERVICE: &str = "spool-svc";

fn spooling_provider(
    endpoint: &str,
    spool: &Path,
    max_bytes: u64,
) -> (SdkTracerProvider, Arc<Counters>) {
    spooling_provider_of(SERVICE, endpoint, spool, max_bytes)
}

fn spooling_provider_of(
    service: &str,
    endpoint: &str,
    spool: &Path,
    max_bytes: u64,
) -> (SdkTracerProvider, Arc<Counters>) {
    let builder = otelite_exporter::OteliteExporter::builder()
        .with_endpoint(endpoint)
        .with_spool(spool, max_bytes)
        // The final report gets at most this, and the spool's last pass at
        // shutdown half of it: room enough on a loaded machine.
        .with_timeout(std::time::Duration::from_secs(5))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_export_batch_size(10)
                .build(),
        );
    let counters = builder.counters();
    let provider = builder
        .build_provider(resource(service))
        .expect("exporter with a spool builds");
    (provider, counters)
}

/// Makes one trace of `spans` spans; returns (trace id, span ids).
fn make_trace(provider: &SdkTracerProvider, spans: usize) -> (String, BTreeSet<String>) {
    let tracer = provider.tracer("spool");
    let mut ids = BTreeSet::new();
    let trace_id = tracer.in_span("root", |cx| {
        ids.insert(cx.span().span_context().span_id().to_string());
        for i in 1..spans {
            let mut child = tracer.start_with_context(format!("child-{i}"), &cx);
            child.set_attribute(opentelemetry::KeyValue::new("payload", "x".repeat(200)));
            ids.insert(child.span_context().span_id().to_string());
            child.end();
        }
        cx.span().span_context().trace_id().to_string()
    });
    (trace_id, ids)
}

fn spooled_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |files| files.count())
}

/// File names in the spool directory, sorted.
fn spooled_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("spool dir lists")
        .map(|f| f.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Spans the spooled traces hold, by decoding each file (not its name).
fn spooled_spans(dir: &Path) -> usize {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use std::io::Read;
    let mut spans = 0;
    for name in spooled_names(dir) {
        if !name.contains("-traces-") || !name.ends_with(".pb.gz") {
            continue;
        }
        let body = std::fs::read(dir.join(&name)).expect("spool file reads");
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut raw)
            .expect("spool file is gzip");
        let request: ExportTraceServiceRequest =
            prost::Message::decode(&raw[..]).expect("spool file is a request");
        spans += request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum::<usize>();
    }
    spans
}

fn spooled_reports(dir: &Path) -> usize {
    spooled_names(dir)
        .iter()
        .filter(|n| n.contains("-metrics-"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_outlive_an_outage_and_an_app_restart_and_arrive_once() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");

    // First run of the app: the backend is down throughout.
    let (first, _) = spooling_provider(&endpoint, spool.path(), 64 << 20);
    let (trace_a, spans_a) = make_trace(&first, 25);
    shutdown(first).await;
    assert!(spooled_files(spool.path()) >= 3, "batches of 10 spooled");

    // The app restarts with the same spool; the backend is still down.
    let (second, _) = spooling_provider(&endpoint, spool.path(), 64 << 20);
    let (trace_b, spans_b) = make_trace(&second, 15);
    let backend = Backend::restart(down).await;
    for (trace, spans) in [(&trace_a, &spans_a), (&trace_b, &spans_b)] {
        let stored = backend.wait_for_trace(trace, spans.len()).await;
        let ids: Vec<String> = stored.iter().map(|s| s.span_id.to_string()).collect();
        assert_eq!(ids.len(), spans.len(), "each span once");
        assert_eq!(&ids.into_iter().collect::<BTreeSet<_>>(), spans);
    }
    shutdown(second).await;

    // Both runs' counters arrived too (the first run's from the spool).
    let total = (spans_a.len() + spans_b.len()) as u64;
    let rates = backend
        .wait_for_rates(SERVICE, |r| {
            r.n("total") == Some(total) && r.n("transmit") == Some(total)
        })
        .await;
    assert_eq!(rates.n("collect"), Some(total));
    assert_eq!(rates.n("store"), Some(total), "nothing stored twice");
    assert_eq!(spooled_files(spool.path()), 0, "the spool is empty again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_spool_drops_what_does_not_fit_and_counts_it() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");

    // Room for about one gzip'd batch of 10 spans.
    let (provider, counters) = spooling_provider(&endpoint, spool.path(), 1200);
    let (trace, _) = make_trace(&provider, 60);
    provider.force_flush().expect("flush");
    let snapshot = counters.snapshot();
    let dropped = snapshot.failed(FailureKind::SpoolFull);
    assert_eq!(snapshot.spans_collected, 60);
    assert!(
        dropped > 0 && dropped < 60,
        "some batches fit, the rest are dropped and counted: {snapshot:?}"
    );

    let backend = Backend::restart(down).await;
    let kept = (60 - dropped) as usize;
    let stored = backend.wait_for_trace(&trace, kept).await;
    assert_eq!(stored.len(), kept, "exactly what the spool held arrives");
    shutdown(provider).await;
    let rates = backend
        .wait_for_rates(SERVICE, |r| r.n("total") == Some(60))
        .await;
    assert_eq!(rates.n("collect"), Some(60));
    assert_eq!(
        rates.n("transmit"),
        Some(kept as u64),
        "the loss shows at transmit"
    );
    assert_eq!(rates.n("store"), Some(kept as u64));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_spool_still_reports_the_loss_to_the_next_run() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");

    // Room for about one batch: most spans are dropped, and the report
    // saying so must still be kept for the next run.
    let (first, counters) = spooling_provider(&endpoint, spool.path(), 1200);
    make_trace(&first, 60);
    shutdown(first).await;
    let dropped = counters.snapshot().failed(FailureKind::SpoolFull);
    assert!(dropped > 0 && dropped < 60, "{:?}", counters.snapshot());
    assert_eq!(
        spooled_reports(spool.path()),
        1,
        "{:?}",
        spooled_names(spool.path())
    );

    // The next run (no spans of its own) sends the spool at its shutdown.
    let backend = Backend::restart(down).await;
    let (second, _) = spooling_provider(&endpoint, spool.path(), 1200);
    shutdown(second).await;
    let kept = 60 - dropped;
    let rates = backend
        .wait_for_rates(SERVICE, |r| {
            r.n("total") == Some(60) && r.n("transmit") == Some(kept)
        })
        .await;
    assert_eq!(
        rates.n("total"),
        Some(60),
        "the loss is reported: {rates:#?}"
    );
    assert_eq!(rates.n("collect"), Some(60));
    assert_eq!(rates.n("transmit"), Some(kept), "lost at transmit");
    assert_eq!(rates.n("store"), Some(kept));
    assert_eq!(spooled_files(spool.path()), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_lived_app_empties_the_spool_at_shutdown() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");

    let (first, _) = spooling_provider(&endpoint, spool.path(), 64 << 20);
    let (trace_a, spans_a) = make_trace(&first, 25);
    shutdown(first).await;
    // The second run queues behind the first while the backend is down…
    let (second, _) = spooling_provider(&endpoint, spool.path(), 64 << 20);
    let (trace_b, spans_b) = make_trace(&second, 15);
    tokio::task::spawn_blocking({
        let second = second.clone();
        move || second.force_flush()
    })
    .await
    .expect("flush thread")
    .expect("flush");
    assert_eq!(spooled_spans(spool.path()), 40);

    // …and ends just after the backend is back: its shutdown sends it all.
    let backend = Backend::restart(down).await;
    shutdown(second).await;
    assert_eq!(
        spooled_names(spool.path()),
        Vec::<String>::new(),
        "nothing left for a next run"
    );
    for (trace, spans) in [(&trace_a, &spans_a), (&trace_b, &spans_b)] {
        let stored = backend.wait_for_trace(trace, spans.len()).await;
        assert_eq!(stored.len(), spans.len());
    }
    let rates = backend
        .wait_for_rates(SERVICE, |r| {
            r.n("total") == Some(40) && r.n("transmit") == Some(40)
        })
        .await;
    assert_eq!(
        rates.counts()[..2],
        [Some(40), Some(40)],
        "total, collect: {rates:#?}"
    );
    assert_eq!(rates.n("transmit"), Some(40), "each span counted once");
    assert_eq!(rates.n("store"), Some(40));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_never_answers_does_not_cost_the_last_batch() {
    let backend = Backend::start().await;
    // Accepts connections, never answers.
    let hung = GatedProxy::start(backend.otlp, false).await;
    let parent = tempfile::tempdir().expect("spool parent");
    // A directory the exporter creates itself.
    let spool = parent.path().join("spool");

    // The export deadline (10 s) is longer than the SDK's shutdown (5 s).
    let builder = otelite_exporter::OteliteExporter::builder()
        .with_endpoint(hung.url())
        .with_spool(&spool, 64 << 20)
        .with_timeout(std::time::Duration::from_secs(10));
    let provider = builder
        .build_provider(resource(SERVICE))
        .expect("exporter builds");
    let (trace, spans) = make_trace(&provider, 5);
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .expect("shutdown thread")
        .expect("shutdown within the SDK's 5 s");
    assert_eq!(spooled_spans(&spool), 5, "the batch waits on disk");
    assert_eq!(spooled_reports(&spool), 1, "and so does the report");
    // Private: queued spans are nobody else's to read or swap.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&spool), 0o700);
    for name in spooled_names(&spool) {
        assert_eq!(mode(&spool.join(&name)), 0o600, "{name}");
    }

    // The next run, with the backend reachable, delivers both.
    let (second, _) = spooling_provider(&backend.otlp_url(), &spool, 64 << 20);
    shutdown(second).await;
    let stored = backend.wait_for_trace(&trace, spans.len()).await;
    assert_eq!(stored.len(), 5);
    assert_every_span_counted(&backend, SERVICE, 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_sharing_a_spool_keep_each_others_spans_and_reports() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");

    // Three providers in one process, one directory, the same batch shapes.
    let providers: Vec<_> = (0..3)
        .map(|_| spooling_provider(&endpoint, spool.path(), 64 << 20).0)
        .collect();
    let traces: Vec<_> = providers.iter().map(|p| make_trace(p, 4)).collect();
    for provider in providers {
        shutdown(provider).await;
    }
    assert_eq!(spooled_spans(spool.path()), 12);
    assert_eq!(spooled_reports(spool.path()), 3);

    let backend = Backend::restart(down).await;
    let (next, _) = spooling_provider(&endpoint, spool.path(), 64 << 20);
    shutdown(next).await;
    for (trace, spans) in &traces {
        assert_eq!(backend.wait_for_trace(trace, 4).await.len(), spans.len());
    }
    assert_every_span_counted(&backend, SERVICE, 12).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_service_sends_its_own_spooled_spans_so_they_count_for_it() {
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let run = |service: &str| spooling_provider_of(service, &endpoint, spool.path(), 64 << 20).0;

    let (a, b) = (run("spool-a"), run("spool-b"));
    let (trace_a, _) = make_trace(&a, 4);
    let (trace_b, _) = make_trace(&b, 6);
    shutdown(a).await;
    shutdown(b).await;
    assert_eq!(spooled_spans(spool.path()), 10);

    // Only spool-a runs again: it sends its own requests, not spool-b's.
    let backend = Backend::restart(down).await;
    shutdown(run("spool-a")).await;
    assert_eq!(backend.wait_for_trace(&trace_a, 4).await.len(), 4);
    let rates = backend
        .wait_for_rates("spool-a", |r| r.n("total") == Some(4))
        .await;
    assert_eq!(
        rates.counts()[..4],
        [Some(4), Some(4), Some(4), Some(4)],
        "total, collect, transmit, store of spool-a: {rates:#?}"
    );
    assert_eq!(
        spooled_spans(spool.path()),
        6,
        "spool-b's spans wait for it"
    );

    shutdown(run("spool-b")).await;
    assert_eq!(backend.wait_for_trace(&trace_b, 6).await.len(), 6);
    let rates = backend
        .wait_for_rates("spool-b", |r| r.n("total") == Some(6))
        .await;
    assert_eq!(
        rates.counts()[..4],
        [Some(6), Some(6), Some(6), Some(6)],
        "total, collect, transmit, store of spool-b: {rates:#?}"
    );
    assert_eq!(spooled_files(spool.path()), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_spool_file_is_lost_in_the_spool_not_in_transmission() {
    let backend = Backend::start().await;
    let spool = tempfile::tempdir().expect("spool dir");
    // Named for 3 spans, holding none (a disk that filled up, say).
    let planted = spool.path().join("00000000000000000000-traces-3.pb");
    std::fs::write(&planted, b"").expect("plant");

    let (provider, counters) = spooling_provider(&backend.otlp_url(), spool.path(), 64 << 20);
    let (trace, _) = make_trace(&provider, 5);
    shutdown(provider).await;
    let snapshot = counters.snapshot();
    assert_eq!(snapshot.spans_exported, 5, "{snapshot:?}");
    assert_eq!(snapshot.failed(FailureKind::SpoolUnreadable), 3);
    assert_eq!(
        spooled_names(spool.path()),
        ["00000000000000000000-traces-3.pb.unreadable"],
        "set aside, not sent"
    );
    assert_eq!(backend.wait_for_trace(&trace, 5).await.len(), 5);
    let rates = backend
        .wait_for_rates(SERVICE, |r| r.n("total") == Some(5))
        .await;
    assert_eq!(
        rates.counts()[..4],
        [Some(5), Some(5), Some(5), Some(5)],
        "transmit counts only what was sent: {rates:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spool_directory_others_may_write_is_refused_and_the_loss_counted() {
    use std::os::unix::fs::PermissionsExt;
    let backend = Backend::start().await;
    let endpoint = backend.otlp_url();
    let _down = backend.stop().await;
    let spool = tempfile::tempdir().expect("spool dir");
    std::fs::set_permissions(spool.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");

    // The app still starts; the batches the spool would have held are
    // counted with the reason, and nothing is written there. (Without a
    // spool the exporter retries until its deadline: keep that short.)
    let builder = otelite_exporter::OteliteExporter::builder()
        .with_endpoint(endpoint)
        .with_spool(spool.path(), 64 << 20)
        .with_timeout(std::time::Duration::from_secs(1));
    let counters = builder.counters();
    let provider = builder
        .build_provider(resource(SERVICE))
        .expect("the exporter builds all the same");
    make_trace(&provider, 5);
    shutdown(provider).await;
    let snapshot = counters.snapshot();
    assert_eq!(
        snapshot.failed(FailureKind::SpoolRefused),
        5,
        "{snapshot:?}"
    );
    assert_eq!(snapshot.failed_total(), 5);
    assert_eq!(spooled_files(spool.path()), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_spool_a_batch_cut_at_shutdown_is_counted() {
    let backend = Backend::start().await;
    let hung = GatedProxy::start(backend.otlp, false).await;
    let builder = otelite_exporter::OteliteExporter::builder()
        .with_endpoint(hung.url())
        .with_timeout(std::time::Duration::from_secs(10));
    let counters = builder.counters();
    let provider = builder
        .build_provider(resource(SERVICE))
        .expect("exporter builds");
    make_trace(&provider, 5);
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .expect("shutdown thread")
        .expect("shutdown within the SDK's 5 s");
    let snapshot = counters.snapshot();
    assert_eq!(
        (
            snapshot.spans_collected,
            snapshot.failed(FailureKind::Timeout)
        ),
        (5, 5),
        "not sent, and counted: {snapshot:?}"
    );
}

/// In front of the backend: closes the first `refuse` connections at once
/// (the backend seems away), then forwards. Counts what it closed.
struct RefusingFront {
    addr: std::net::SocketAddr,
    refused: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RefusingFront {
    async fn start(upstream: std::net::SocketAddr, refuse: usize) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("front binds");
        let addr = listener.local_addr().expect("front address");
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = refused.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if count.load(Ordering::SeqCst) < refuse {
                    count.fetch_add(1, Ordering::SeqCst);
                    continue; // dropped: closed without an answer
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            addr,
            refused,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RefusingFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spooled_file_short_of_its_named_spans_counts_the_shortfall_once() {
    use crate::support::fixtures;
    use otelite_model::SpanId;
    use std::io::Write;
    let backend = Backend::start().await;
    let front = RefusingFront::start(backend.otlp, 3).await;
    let spool = tempfile::tempdir().expect("spool dir");

    // Named for 5 spans, holding 3 (an earlier version's name: anyone sends it).
    let trace = crate::support::unique_trace_id(11);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let spans: Vec<_> = (1..=3)
        .map(|i| {
            fixtures::span(trace, SpanId([0x5b, 0, 0, 0, 0, 0, 0, i]))
                .times(now - 1_000_000, now)
                .build()
        })
        .collect();
    let raw = prost::Message::encode_to_vec(&fixtures::otlp_request(&spans));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    let body = gz.finish().expect("gzip");
    std::fs::write(
        spool.path().join("00000000000000000000-traces-5.pb.gz"),
        body,
    )
    .expect("plant");

    // The drainer finds the backend away a few times before it gets through.
    let (provider, counters) = spooling_provider(&front.url(), spool.path(), 64 << 20);
    crate::support::wait_until(
        "the spool is sent",
        || async { spooled_files(spool.path()) },
        |files| *files == 0,
    )
    .await;
    shutdown(provider).await;
    assert_eq!(
        front.refused.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "tried and refused first"
    );
    let snapshot = counters.snapshot();
    assert_eq!(snapshot.spans_exported, 3, "{snapshot:?}");
    assert_eq!(
        snapshot.failed(FailureKind::SpoolUnreadable),
        2,
        "the 2 missing spans, once, however many tries: {snapshot:?}"
    );
    assert_eq!(backend.wait_for_trace(&trace.to_hex(), 3).await.len(), 3);
}

/// Waits until `service`'s total and transmit reach `spans`, then asserts
/// that total, collect, transmit and store all counted exactly `spans`.
async fn assert_every_span_counted(backend: &Backend, service: &str, spans: u64) {
    let rates = backend
        .wait_for_rates(service, |r| {
            r.n("total") == Some(spans) && r.n("transmit") == Some(spans)
        })
        .await;
    assert_eq!(
        rates.counts()[..4],
        [Some(spans), Some(spans), Some(spans), Some(spans)],
        "total, collect, transmit, store: {rates:#?}"
    );
}
