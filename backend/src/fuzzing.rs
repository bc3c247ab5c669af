//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their corpus: the receiver's own code, reachable without a
//! socket. Not a stable API; nothing else should use it.

use crate::receive::{self, Format};
use crate::store::Store;
use opentelemetry_proto::tonic::trace::v1::Span as PbSpan;
use prost::Message;

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
        .spans
        .iter()
        .filter(|row| PbSpan::decode(&row.body[..]).is_err())
        .count();
    Ok(Outcome {
        accepted: batch.spans.len(),
        rejected: rejected.len(),
        unreadable,
    })
}

/// The receiver's bounded inflate.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    receive::body::gunzip(body, limit).map_err(|e| e.to_string())
}

/// The OTLP router as `Server::run` serves it (latency layer included),
/// without a bearer token.
pub fn receive_router(store: &Store, max_body_bytes: usize) -> axum::Router {
    crate::routers(store, max_body_bytes, &crate::Tokens::default()).0
}
