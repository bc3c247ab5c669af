//! Zipkin's v2 intake, `POST /api/v2/spans` on the OTLP listener: a JSON
//! list of spans (`wire`) is read like an OTLP body (same token, body limit,
//! gzip and concurrency bound), turned into an OTLP request (`translate`)
//! and committed through the same pipeline, so it is counted in the same
//! funnel. Answers as Zipkin does: 202 with no body once stored; errors as
//! plain text (400 for a body that is not a Zipkin span list).

mod translate;
mod wire;

use super::body::{self, Format};
use super::response::ReceiveError;
use super::{Admitted, ReceiveState, commit, decoded_bytes};
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

pub async fn spans(State(state): State<ReceiveState>, headers: HeaderMap, body: Body) -> Response {
    match receive(&state, &headers, body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(error) => {
            state.metrics.request_rejected(error.rejection());
            plain(error)
        }
    }
}

async fn receive(
    state: &ReceiveState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), ReceiveError> {
    let Admitted {
        encoding,
        body: bytes,
        _request,
        bytes: mut permit,
    } = state.admit_and_read(headers, body).await?;
    let limit = state.max_body_bytes;
    if encoding.format == Format::Protobuf {
        return Err(ReceiveError::Decode {
            what: "Zipkin span list",
            reason: "otelite takes Zipkin's JSON encoding only (application/json)".to_owned(),
        });
    }
    // Invalid spans (a zero id) are counted as lost at process; Zipkin has
    // no partial success to report them in.
    permit.grow_to(decoded_bytes(encoding, &bytes, limit))?;
    commit(state, Some(permit), move || {
        decode(encoding.gzip, &bytes, limit).map(crate::process::process)
    })
    .await?;
    Ok(())
}

/// Inflates (when gzip) and reads a `ListOfSpans`.
fn decode(
    gzip: bool,
    bytes: &[u8],
    limit: usize,
) -> Result<ExportTraceServiceRequest, ReceiveError> {
    let inflated;
    let bytes = if gzip {
        inflated = body::gunzip(bytes, limit)?;
        &inflated[..]
    } else {
        bytes
    };
    let spans: Vec<wire::Span> =
        serde_json::from_slice(bytes).map_err(|e| ReceiveError::Decode {
            what: "Zipkin v2 JSON span list",
            reason: e.to_string(),
        })?;
    translate::to_otlp(spans).map_err(|e| ReceiveError::Decode {
        what: "Zipkin v2 JSON span list",
        reason: e.to_string(),
    })
}

/// The OTLP answer's status and headers, with the message as plain text,
/// which is how Zipkin's own server words its errors.
fn plain(error: ReceiveError) -> Response {
    let message = error.client_message();
    let (mut parts, _) = error.into_response(Some(Format::Json)).into_parts();
    parts.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(format!("{message}\n")))
}

#[cfg(test)]
mod tests;
