//! The OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/metrics`; the
//! OTLP/gRPC receiver (`grpc`) shares its pipeline functions and admission.
//! A request is read (`body`), decoded into the `opentelemetry-proto` types
//! (protobuf and JSON meet there), then handed to the pipeline: process →
//! analyze → store. The answer waits for the commit, so a 200 means stored.

pub(crate) mod body;
pub mod grpc;
mod response;
mod zipkin;

pub use body::{Encoding, Format};
pub use response::RpcStatus;

use crate::admission::{self, ByteBudget, BytePermit};
use crate::analyze;
use crate::metrics::Metrics;
use crate::process;
use crate::stage::{Stage, now_ns};
use crate::storage::StoreError;
use crate::storage::{Ingest, Lost, Storage};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use body::BodyError;
use http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otelite_model::Span;
use otelite_model::otlp::{InvalidSpan, SpansFromOtlp};
use otelite_model::otlp_wire;
use response::ReceiveError;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds on what the receiver takes at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Requests between their first body byte and their answer; more get
    /// 503 at once, so memory stays bounded by this times a body's size.
    pub max_concurrent_requests: usize,
    /// How long one body may take to arrive (see `ConnectionLimits`).
    pub body_read_timeout: std::time::Duration,
    /// Bytes of bodies and their decoded form held at once (`admission`);
    /// past it requests get 503 at once.
    pub max_inflight_bytes: usize,
}

impl Limits {
    /// The defaults `otelite serve` uses, with another body limit.
    pub fn with_body_limit(max_body_bytes: usize) -> Self {
        Self {
            max_body_bytes,
            max_concurrent_requests: crate::DEFAULT_MAX_CONCURRENT_REQUESTS,
            body_read_timeout: crate::net::ConnectionLimits::default().body_read_timeout,
            max_inflight_bytes: crate::admission::DEFAULT_MAX_INFLIGHT_BYTES,
        }
    }
}

#[derive(Clone)]
pub struct ReceiveState {
    pub store: Storage,
    pub max_body_bytes: usize,
    body_read_timeout: std::time::Duration,
    /// Counted once per request or batch (see `crate::metrics`).
    pub metrics: Arc<Metrics>,
    /// One permit per request being received.
    in_flight: Arc<Semaphore>,
    /// The keep/drop rules analysis applies (none unless configured).
    policy: Arc<analyze::Policy>,
    /// The bytes those requests hold; shared with every receiver through
    /// `Metrics`, which reports it.
    bytes: ByteBudget,
    /// Where the OTLP listeners are bound: the SDKs' exporter counters name
    /// the endpoint they send to, and only those sending here count.
    listeners: Arc<[SocketAddr]>,
}

impl ReceiveState {
    pub fn new(store: impl Into<Storage>, limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            store: store.into(),
            max_body_bytes: limits.max_body_bytes,
            body_read_timeout: limits.body_read_timeout,
            bytes: metrics.byte_budget().clone(),
            metrics,
            in_flight: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            policy: Arc::default(),
            listeners: Arc::new([]),
        }
    }

    /// The same, knowing the addresses its OTLP listeners are bound to.
    pub fn with_listeners(mut self, listeners: &[SocketAddr]) -> Self {
        self.listeners = listeners.into();
        self
    }

    /// The same, applying `policy` at analyze.
    pub fn with_policy(mut self, policy: Arc<analyze::Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// A permit to receive one request; `None` when as many are in flight
    /// as allowed.
    pub(crate) fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    /// Admits a request and reads its body, holding its bytes in the
    /// budget: 503 at once when either limit is reached.
    async fn admit_and_read(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<Admitted, ReceiveError> {
        let Some(request) = self.admit() else {
            return Err(refuse_busy(body).await);
        };
        let announced = body::content_length(headers).unwrap_or(0);
        let mut bytes = match self.bytes.try_take(announced.min(self.max_body_bytes)) {
            Ok(permit) => permit,
            Err(over) => {
                body::drain(body).await;
                return Err(over.into());
            }
        };
        let (encoding, body) = body::read_checked(
            headers,
            body,
            self.max_body_bytes,
            self.body_read_timeout,
            &mut bytes,
        )
        .await?;
        Ok(Admitted {
            encoding,
            body,
            _request: request,
            bytes,
        })
    }
}

/// A request let in, with its body read and its permits held.
struct Admitted {
    encoding: Encoding,
    body: bytes::Bytes,
    _request: OwnedSemaphorePermit,
    bytes: BytePermit,
}

/// What a body takes in memory once decoded: the body itself, its inflated
/// form when gzip'd, and the decoded structs (`DECODED_PER_BYTE`).
fn decoded_bytes(encoding: Encoding, body: &[u8], limit: usize) -> usize {
    let plain = if encoding.gzip {
        body::gzip_size_hint(body, limit)
    } else {
        body.len()
    };
    let inflated = if encoding.gzip { plain } else { 0 };
    body.len() + inflated + plain.saturating_mul(admission::DECODED_PER_BYTE)
}

/// The answer to a request past the concurrency limit: 503 with
/// `Retry-After`, after draining the body (bounded) so the client reads it.
async fn refuse_busy(body: Body) -> ReceiveError {
    body::drain(body).await;
    ReceiveError::Store(StoreError::Overloaded)
}

pub fn router(state: ReceiveState) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .route("/api/v2/spans", post(zipkin::spans))
        .with_state(state)
}

async fn traces(State(state): State<ReceiveState>, headers: HeaderMap, body: Body) -> Response {
    let format = body::format_of(&headers).ok();
    match receive_traces(&state, &headers, body).await {
        Ok((format, answer)) => response::encode(format, &answer, StatusCode::OK),
        Err(error) => {
            state.metrics.request_rejected(error.rejection());
            error.into_response(format)
        }
    }
}

async fn receive_traces(
    state: &ReceiveState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Format, ExportTraceServiceResponse), ReceiveError> {
    let Admitted {
        encoding,
        body: bytes,
        _request,
        bytes: permit,
    } = state.admit_and_read(headers, body).await?;
    let limit = state.max_body_bytes;
    let format = encoding.format;
    let mut permit = permit;
    permit.grow_to(decoded_bytes(encoding, &bytes, limit))?;
    let partial_success = store_traces(state, Some(permit), move || {
        decode_traces(encoding, &bytes, limit)
    })
    .await?;
    Ok((format, ExportTraceServiceResponse { partial_success }))
}

/// The part of receiving traces the OTLP transports share: `commit`, then
/// the refused spans as OTLP's partial success.
pub(crate) async fn store_traces(
    state: &ReceiveState,
    held: Option<BytePermit>,
    decode: impl FnOnce() -> Result<SpansFromOtlp, ReceiveError> + Send + 'static,
) -> Result<Option<ExportTracePartialSuccess>, ReceiveError> {
    let (rejected, conflicts) = commit(state, held, decode).await?;
    let refused = rejected.len() as u64 + conflicts;
    Ok((refused > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: refused as i64,
        error_message: rejection_message(&rejected, conflicts),
    }))
}

/// Decodes (with `decode`, off the connection threads; a no-op when the
/// transport decoded already), processes, analyzes and stores one request's
/// spans, counting them in the funnel; returns once the store has committed
/// them, with the spans that were not valid and how many conflicted with
/// stored ones. Every trace intake (OTLP/HTTP, OTLP/gRPC, Zipkin) ends here.
/// `held`, the request's bytes in the budget, is let go only once the spans
/// are committed: queued batches count too.
pub(crate) async fn commit<D>(
    state: &ReceiveState,
    held: Option<BytePermit>,
    decode: D,
) -> Result<(Vec<InvalidSpan>, u64), ReceiveError>
where
    D: FnOnce() -> Result<SpansFromOtlp, ReceiveError> + Send + 'static,
{
    // Once the request is in, the rest runs on a task of its own: a client
    // that hangs up before its answer does not stop a commit already on its
    // way, so it must not stop the counting of it either.
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    let policy = state.policy.clone();
    tokio::spawn(async move {
        // Decoding, conversion, analysis and the store's encoding are CPU
        // work: keep them off the threads that serve connections.
        let (written, accepted, rejected) = tokio::task::spawn_blocking(move || {
            let (ingest, rejected) = analyzed_request(decode()?, &policy);
            let accepted = ingest.spans.len();
            // Only invalid spans: still written, for their count at process.
            let written =
                (accepted > 0 || !ingest.lost.is_empty()).then(|| store.try_write_spans(ingest));
            Ok::<_, ReceiveError>((written, accepted, rejected))
        })
        .await
        .map_err(|e| BodyError::Read(format!("decoding task failed: {e}")))??;
        metrics.spans_decoded(accepted + rejected.len(), rejected.len());
        let mut conflicts = 0;
        if let Some(written) = written {
            // A 2xx only once the store has committed the spans.
            match async { written?.await }.await {
                Ok(stored) => {
                    metrics.spans_stored(&stored);
                    conflicts = stored.conflicts;
                }
                Err(error) => {
                    let error = ReceiveError::from(error);
                    metrics.spans_not_stored(error.rejection(), accepted);
                    return Err(error);
                }
            }
        }
        drop(held);
        Ok((rejected, conflicts))
    })
    .await
    .map_err(|e| ReceiveError::Store(StoreError::WriteFailed(e.to_string())))?
}

/// A body (as read off the wire) → the batch the SQLite writer inserts, and
/// the spans that were not valid: decode, process, analyze and encode, the
/// CPU part of receiving, as the SQLite store encodes it: the fuzz targets'
/// way in.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn prepare(
    encoding: Encoding,
    bytes: &[u8],
    limit: usize,
) -> Result<(crate::storage::sqlite::SpanBatch, Vec<InvalidSpan>), ReceiveError> {
    let (ingest, rejected) = analyzed_request(
        decode_traces(encoding, bytes, limit)?,
        &analyze::Policy::default(),
    );
    Ok((crate::storage::sqlite::span_batch(ingest), rejected))
}

/// Analyze a processed request (keeping what `policy` keeps): what every
/// store is handed.
fn analyzed_request(
    processed: SpansFromOtlp,
    policy: &analyze::Policy,
) -> (Ingest, Vec<InvalidSpan>) {
    let mut ingest = ingest_kept(policy, processed.spans, now_ns());
    ingest.lost.extend(lost_at_process(
        &processed.rejected,
        processed.rejected_services,
    ));
    (ingest, processed.rejected)
}

/// The invalid spans, counted per service and reason as lost at process.
fn lost_at_process(rejected: &[InvalidSpan], services: Vec<String>) -> Vec<Lost> {
    let mut lost: Vec<Lost> = Vec::new();
    for (invalid, service) in rejected.iter().zip(services) {
        let reason = invalid.reason();
        match lost
            .iter_mut()
            .find(|l| l.service == service && l.reason == reason)
        {
            Some(known) => known.n += 1,
            None => lost.push(Lost {
                service,
                stage: Stage::Process,
                reason: reason.to_owned(),
                n: 1,
            }),
        }
    }
    lost
}

/// Valid spans, received at `received_ns`, analyzed and counted per service
/// at process and analyze, with no rules to drop any.
#[cfg(test)]
pub(crate) fn ingest(spans: Vec<Span>, received_ns: u64) -> Ingest {
    ingest_kept(&analyze::Policy::default(), spans, received_ns)
}

/// Valid spans, received at `received_ns`: counted at process, split by
/// `policy` (the kept ones counted at analyze, the others as dropped there
/// by their rule), the kept ones analyzed.
pub(crate) fn ingest_kept(policy: &analyze::Policy, spans: Vec<Span>, received_ns: u64) -> Ingest {
    let processed = process::count_by_service(&spans);
    let kept = analyze::keep(policy, spans);
    // What passed analyze is what was processed less the rules' drops: no
    // second pass over the spans.
    let passed: Vec<(String, Stage, u64)> = processed
        .iter()
        .map(|(service, n)| {
            let dropped: u64 = kept
                .dropped
                .iter()
                .filter(|(s, _, _)| s == service)
                .map(|(_, _, n)| n)
                .sum();
            (service.clone(), Stage::Analyze, n.saturating_sub(dropped))
        })
        .filter(|(_, _, n)| *n > 0)
        .collect();
    let mut counted: Vec<(String, Stage, u64)> = processed
        .into_iter()
        .map(|(service, n)| (service, Stage::Process, n))
        .collect();
    counted.extend(passed);
    let lost = kept
        .dropped
        .into_iter()
        .map(|(service, rule, n)| Lost {
            service,
            stage: Stage::Analyze,
            reason: analyze::policy::reason(&rule),
            n,
        })
        .collect();
    Ingest {
        spans: analyze::analyze(kept.spans),
        counted,
        lost,
        received_ns,
    }
}

/// Why spans were refused: the first few invalid ones, then the conflicts.
fn rejection_message(rejected: &[InvalidSpan], conflicts: u64) -> String {
    const SHOWN: usize = 5;
    let mut message: Vec<String> = rejected
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect();
    if rejected.len() > SHOWN {
        message.push(format!("and {} more", rejected.len() - SHOWN));
    }
    if conflicts > 0 {
        message.push(format!(
            "{conflicts} span(s) reuse the trace and span ids of a different span already \
             stored; the stored span is kept"
        ));
    }
    message.join("; ")
}

async fn metrics(State(state): State<ReceiveState>, headers: HeaderMap, body: Body) -> Response {
    let format = body::format_of(&headers).ok();
    match receive_metrics(&state, &headers, body).await {
        Ok(format) => response::encode(
            format,
            &ExportMetricsServiceResponse {
                partial_success: None,
            },
            StatusCode::OK,
        ),
        Err(error) => {
            state.metrics.request_rejected(error.rejection());
            error.into_response(format)
        }
    }
}

async fn receive_metrics(
    state: &ReceiveState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Format, ReceiveError> {
    let Admitted {
        encoding,
        body: bytes,
        _request,
        bytes: mut permit,
    } = state.admit_and_read(headers, body).await?;
    let limit = state.max_body_bytes;
    permit.grow_to(decoded_bytes(encoding, &bytes, limit))?;
    let request: ExportMetricsServiceRequest = decode(encoding, &bytes, limit)?;
    let (host, port) = host_and_port(headers);
    store_metrics(state, request, host, port).await?;
    Ok(encoding.format)
}

/// The part of receiving metrics both transports share: the exporters'
/// counters out of the request, stored before the answer. `host` and
/// `port` are what the client sent to, which its span exporter's counters
/// name as `server.address` and `server.port` when it sends spans there too.
pub(crate) async fn store_metrics(
    state: &ReceiveState,
    request: ExportMetricsServiceRequest,
    host: Option<String>,
    port: Option<u16>,
) -> Result<(), ReceiveError> {
    let destination = process::Destination {
        host,
        port,
        listeners: state.listeners.to_vec(),
    };
    let points = process::counter_points(request, &destination);
    if !points.is_empty() {
        state.store.try_write_counters(points)?.await?;
    }
    Ok(())
}

/// The host and port the request was sent to, from its `Host` header.
fn host_and_port(headers: &HeaderMap) -> (Option<String>, Option<u16>) {
    let authority = headers
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<http::uri::Authority>().ok());
    match authority {
        Some(authority) => (Some(authority.host().to_owned()), authority.port_u16()),
        None => (None, None),
    }
}

/// Inflates (when gzip) and decodes a traces body into model spans:
/// protobuf in one pass (`otlp_wire`), JSON through the OTLP types.
fn decode_traces(
    encoding: Encoding,
    bytes: &[u8],
    limit: usize,
) -> Result<SpansFromOtlp, ReceiveError> {
    if encoding.format == Format::Json {
        let request: ExportTraceServiceRequest = decode(encoding, bytes, limit)?;
        return Ok(process::process(request));
    }
    let inflated;
    let bytes = if encoding.gzip {
        inflated = body::gunzip(bytes, limit)?;
        &inflated[..]
    } else {
        bytes
    };
    otlp_wire::from_protobuf(bytes).map_err(|e| ReceiveError::Decode {
        what: "OTLP protobuf message",
        reason: e.to_string(),
    })
}

/// Inflates (when gzip) and decodes a body into an OTLP request type.
fn decode<T>(encoding: Encoding, bytes: &[u8], limit: usize) -> Result<T, ReceiveError>
where
    T: prost::Message + Default + DeserializeOwned,
{
    let inflated;
    let bytes = if encoding.gzip {
        inflated = body::gunzip(bytes, limit)?;
        &inflated[..]
    } else {
        bytes
    };
    match encoding.format {
        Format::Protobuf => T::decode(bytes).map_err(|e| ReceiveError::Decode {
            what: "OTLP protobuf message",
            reason: e.to_string(),
        }),
        Format::Json => serde_json::from_slice(bytes).map_err(|e| ReceiveError::Decode {
            what: "OTLP JSON message",
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
