//! One HTTP attempt: POST an already-encoded body to a URL with the
//! configured headers and return status, `Retry-After` and body. Also
//! `encode_body` (see `body`), done once per export before retries.

use super::config::Compression;
use crate::error::ExportError;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;

/// The HTTP/1 client the exporter sends with (pooled, keep-alive), over
/// TLS for https endpoints.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub(crate) fn http_client(tls: Arc<rustls::ClientConfig>) -> HttpClient {
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(Arc::unwrap_or_clone(tls))
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What the endpoint answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Protobuf-encodes `message` and compresses it as configured (a one-off
/// `BodyEncoder`; the exporter keeps one across exports).
pub fn encode_body(
    message: &impl prost::Message,
    compression: Compression,
) -> Result<Bytes, ExportError> {
    super::body::BodyEncoder::default().encode(message, compression)
}

/// Sends one POST and reads the whole answer. No timeout here: the caller
/// bounds it by the export's deadline.
pub(crate) async fn attempt(
    client: &HttpClient,
    url: &Uri,
    headers: &HeaderMap,
    compression: Compression,
    body: Bytes,
) -> Result<Answer, ExportError> {
    let mut builder = Request::post(url.clone()).header(CONTENT_TYPE, "application/x-protobuf");
    if compression == Compression::Gzip {
        builder = builder.header(CONTENT_ENCODING, "gzip");
    }
    if let Some(map) = builder.headers_mut() {
        map.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| ExportError::Internal(format!("request: {e}")))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| ExportError::Transport(error_chain(&e)))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The answer is a small status message; a huge body is not worth reading.
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| ExportError::Transport(error_chain(&*e)))?
        .to_bytes();
    Ok(Answer {
        status,
        retry_after,
        content_type,
        body,
    })
}

/// hyper's errors say little at the top ("client error (Connect)"); the
/// sources say why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
