//! The one HTTP client of the command line: a GET with an optional
//! `Authorization` header, over http or https (rustls trusting Mozilla's
//! roots plus an optional PEM file, as the exporter does), with a connect
//! timeout and a cap on the answer's size. `otelite health` and the reading
//! commands' `--server` both use it; each puts its own deadline around a
//! whole request.

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No connection, or it broke before an answer: the whole cause chain
    /// (hyper's own message alone is just "client error (Connect)").
    #[error("{0}")]
    Request(String),
    #[error("cannot read the answer: {0}")]
    Body(String),
    /// The answer went past the caller's cap (`limit` bytes).
    #[error("the answer is longer than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Tls(#[from] otelite_model::tls::TlsError),
    #[error("{0}")]
    BadRequest(#[from] http::Error),
}

/// What a server answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpClient {
    /// A client trusting Mozilla's roots plus the certificates in `ca_file`
    /// (a private CA or a self-signed server).
    pub fn new(ca_file: Option<&Path>, connect_timeout: Duration) -> Result<Self, FetchError> {
        let setting = ca_file.map(|path| ("--server-ca".to_owned(), path.to_owned()));
        let tls = otelite_model::tls::client_config(setting.as_ref())?;
        Ok(Self::with_tls(tls, connect_timeout))
    }

    /// A client with its own TLS configuration (`otelite health` pins its
    /// server's certificate).
    pub fn with_tls(tls: std::sync::Arc<rustls::ClientConfig>, connect_timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(std::sync::Arc::unwrap_or_clone(tls))
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// GETs `url`; an answer longer than `max_body` bytes is an error.
    pub async fn get(
        &self,
        url: &Uri,
        authorization: Option<&HeaderValue>,
        max_body: usize,
    ) -> Result<Answer, FetchError> {
        let mut request = Request::get(url.clone());
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let response = self
            .client
            .request(request.body(Empty::new())?)
            .await
            .map_err(|error| FetchError::Request(crate::text::cause_chain(&error)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), max_body)
            .collect()
            .await
            .map_err(|error| match error.downcast_ref::<LengthLimitError>() {
                Some(_) => FetchError::TooLarge { limit: max_body },
                None => FetchError::Body(crate::text::cause_chain(error.as_ref())),
            })?
            .to_bytes();
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_cause_chain_names_the_root_cause() {
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        assert_eq!(
            crate::text::cause_chain(&error),
            "outer: connection refused"
        );
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let error = HttpClient::new(
            Some(Path::new("/nonexistent/ca.pem")),
            Duration::from_secs(1),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains("--server-ca") && error.contains("/nonexistent/ca.pem"),
            "{error}"
        );
    }
}
