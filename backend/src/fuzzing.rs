//! The fuzz targets' bodies (`fuzz/`, through the `fuzzing` feature),
//! here so that a normal test replays the committed corpus through exactly
//! the same code: each `check_*` feeds one input to the receiver's own code,
//! without a socket, and panics only when an invariant breaks: what was
//! accepted is stored as it was sent (read independently, see `oracle`),
//! what was refused got a documented status and stored nothing. Not a
//! stable API.

mod answers;
mod oracle;
mod query;

pub use answers::check_answer;
pub use oracle::{Attributes, SpanView, Value};
pub use query::QueryFixture;

use crate::receive::{self, Encoding, Format};
use crate::storage::sqlite::{SqliteStore, WriterThread};
use crate::storage::{QueueLimits, StoreError};
use axum::body::{Body, Bytes, HttpBody};
use http::{Method, Request, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use otelite_model::TraceId;
use prost::Message;
use std::collections::{BTreeSet, VecDeque};
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
    /// The spans that would be written, read back from their stored
    /// encoding with prost.
    pub stored: Vec<SpanView>,
    /// Spans answered in `partial_success`.
    pub rejected: usize,
}

/// Decode → process → analyze → encode, exactly as `POST /v1/traces` does
/// before the write, then reads each span's stored bytes back (a panic if
/// one does not decode). `Err` is the message a client would get with its
/// 4xx.
pub fn traces(format: Format, gzip: bool, body: &[u8], limit: usize) -> Result<Outcome, String> {
    let (batch, rejected) =
        receive::prepare(Encoding { format, gzip }, body, limit).map_err(|e| e.to_string())?;
    let stored = (batch.spans().iter())
        .map(|row| row.read_back().expect("a stored span reads back"))
        .map(SpanView::of_otlp)
        .collect();
    Ok(Outcome {
        stored,
        rejected: rejected.len(),
    })
}

/// Panics unless `outcome` is what the OTLP request in `sent` (`None`: the
/// body is not one) must come to: accepted as sent, or refused.
fn check_outcome(outcome: &Result<Outcome, String>, sent: Option<Vec<SpanView>>) {
    match (outcome, sent) {
        (Ok(outcome), Some(sent)) => {
            oracle::assert_stored_as_sent(&outcome.stored, outcome.rejected, &sent);
        }
        (Ok(_), None) => panic!("accepted a body that is not an OTLP trace export"),
        (Err(error), Some(_)) => panic!("refused an OTLP trace export: {error}"),
        (Err(_), None) => {}
    }
}

/// Target `otlp_protobuf` / `otlp_json`: a body is refused exactly when it
/// is not an OTLP request, and an accepted one would be stored as sent.
pub fn check_decode(format: Format, body: &[u8]) -> Result<Outcome, String> {
    let outcome = traces(format, false, body, DECODE_LIMIT);
    check_outcome(&outcome, oracle::sent_spans(format, body));
    outcome
}

/// Target `gzip`: the bounded inflate never goes past its limit, and what
/// inflates is taken or refused as the same body sent plain would be.
/// Returns the inflated body and what it came to (`None`: not gzip, or
/// past the limit).
pub fn check_gzip(body: &[u8]) -> Option<(Vec<u8>, Result<Outcome, String>)> {
    let inflated = receive::body::gunzip(body, SMALL_LIMIT).ok()?;
    assert!(inflated.len() <= SMALL_LIMIT, "inflated past the limit");
    // The body picks the decoder, so both get gzip'd input: JSON when it
    // opens with `{` (a protobuf request opens with 0x0a, field 1).
    let format = match inflated.trim_ascii_start().first() {
        Some(b'{') => Format::Json,
        _ => Format::Protobuf,
    };
    let outcome = traces(format, true, body, SMALL_LIMIT);
    check_outcome(&outcome, oracle::sent_spans(format, &inflated));
    Some((inflated, outcome))
}

/// The request's head is chosen by the input's first bytes (one byte per
/// choice, taken modulo the list), so that seeds are a few bytes in front
/// of a real OTLP body and the fuzzer mutates head and body alike. Each
/// choice carries what the OTLP/HTTP spec makes of it, the checks' oracle.
const METHODS: &[(&str, bool)] = &[
    ("POST", true),
    ("GET", false),
    ("PUT", false),
    ("DELETE", false),
    ("OPTIONS", false),
    ("HEAD", false),
];
/// `true`: the trace export path.
const PATHS: &[(&str, bool)] = &[
    ("/v1/traces", true),
    ("/v1/metrics", false),
    ("/v1/logs", false),
    ("/v1/traces/", false),
    ("/", false),
    ("/v1/traces?x=1", true),
];
/// `None` sends no header at all; the format is `None` when the spec
/// supports none.
const CONTENT_TYPES: &[(Option<&str>, Option<Format>)] = &[
    (Some("application/x-protobuf"), Some(Format::Protobuf)),
    (Some("application/json"), Some(Format::Json)),
    (Some("application/protobuf"), Some(Format::Protobuf)),
    (Some("application/json; charset=utf-8"), Some(Format::Json)),
    (Some("APPLICATION/JSON"), Some(Format::Json)),
    (Some("text/plain"), None),
    (Some(""), None),
    (Some("application/x-protobuf;;;"), Some(Format::Protobuf)),
    (None, None),
];
/// Whether the body is gzip; `None`: an encoding OTLP does not support
/// (`gzip, gzip` would be two layers).
const ENCODINGS: &[(Option<&str>, Option<bool>)] = &[
    (None, Some(false)),
    (Some("gzip"), Some(true)),
    (Some("identity"), Some(false)),
    (Some("x-gzip"), Some(true)),
    (Some("GZIP"), Some(true)),
    (Some("br"), None),
    (Some("gzip, gzip"), None),
    (Some(""), Some(false)),
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

fn request(head: &[u8], body: &[u8]) -> Option<Request<Body>> {
    let method = Method::from_bytes(pick(METHODS, head[0]).0.as_bytes()).ok()?;
    let mut builder = Request::builder()
        .method(method)
        .uri(pick(PATHS, head[1]).0);
    if let (Some(content_type), _) = pick(CONTENT_TYPES, head[2]) {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    if let (Some(encoding), _) = pick(ENCODINGS, head[3]) {
        builder = builder.header(http::header::CONTENT_ENCODING, encoding);
    }
    let size = body.len().div_ceil(usize::from(head[4].max(1))).max(1);
    let frames = body.chunks(size).map(Bytes::copy_from_slice).collect();
    builder.body(Body::new(Frames(frames))).ok()
}

/// What the spec makes of a request: `Some` for a trace export, with its
/// format and the spans its body holds (`None` when it holds no OTLP
/// request, inflated within `limit` when gzip).
type Export = Option<(Format, Option<Vec<SpanView>>)>;

fn export(head: &[u8], body: &[u8], limit: usize) -> Export {
    let (_, post) = pick(METHODS, head[0]);
    let (_, traces) = pick(PATHS, head[1]);
    let (_, format) = pick(CONTENT_TYPES, head[2]);
    let (_, gzip) = pick(ENCODINGS, head[3]);
    let (format, gzip) = (format?, gzip?);
    if !(post && traces) {
        return None;
    }
    let spans = if gzip {
        receive::body::gunzip(body, limit)
            .ok()
            .and_then(|plain| oracle::sent_spans(format, &plain))
    } else {
        oracle::sent_spans(format, body)
    };
    Some((format, spans))
}

/// The statuses the README documents for the OTLP listener.
const DOCUMENTED: [StatusCode; 7] = [
    StatusCode::OK,
    StatusCode::BAD_REQUEST,
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::SERVICE_UNAVAILABLE,
];

/// `partial_success.rejected_spans` of a trace export's answer.
fn rejected_in(format: Format, answer: &[u8]) -> usize {
    let answer: ExportTraceServiceResponse = match format {
        Format::Protobuf => Message::decode(answer).expect("a protobuf answer"),
        Format::Json => serde_json::from_slice(answer).expect("a JSON answer"),
    };
    let rejected = answer.partial_success.map_or(0, |p| p.rejected_spans);
    usize::try_from(rejected).expect("a count")
}

/// The OTLP router as `Server::run` serves it (latency layer included), a
/// store on a temporary SQLite file, and a runtime to drive them.
pub struct HttpFixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    store: SqliteStore,
    _writer: WriterThread,
    _dir: std::path::PathBuf,
}

/// What a store holds that a request may change: all its spans, and
/// those of the traces the request sent.
struct Snapshot {
    spans: i64,
    traces: Vec<SpanView>,
}

impl HttpFixture {
    /// The database goes in `dir`, which the caller owns and removes.
    pub fn new(dir: &std::path::Path) -> Self {
        let limits = QueueLimits {
            requests: 64,
            spans: 1 << 20,
        };
        let (store, writer) =
            SqliteStore::open(&dir.join("fuzz.db"), limits).expect("a store in the temp dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        // Without bearer tokens: what is fuzzed is what comes after the check.
        let router = crate::routers(
            &store,
            crate::receive::Limits::with_body_limit(SMALL_LIMIT),
            crate::query::QueryLimits::default(),
            &crate::BearerTokens::default(),
        )
        .0;
        Self {
            runtime,
            router,
            store,
            _writer: writer,
            _dir: dir.to_owned(),
        }
    }

    /// Target `http_receive`: any method, path, content type, content
    /// encoding and body gets one of the statuses the README documents,
    /// never another 5xx and never a panic; a trace export answered 200 is
    /// stored as it was sent, and a refused request stores nothing.
    /// Returns that status (`None` when `http` itself refuses the head,
    /// before any server code runs).
    pub fn check(&self, data: &[u8]) -> Option<StatusCode> {
        let (head, body) = data.split_at_checked(HEAD)?;
        let request = request(head, body)?;
        let export = export(head, body, SMALL_LIMIT);
        let sent = export.as_ref().and_then(|(_, spans)| spans.as_deref());
        let before = self.snapshot(sent.unwrap_or_default());
        let (status, answer) = self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await;
            let response = response.unwrap_or_else(|never| match never {});
            let status = response.status();
            let answer = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            (status, answer.unwrap_or_default())
        });
        assert!(DOCUMENTED.contains(&status), "undocumented status {status}");
        let after = self.snapshot(sent.unwrap_or_default());
        let stored = usize::try_from(after.spans - before.spans).expect("no span removed");
        match (&export, status) {
            (Some((format, Some(sent))), StatusCode::OK) => {
                let rejected = rejected_in(*format, &answer);
                oracle::assert_store_took(&before.traces, &after.traces, rejected, sent);
                let added = after.traces.len() - before.traces.len();
                assert_eq!(stored, added, "stored spans under other traces");
            }
            (Some((_, None)), StatusCode::OK) => panic!("stored a body that holds no request"),
            _ => assert_eq!(stored, 0, "stored spans of a request answered {status}"),
        }
        Some(status)
    }

    fn snapshot(&self, sent: &[SpanView]) -> Snapshot {
        let ids: BTreeSet<[u8; 16]> = (sent.iter())
            .filter_map(|span| span.trace_id.as_slice().try_into().ok())
            .collect();
        self.runtime.block_on(async {
            let spans = self.store.read(|conn| {
                let sql = "SELECT coalesce(sum(span_count), 0) FROM span_groups";
                Ok::<i64, StoreError>(conn.query_row(sql, [], |row| row.get(0))?)
            });
            let traces = self.store.read(move |conn| {
                let mut spans = Vec::new();
                for id in ids {
                    let trace = crate::storage::sqlite::trace(conn, &TraceId(id))?;
                    spans.extend(trace.iter().flatten().map(SpanView::of_model));
                }
                Ok(spans)
            });
            Snapshot {
                spans: spans.await.expect("a span count"),
                traces: traces.await.expect("the sent traces"),
            }
        })
    }
}

#[cfg(test)]
mod tests;
