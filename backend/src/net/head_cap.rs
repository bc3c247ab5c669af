//! The request-head cap, counted on the parsed head. hyper's `max_buf_size`
//! only refuses a head still incomplete once its read buffer holds that
//! much, and the buffer grows in steps past it: a 70 KiB head, in one
//! segment or in 1 KiB pieces, was parsed whole under a 64 KiB cap (up to
//! 114 677 bytes got through). hyper's cap still stops a head that never
//! ends; this one makes the cap exact: 431 past it.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// The bytes of `request`'s head on the wire: its request line, each field
/// as `name: value` and the line ends. Whitespace around values is not
/// kept by the parser, so this is at most what was sent.
pub fn head_len<B>(request: &http::Request<B>) -> usize {
    // "METHOD target HTTP/1.1\r\n"
    let target = request
        .uri()
        .path_and_query()
        .map_or(request.uri().to_string().len(), |p| p.as_str().len());
    let line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    line + fields + "\r\n".len()
}

/// Refuses a request whose head is longer than `max` bytes.
pub async fn refuse_large_heads(
    State(max): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    if head_len(&request) > max {
        let message = format!("the request head is longer than {max} bytes\n");
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, message).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_is_the_heads_on_the_wire() -> Result<(), http::Error> {
        let request = http::Request::get("/v1/traces?a=1")
            .header("host", "x")
            .header("x-pad", "abc")
            .body(())?;
        let wire = "GET /v1/traces?a=1 HTTP/1.1\r\nhost: x\r\nx-pad: abc\r\n\r\n";
        assert_eq!(head_len(&request), wire.len());
        Ok(())
    }
}
