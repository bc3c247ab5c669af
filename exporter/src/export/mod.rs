//! The `SpanExporter`: SDK spans → model → OTLP protobuf, POSTed (gzip by
//! default) to `{endpoint}/v1/traces` on the exporter's own runtime, with
//! retries under one deadline, counting collected/exported/failed spans.
//! Also the builder, including `build_provider` for the common wiring.

mod attempt;
mod body;
pub mod config;
mod cut;
pub(crate) mod drain;
pub mod retry;
pub(crate) mod runtime;
pub mod spool;

pub use attempt::encode_body;
pub use config::{Compression, ExporterConfig, RawConfig};
pub use spool::{DEFAULT_SPOOL_BYTES, SpoolConfig};

use crate::convert::SdkConverter;
use crate::counters::{Counters, FailureKind};
use crate::error::{ConfigError, ExportError};
use crate::metrics::MetricsReporter;
use crate::processor::CountingProcessor;
use attempt::HttpClient;
use body::BodyEncoder;
use bytes::Bytes;
use http::Uri;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfig, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use runtime::RuntimeThread;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// State shared by the exporter, its periodic metrics task and the
/// `CountingProcessor`. It does not own the runtime, so a task holding it
/// cannot keep the runtime alive.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ExporterConfig,
    client: HttpClient,
    pub counters: Arc<Counters>,
    converter: Mutex<SdkConverter>,
    /// Buffer and deflate state kept across exports (the batch processor
    /// exports one batch at a time, so the lock is not contended).
    encoder: Mutex<BodyEncoder>,
    pub start_time: SystemTime,
    /// Set when a `CountingProcessor` sends the final report instead of `shutdown`.
    pub final_report_by_processor: AtomicBool,
    /// Set by `SpanExporter::shutdown`, which the batch processor calls after
    /// its last drain: from then on every accepted span has been counted.
    pub exporter_shut_down: AtomicBool,
    pub periodic: Mutex<Option<tokio::task::AbortHandle>>,
    /// Requests the endpoint could not take, when a spool is configured.
    pub spool: Option<Arc<spool::Spool>>,
    /// A spool was configured but its directory refused: what it would
    /// have held is counted as `spool_refused`.
    spool_refused: bool,
    /// Wakes the drainer when a request is spooled.
    spool_wake: tokio::sync::Notify,
    drainer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set once the provider has handed over its resource: until then the
    /// service, hence which spooled requests are this exporter's, is unknown.
    resource_set: tokio::sync::watch::Sender<bool>,
    /// Set when shutdown begins: export tries and the background drainer's
    /// request in flight end by this instant, so that shutdown can still
    /// spool (or count) what they carried within its own deadline.
    cut_off: tokio::sync::watch::Sender<Option<cut::CutOff>>,
}

impl Shared {
    pub(crate) fn converter(&self) -> SdkConverter {
        self.converter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_resource(&self, resource: &opentelemetry_sdk::Resource) {
        *self
            .converter
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = SdkConverter::new(resource);
        self.resource_set.send_replace(true);
    }

    /// The spool's owner part for this exporter's service: its runs send
    /// the requests it spools, so the spans count for that service.
    pub(crate) fn spool_owner(&self) -> String {
        spool::owner_of(&self.converter().resource().service_name)
    }

    /// POSTs an encoded body once, within `deadline`; the 2xx body on success.
    pub(crate) async fn post_once(
        &self,
        url: &Uri,
        body: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, ExportError> {
        let config = &self.config;
        let sent = tokio::time::timeout_at(
            deadline,
            attempt::attempt(&self.client, url, &config.headers, config.compression, body),
        )
        .await;
        match sent {
            Err(_elapsed) => Err(ExportError::Timeout(config.timeout)),
            Ok(Ok(answer)) if answer.status.is_success() => Ok(answer.body),
            Ok(Ok(answer)) => Err(retry::http_error(&answer)),
            Ok(Err(error)) => Err(error),
        }
    }

    /// POSTs an encoded body with retries until `deadline`; the 2xx body on success.
    pub(crate) async fn post(
        &self,
        url: &Uri,
        body: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, ExportError> {
        let config = &self.config;
        retry::post_with_retry(
            &self.client,
            url,
            &config.headers,
            config.compression,
            body,
            deadline,
            config.timeout,
        )
        .await
    }

    /// Writes a request the endpoint could not take to the spool, if there
    /// is one; `Err` when there is none or it is full.
    pub(crate) async fn spool(
        &self,
        kind: spool::Kind,
        spans: u64,
        body: Bytes,
    ) -> Result<(), spool::SpoolError> {
        let Some(spool) = self.spool.clone() else {
            return Err(spool::SpoolError::Io(std::io::Error::other("no spool")));
        };
        let compression = self.config.compression;
        let owner = self.spool_owner();
        // The fsync does not belong on the runtime's only thread.
        tokio::task::spawn_blocking(move || spool.push(&owner, kind, spans, compression, &body))
            .await
            .map_err(|e| spool::SpoolError::Io(std::io::Error::other(e)))??;
        self.spool_wake.notify_one();
        Ok(())
    }

    /// Resolves once shutdown has set a cut-off and it has passed for a
    /// request started now.
    pub(crate) async fn cut_off_reached(&self) {
        let started = Instant::now();
        let mut cut_off = self.cut_off.subscribe();
        loop {
            let cut = *cut_off.borrow_and_update();
            match cut {
                Some(cut) => return tokio::time::sleep_until(cut.end_for(started)).await,
                // The sender lives in `self`: `changed` cannot fail here.
                None => {
                    if cut_off.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Runs an export try, unless shutdown's cut-off comes first.
    async fn until_cut_off<T>(
        &self,
        work: impl Future<Output = Result<T, ExportError>>,
    ) -> Result<T, ExportError> {
        tokio::select! {
            done = work => done,
            () = self.cut_off_reached() => Err(ExportError::CutByShutdown),
        }
    }

    /// Begins shutdown: tries in flight end by `at`, later ones get
    /// `late_grace`; the background drainer stops after its current request.
    /// The first call wins.
    pub(crate) fn begin_shutdown(&self, at: Instant, late_grace: Duration) {
        self.cut_off.send_if_modified(|cut_off| {
            let first = cut_off.is_none();
            if first {
                *cut_off = Some(cut::CutOff { at, late_grace });
            }
            first
        });
    }

    /// Waits for the background drainer to stop (it stops once shutdown
    /// has begun, after its request in flight), aborting it past `by`.
    pub(crate) async fn stop_drainer(&self, by: Instant) {
        let drainer = self
            .drainer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut drainer) = drainer
            && tokio::time::timeout_at(by, &mut drainer).await.is_err()
        {
            drainer.abort();
        }
    }

    pub(crate) fn stop_periodic_reports(&self) {
        if let Some(task) = self
            .periodic
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

/// The otelite span exporter. See the crate docs for a quick start.
#[derive(Debug)]
pub struct OteliteExporter {
    shared: Arc<Shared>,
    runtime: Arc<RuntimeThread>,
}

impl OteliteExporter {
    /// Starts a builder; nothing is read from the environment before `build`.
    pub fn builder() -> OteliteExporterBuilder {
        OteliteExporterBuilder::default()
    }

    /// An exporter for an already-resolved configuration, counting into `counters`.
    pub fn from_config(
        config: ExporterConfig,
        counters: Arc<Counters>,
    ) -> Result<Self, ConfigError> {
        let runtime = Arc::new(RuntimeThread::start()?);
        let interval = config.metrics_interval;
        let client = attempt::http_client(otelite_model::tls::client_config(
            config.certificate.as_ref(),
        )?);
        let spool = match &config.spool {
            Some(spool) => open_spool(spool),
            None => None,
        };
        let spool_refused = config.spool.is_some() && spool.is_none();
        let shared = Arc::new(Shared {
            config,
            client,
            counters,
            converter: Mutex::new(SdkConverter::new(
                &opentelemetry_sdk::Resource::builder().build(),
            )),
            encoder: Mutex::new(BodyEncoder::default()),
            start_time: SystemTime::now(),
            final_report_by_processor: AtomicBool::new(false),
            exporter_shut_down: AtomicBool::new(false),
            periodic: Mutex::new(None),
            spool,
            spool_refused,
            spool_wake: tokio::sync::Notify::new(),
            drainer: Mutex::new(None),
            resource_set: tokio::sync::watch::Sender::new(false),
            cut_off: tokio::sync::watch::Sender::new(None),
        });
        if shared.spool.is_some() {
            let task = runtime.spawn(drain::drain(shared.clone()));
            *shared
                .drainer
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task);
        }
        if let Some(interval) = interval {
            let task = runtime.spawn(crate::metrics::periodic(shared.clone(), interval));
            *shared
                .periodic
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        }
        Ok(Self { shared, runtime })
    }

    /// The counters this exporter (and its `CountingProcessor`) update.
    pub fn counters(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }

    /// The configuration in effect.
    pub fn config(&self) -> &ExporterConfig {
        &self.shared.config
    }

    /// A handle for `CountingProcessor::new`. Taking it hands the final
    /// metrics report over to that processor (the exporter's own `shutdown`
    /// then sends none, so the report is not sent twice).
    pub fn metrics_reporter(&self) -> MetricsReporter {
        self.shared
            .final_report_by_processor
            .store(true, Ordering::Relaxed);
        MetricsReporter::new(self.shared.clone(), self.runtime.clone())
    }

    /// Counts the batch as collected and encodes it (once), straight from
    /// the SDK's spans.
    fn prepare(&self, batch: Vec<SpanData>) -> Result<Bytes, ExportError> {
        self.shared.counters.record_collected(batch.len() as u64);
        let converter = self.shared.converter();
        self.shared
            .encoder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .encode_with(self.shared.config.compression, |buf| {
                crate::encode::encode_request(&converter, &batch, buf);
                Ok(())
            })
    }
}

/// Opens the spool; a directory that cannot be used is refused with an
/// error in the log, and the exporter runs without it (never failing the
/// app over it): what it would have held is counted as `spool_refused`.
fn open_spool(config: &SpoolConfig) -> Option<Arc<spool::Spool>> {
    match spool::Spool::open(config.clone()) {
        Ok(spool) => Some(Arc::new(spool)),
        Err(error) => {
            tracing::error!(
                %error,
                dir = %config.dir.display(),
                "otelite-exporter: the spool is not used; batches the endpoint cannot take are lost"
            );
            None
        }
    }
}

/// The instant `timeout` from now (far in the future if that overflows).
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// Counts an acknowledged batch of `spans`, minus those the 2xx answer
/// lists as rejected. A 2xx whose body is not a response message still
/// acknowledges the batch.
pub(crate) fn record_acknowledged(shared: &Shared, spans: u64, answer: Bytes) {
    let rejected = <ExportTraceServiceResponse as prost::Message>::decode(answer)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
    shared.counters.record_acknowledged(spans, rejected);
}

/// Sends one encoded batch and counts the outcome. With a spool, the batch
/// joins the spool when older requests wait there (order is kept) or when
/// the endpoint does not take it now; the drainer sends it later.
async fn send_batch(
    shared: Arc<Shared>,
    body: Bytes,
    spans: u64,
    deadline: Instant,
) -> Result<(), ExportError> {
    let url = shared.config.traces_url.clone();
    let spooling = shared
        .spool
        .as_ref()
        .map(|spool| !spool.holds_any_for(&shared.spool_owner()));
    let sent = match spooling {
        Some(false) => return spool_batch(&shared, body, spans).await,
        // With a spool, one try: the drainer does the waiting.
        Some(true) => {
            shared
                .until_cut_off(shared.post_once(&url, body.clone(), deadline))
                .await
        }
        None => {
            shared
                .until_cut_off(shared.post(&url, body.clone(), deadline))
                .await
        }
    };
    match sent {
        Ok(answer) => {
            record_acknowledged(&shared, spans, answer);
            Ok(())
        }
        Err(error) if spooling.is_some() && retry::worth_retrying(&error) => {
            spool_batch(&shared, body, spans).await
        }
        Err(error) => {
            let kind = if shared.spool_refused && retry::worth_retrying(&error) {
                FailureKind::SpoolRefused
            } else {
                FailureKind::of(&error)
            };
            shared.counters.record_failed(kind, spans);
            Err(error)
        }
    }
}

/// Hands a batch to the spool; a full spool loses it (counted).
async fn spool_batch(shared: &Shared, body: Bytes, spans: u64) -> Result<(), ExportError> {
    match shared.spool(spool::Kind::Traces, spans, body).await {
        Ok(()) => Ok(()),
        Err(error) => {
            let kind = match error {
                spool::SpoolError::Full { .. } => FailureKind::SpoolFull,
                spool::SpoolError::Io(_) | spool::SpoolError::Refused(_) => FailureKind::Internal,
            };
            shared.counters.record_failed(kind, spans);
            Err(ExportError::Internal(error.to_string()))
        }
    }
}

impl SpanExporter for OteliteExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        let deadline = deadline_after(self.shared.config.timeout);
        let shared = self.shared.clone();
        let task = match (spans, self.prepare(batch)) {
            (0, _) => Ok(None),
            (_, Ok(body)) => Ok(Some(self.runtime.spawn(send_batch(
                shared.clone(),
                body,
                spans,
                deadline,
            )))),
            (_, Err(error)) => Err(error),
        };
        async move {
            let outcome = match task {
                Ok(None) => Ok(()),
                Ok(Some(join)) => match join.await {
                    Ok(outcome) => outcome,
                    Err(join_error) => {
                        let error =
                            ExportError::Internal(format!("exporter runtime: {join_error}"));
                        shared.counters.record_failed(FailureKind::Internal, spans);
                        Err(error)
                    }
                },
                Err(error) => {
                    shared
                        .counters
                        .record_failed(FailureKind::of(&error), spans);
                    Err(error)
                }
            };
            outcome.map_err(|e| match e {
                ExportError::Timeout(t) => OTelSdkError::Timeout(t),
                other => OTelSdkError::InternalFailure(other.to_string()),
            })
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared
            .exporter_shut_down
            .store(true, Ordering::Release);
        // With a `CountingProcessor`, it drains the spool and reports once
        // the whole pipeline has shut down.
        if !self
            .shared
            .final_report_by_processor
            .load(Ordering::Relaxed)
        {
            let reporter = MetricsReporter::new(self.shared.clone(), self.runtime.clone());
            reporter.final_report(None, timeout);
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.shared.set_resource(resource);
    }
}

/// Builder for `OteliteExporter` and for a ready `SdkTracerProvider`.
#[derive(Debug, Default)]
pub struct OteliteExporterBuilder {
    raw: RawConfig,
    batch_config: Option<BatchConfig>,
    counters: Arc<Counters>,
}

impl OteliteExporterBuilder {
    /// Base URL, e.g. `http://127.0.0.1:4318`; `/v1/traces` and `/v1/metrics` are appended.
    pub fn with_endpoint(mut self, base_url: impl Into<String>) -> Self {
        self.raw.endpoint = Some(base_url.into());
        self
    }

    /// Request headers; they replace any from `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`.
    pub fn with_headers<K: Into<String>, V: Into<String>>(
        mut self,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.raw.headers = Some(
            headers
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// A PEM file of certificates to trust for an https endpoint (a private
    /// CA or a self-signed backend), besides the public roots; replaces
    /// `OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE`.
    pub fn with_certificate(mut self, pem_file: impl Into<std::path::PathBuf>) -> Self {
        self.raw.certificate = Some(pem_file.into());
        self
    }

    /// Keeps requests the endpoint cannot take in `dir` (at most `max_bytes`
    /// of spans, plus a small room for counter reports) and sends them when
    /// it is back, also after the app restarts with the same directory and
    /// at shutdown; replaces `OTELITE_EXPORTER_SPOOL_DIR` / `…_MAX_BYTES`.
    /// `dir` is created 0700; one that another user owns or others may
    /// write is not used (logged; its batches are counted `spool_refused`).
    pub fn with_spool(mut self, dir: impl Into<std::path::PathBuf>, max_bytes: u64) -> Self {
        self.raw.spool = Some(SpoolConfig {
            dir: dir.into(),
            max_bytes,
        });
        self
    }

    /// The deadline for one export, retries included (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.raw.timeout = Some(timeout);
        self
    }

    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.raw.compression = Some(compression);
        self
    }

    /// How often the counters are pushed to `/v1/metrics` (default 10 s; zero: only at shutdown).
    pub fn with_metrics_interval(mut self, interval: Duration) -> Self {
        self.raw.metrics_interval = Some(interval);
        self
    }

    /// The `BatchSpanProcessor` settings `build_provider` uses.
    pub fn with_batch_config(mut self, config: BatchConfig) -> Self {
        self.batch_config = Some(config);
        self
    }

    /// The counters the built exporter will update; take them before `build_provider`.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Resolves the configuration (builder > env) and starts the exporter.
    pub fn build(self) -> Result<OteliteExporter, ConfigError> {
        OteliteExporter::from_config(ExporterConfig::from_env(&self.raw)?, self.counters)
    }

    /// A provider with `resource` and `CountingProcessor<BatchSpanProcessor>`
    /// around this exporter. Its `shutdown` flushes the spans, then sends the
    /// final counters to `/v1/metrics`.
    pub fn build_provider(
        mut self,
        resource: opentelemetry_sdk::Resource,
    ) -> Result<SdkTracerProvider, ConfigError> {
        let batch_config = self.batch_config.take().unwrap_or_default();
        let exporter = self.build()?;
        let reporter = exporter.metrics_reporter();
        let processor =
            CountingProcessor::new(BatchSpanProcessor::new(exporter, batch_config), reporter);
        Ok(SdkTracerProvider::builder()
            .with_resource(resource)
            .with_span_processor(processor)
            .build())
    }
}
