//! OTLP/HTTP responses: the success message in the request's encoding, and
//! failures as a `google.rpc.Status` body with the status code the OTLP/HTTP
//! specification gives each cause.

use super::body::{BodyError, Format};
use crate::metrics::Rejection;
use crate::storage::StoreError;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use prost::Message;
use serde::Serialize;

/// Seconds a client is asked to wait when the store is behind.
const RETRY_AFTER_SECONDS: &str = "1";

/// `google.rpc.Status`, which OTLP/HTTP uses for error bodies. It is not an
/// OTLP message, so `opentelemetry-proto` does not ship it; `details` is
/// never filled here and so is left out.
#[derive(Clone, PartialEq, prost::Message, Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC codes used in `RpcStatus.code`.
const INVALID_ARGUMENT: i32 = 3;
const DEADLINE_EXCEEDED: i32 = 4;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;

/// Everything that can fail while receiving, each mapped to one status.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("request body is not a valid {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The decoded body would pass the bytes in flight (`admission`).
    #[error(transparent)]
    OverBudget(#[from] crate::admission::OverBudget),
}

impl ReceiveError {
    fn status(&self) -> StatusCode {
        match self {
            ReceiveError::Body(
                BodyError::UnsupportedContentType(_) | BodyError::UnsupportedEncoding(_),
            ) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ReceiveError::Body(BodyError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::Body(BodyError::OverBudget(_)) | ReceiveError::OverBudget(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ReceiveError::Body(BodyError::Timeout(_)) => StatusCode::REQUEST_TIMEOUT,
            ReceiveError::Body(BodyError::Read(_) | BodyError::BadGzip(_))
            | ReceiveError::Decode { .. } => StatusCode::BAD_REQUEST,
            ReceiveError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `reason` label this failure is counted under.
    pub fn rejection(&self) -> Rejection {
        match self {
            ReceiveError::Body(
                BodyError::UnsupportedContentType(_) | BodyError::UnsupportedEncoding(_),
            ) => Rejection::UnsupportedMediaType,
            ReceiveError::Body(BodyError::TooLarge { .. }) => Rejection::TooLarge,
            ReceiveError::Body(BodyError::OverBudget(_)) | ReceiveError::OverBudget(_) => {
                Rejection::Overloaded
            }
            // A body that never arrives is as unreadable as a broken one.
            ReceiveError::Body(
                BodyError::Read(_) | BodyError::BadGzip(_) | BodyError::Timeout(_),
            )
            | ReceiveError::Decode { .. } => Rejection::Decode,
            ReceiveError::Store(StoreError::Overloaded) => Rejection::Overloaded,
            ReceiveError::Store(_) => Rejection::Unavailable,
        }
    }

    fn rpc_code(&self) -> i32 {
        match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
            StatusCode::PAYLOAD_TOO_LARGE => RESOURCE_EXHAUSTED,
            StatusCode::REQUEST_TIMEOUT => DEADLINE_EXCEEDED,
            _ => INVALID_ARGUMENT,
        }
    }

    /// What the client is told: internals of a store failure are for the
    /// log, not the client.
    pub fn client_message(&self) -> String {
        match self {
            ReceiveError::Store(StoreError::Overloaded) => {
                "the store is busy; retry later".to_owned()
            }
            ReceiveError::Store(_) => "the spans could not be stored; retry later".to_owned(),
            other => other.to_string(),
        }
    }

    /// The response, in the request's encoding when it is known.
    pub fn into_response(self, format: Option<Format>) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "refusing an OTLP request");
        } else {
            tracing::debug!(error = %self, "rejecting an OTLP request");
        }
        let message = self.client_message();
        let body = RpcStatus {
            code: self.rpc_code(),
            message,
        };
        let mut response = encode(format.unwrap_or(Format::Json), &body, status);
        if matches!(self, ReceiveError::Body(_)) {
            // Part of the body may still be unread: this connection must not
            // carry another request.
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                RETRY_AFTER,
                http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// A message in the given encoding, with that content type.
pub fn encode<M: Message + Serialize>(format: Format, message: &M, status: StatusCode) -> Response {
    let body = match format {
        Format::Protobuf => message.encode_to_vec(),
        // Serialising plain prost structs cannot fail.
        Format::Json => serde_json::to_vec(message).unwrap_or_default(),
    };
    (status, [(CONTENT_TYPE, format.content_type())], body).into_response()
}
