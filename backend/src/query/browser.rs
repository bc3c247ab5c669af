//! Headers that keep a browser from turning otelite's pages against their
//! user: no framing (clickjacking), no guessing a content type (a span's
//! text served as HTML), and a Content-Security-Policy that lets the UI run
//! only its own scripts. Styles may be inline: the UI sets sizes and
//! positions through `style`, and no script can be injected through CSS.

use axum::response::Response;
use http::HeaderValue;
use http::header::{CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};

pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// Adds the headers to every answer of the query listener.
pub async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
