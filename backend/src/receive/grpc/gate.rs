//! What every gRPC call passes before tonic reads its message: the ingest
//! token (`authorization` metadata, as OTLP/HTTP's header), the
//! receiver's admission and its byte budget (the message is read here,
//! under it), shared with OTLP/HTTP, so memory stays bounded by one limit
//! whichever transport the load comes on. On the way out it maps
//! the statuses tonic itself gives a message it cannot read to the ones
//! OTLP clients expect.

use super::message::{self, MessageError};
use super::status;
use crate::metrics::Rejection;
use crate::net::BearerToken;
use crate::receive::ReceiveState;
use http::header::AUTHORIZATION;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::{Code, Status};

type Request = http::Request<Body>;
type Response = http::Response<Body>;

/// The host and port a call was sent to (its `:authority`), for the metrics
/// service: the SDKs' exporter counters name them as `server.address` and
/// `server.port`.
#[derive(Debug, Clone)]
pub(super) struct Destination {
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// A generated service behind the token check and the admission.
#[derive(Clone)]
pub(super) struct Gate<S> {
    inner: S,
    state: ReceiveState,
    token: Option<BearerToken>,
}

impl<S> Gate<S> {
    pub(super) fn new(inner: S, state: ReceiveState, token: Option<BearerToken>) -> Self {
        Self {
            inner,
            state,
            token,
        }
    }
}

impl<S: NamedService> NamedService for Gate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request> for Gate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Some(token) = &self.token {
            let presented = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
            if !token.admits(presented) {
                let refused = Status::unauthenticated("missing or wrong bearer token");
                return Box::pin(std::future::ready(Ok(refused.into_http())));
            }
        }
        // Before tonic reads the message, so a refused one costs no memory.
        let Some(permit) = self.state.admit() else {
            self.state.metrics.request_rejected(Rejection::Overloaded);
            return Box::pin(std::future::ready(Ok(status::overloaded().into_http())));
        };
        let destination = Destination {
            host: request.uri().host().map(str::to_owned),
            port: request.uri().port_u16(),
        };
        request.extensions_mut().insert(destination);
        // The clone that was made ready serves this call (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            let metrics = state.metrics.clone();
            let gzip = request
                .headers()
                .get("grpc-encoding")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            let (parts, body) = request.into_parts();
            let (body, held) = match message::read(&state, body, gzip).await {
                Ok(read) => read,
                Err(error) => {
                    let (status, reason) = refusal(&error);
                    metrics.request_rejected(reason);
                    return Ok(status.into_http());
                }
            };
            let mut request = Request::from_parts(parts, body);
            // The handler takes the bytes to hold until its commit; the
            // gate's copy lets them go once the call is answered otherwise.
            request.extensions_mut().insert(held.clone());
            let mut response = inner.call(request).await?;
            drop((permit, held));
            if let Some(reason) = map_transport_status(&mut response) {
                metrics.request_rejected(reason);
            }
            Ok(response)
        })
    }
}

/// The status of a message that was not read, and how it is counted: past
/// the byte budget is overload (retryable, as when the admission is full),
/// past the size limit RESOURCE_EXHAUSTED without `RetryInfo`, as tonic's
/// own refusal of a long message becomes (see `map_transport_status`).
fn refusal(error: &MessageError) -> (Status, Rejection) {
    match error {
        MessageError::OverBudget(_) => (status::overloaded(), Rejection::Overloaded),
        MessageError::TooLarge { .. } => (
            Status::resource_exhausted(error.to_string()),
            Rejection::TooLarge,
        ),
        MessageError::Read(_) => (
            Status::invalid_argument(error.to_string()),
            Rejection::Decode,
        ),
    }
}

/// The receiver's own handlers answer OK, INVALID_ARGUMENT or UNAVAILABLE;
/// any other status comes from tonic reading the message, before them:
/// OUT_OF_RANGE for a message longer than the limit (which OTLP clients
/// would retry, forever), RESOURCE_EXHAUSTED for one that inflates past it,
/// INTERNAL for bytes that are not the protobuf message or not gzip. The
/// first becomes RESOURCE_EXHAUSTED (what gRPC itself specifies for a
/// message over the limit, and not retried without `RetryInfo`); the last
/// INVALID_ARGUMENT, the OTLP status for undecodable data. Returns how the
/// refusal is counted.
fn map_transport_status(response: &mut Response) -> Option<Rejection> {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)?;
    let (mapped, reason) = match code {
        Code::OutOfRange | Code::ResourceExhausted => {
            (Code::ResourceExhausted, Rejection::TooLarge)
        }
        Code::Internal => (Code::InvalidArgument, Rejection::Decode),
        _ => return None,
    };
    response
        .headers_mut()
        .insert("grpc-status", http::HeaderValue::from(mapped as i32));
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_status(code: Code) -> Response {
        Status::new(code, "from tonic").into_http()
    }

    fn code_of(response: &Response) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn tonics_own_refusals_become_otlps_statuses() {
        let mut long = with_status(Code::OutOfRange);
        assert_eq!(map_transport_status(&mut long), Some(Rejection::TooLarge));
        assert_eq!(code_of(&long), Some("8"));
        let mut garbage = with_status(Code::Internal);
        assert_eq!(map_transport_status(&mut garbage), Some(Rejection::Decode));
        assert_eq!(code_of(&garbage), Some("3"));
    }

    #[test]
    fn the_handlers_statuses_pass_unchanged() {
        for code in [Code::Ok, Code::InvalidArgument, Code::Unavailable] {
            let mut response = with_status(code);
            assert_eq!(map_transport_status(&mut response), None);
            assert_eq!(code_of(&response), Some((code as i32).to_string().as_str()));
        }
    }
}
