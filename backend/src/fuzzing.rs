//! The fuzz targets' bodies (`fuzz/`), here so that a normal test replays
//! the committed corpus through exactly the same code: each `check_*`
//! feeds one input to the receiver's own code, without a socket, and
//! panics only when an invariant breaks. Not a stable API.

use crate::receive::{self, Format};
use crate::storage::QueueLimits;
use crate::storage::sqlite::{Store, WriterThread};
use axum::body::{Body, Bytes, HttpBody};
use http::{Method, Request, StatusCode};
use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use prost::Message;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::ServiceExt;

/// The body limit of the OTLP decode targets: the production default.
const DECODE_LIMIT: usize = crate::DEFAULT_MAX_BODY_BYTES;
/// The limit of the gzip and HTTP targets: small, so that bombs and 413
/// are cheap to reach.
const SMALL_LIMIT: usize = 256 << 10;

/// What one body came to, when it decoded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Spans that would be written.
    pub accepted: usize,
    /// Spans answered in `partial_success`.
    pub rejected: usize,
    /// Accepted spans whose stored encoding does not decode back: always 0
    /// unless the store would write something it cannot read.
    pub unreadable: usize,
}

/// Decode → process → analyze → encode, exactly as `POST /v1/traces` does
/// before the write, then reads each span's stored bytes back. `Err` is the
/// message a client would get with its 4xx.
pub fn traces(format: Format, gzip: bool, body: &[u8], limit: usize) -> Result<Outcome, String> {
    let (batch, rejected) =
        receive::prepare((format, gzip), body, limit).map_err(|e| e.to_string())?;
    let unreadable = batch
        .spans()
        .iter()
        .filter(|row| PbSpan::decode(&row.body[..]).is_err())
        .count();
    Ok(Outcome {
        accepted: batch.spans().len(),
        rejected: rejected.len(),
        unreadable,
    })
}

/// Target `otlp_protobuf` / `otlp_json`: any body decodes or is a 400
/// message, and what would be stored reads back.
pub fn check_decode(format: Format, body: &[u8]) {
    if let Ok(outcome) = traces(format, false, body, DECODE_LIMIT) {
        assert_eq!(outcome.unreadable, 0, "stored a span it cannot read back");
    }
}

/// Target `gzip`: the bounded inflate never goes past its limit, and what
/// inflates goes on through the protobuf or JSON path.
pub fn check_gzip(body: &[u8]) {
    let Ok(inflated) = receive::body::gunzip(body, SMALL_LIMIT) else {
        return;
    };
    assert!(inflated.len() <= SMALL_LIMIT, "inflated past the limit");
    // The first inflated byte picks the decoder, so both get gzip'd input.
    let format = match inflated.first() {
        Some(b'{' | b' ' | b'\n') => Format::Json,
        _ => Format::Protobuf,
    };
    if let Ok(outcome) = traces(format, true, body, SMALL_LIMIT) {
        assert_eq!(outcome.unreadable, 0, "stored a span it cannot read back");
    }
}

/// The request's head is chosen by the input's first bytes (one byte per
/// choice, taken modulo the list), so that seeds are a few bytes in front
/// of a real OTLP body and the fuzzer mutates head and body alike.
const METHODS: &[&str] = &["POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD"];
const PATHS: &[&str] = &[
    "/v1/traces",
    "/v1/metrics",
    "/v1/logs",
    "/v1/traces/",
    "/",
    "/v1/traces?x=1",
];
/// `None` sends no header at all.
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/x-protobuf"),
    Some("application/json"),
    Some("application/protobuf"),
    Some("application/json; charset=utf-8"),
    Some("APPLICATION/JSON"),
    Some("text/plain"),
    Some(""),
    Some("application/x-protobuf;;;"),
    None,
];
const ENCODINGS: &[Option<&str>] = &[
    None,
    Some("gzip"),
    Some("identity"),
    Some("x-gzip"),
    Some("GZIP"),
    Some("br"),
    Some("gzip, gzip"),
    Some(""),
];
/// Method, path, content type, encoding, number of body frames.
const HEAD: usize = 5;

fn pick<T: Copy>(list: &[T], byte: u8) -> T {
    list[usize::from(byte) % list.len()]
}

/// A body that arrives in the given frames, as a chunked upload would.
struct Frames(VecDeque<Bytes>);

impl HttpBody for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn request(data: &[u8]) -> Option<Request<Body>> {
    let (head, body) = data.split_at_checked(HEAD)?;
    let method = Method::from_bytes(pick(METHODS, head[0]).as_bytes()).ok()?;
    let mut builder = Request::builder().method(method).uri(pick(PATHS, head[1]));
    if let Some(content_type) = pick(CONTENT_TYPES, head[2]) {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    if let Some(encoding) = pick(ENCODINGS, head[3]) {
        builder = builder.header(http::header::CONTENT_ENCODING, encoding);
    }
    let size = body.len().div_ceil(usize::from(head[4].max(1))).max(1);
    let frames = body.chunks(size).map(Bytes::copy_from_slice).collect();
    builder.body(Body::new(Frames(frames))).ok()
}

/// The OTLP router as `Server::run` serves it (latency layer included), a
/// store on a temporary SQLite file, and a runtime to drive them.
pub struct HttpFixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _store: Store,
    _writer: WriterThread,
    _dir: std::path::PathBuf,
}

impl HttpFixture {
    /// The database goes in `dir`, which the caller owns and removes.
    pub fn new(dir: &std::path::Path) -> Self {
        let limits = QueueLimits {
            requests: 64,
            spans: 1 << 20,
        };
        let (store, writer) =
            Store::open(&dir.join("fuzz.db"), limits).expect("a store in the temp dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        // Without bearer tokens: what is fuzzed is what comes after the check.
        let router = crate::routers(
            &store,
            crate::receive::Limits::with_body_limit(SMALL_LIMIT),
            &crate::Tokens::default(),
        )
        .0;
        Self {
            runtime,
            router,
            _store: store,
            _writer: writer,
            _dir: dir.to_owned(),
        }
    }

    /// Target `http_receive`: any method, path, content type, content
    /// encoding and body gets one of the statuses the README documents,
    /// never another 5xx and never a panic. Returns that status (`None`
    /// when `http` itself refuses the head, before any server code runs).
    pub fn check(&self, data: &[u8]) -> Option<StatusCode> {
        let request = request(data)?;
        let status = self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await;
            let response = response.unwrap_or_else(|never| match never {});
            let status = response.status();
            let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            status
        });
        let documented = [
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::SERVICE_UNAVAILABLE,
        ];
        assert!(documented.contains(&status), "undocumented status {status}");
        Some(status)
    }
}

#[cfg(test)]
mod tests;
