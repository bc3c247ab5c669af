//! `--server URL`: the reading commands' questions asked of a running
//! `otelite serve` over its own query API (`/api/otelite/…`, `/api/rates`;
//! see `query/openapi.json`), answered with the store's own types. Each
//! request has one deadline (`--timeout`); the token goes as
//! `Authorization: Bearer`. Every failure becomes a `CliError` that names
//! the server and the cause.

use super::CliError;
use super::client::{FetchError, HttpClient};
use crate::rates::RatesReport;
use crate::storage::{Dependency, TraceQuery, TraceSummary};
use crate::units::{percent_encode, span_kind_name};
use http::{HeaderValue, StatusCode, Uri};
use otelite_model::{Span, SpanKind, TraceId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// The server's search pages are at most this long (its `limit` maximum);
/// longer `--limit`s are read page by page.
const PAGE_LIMIT: usize = 1000;
/// An answer larger than this is refused, so a wrong URL cannot fill memory.
/// A trace of a million spans is a few hundred MB of JSON.
const MAX_ANSWER_BYTES: usize = 1 << 30;
/// A host that does not answer the connect fails sooner than `--timeout`.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Remote {
    /// The URL as given, without trailing slashes: the API paths follow it,
    /// so a server behind a path prefix works.
    base: String,
    authorization: Option<HeaderValue>,
    client: HttpClient,
    timeout: Duration,
}

impl Remote {
    pub fn new(
        url: &str,
        token: Option<&str>,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Self, CliError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|_| not_a_url(url))?;
        if !matches!(uri.scheme_str(), Some("http" | "https"))
            || uri.authority().is_none()
            || uri.query().is_some()
        {
            return Err(not_a_url(url));
        }
        let authorization = token.map(bearer).transpose()?;
        let connect_timeout = timeout.min(MAX_CONNECT_TIMEOUT);
        let client = HttpClient::new(ca_file, connect_timeout)
            .map_err(|error| CliError::BadArgument(error.to_string()))?;
        Ok(Self {
            base,
            authorization,
            client,
            timeout,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn services(&self) -> Result<Vec<String>, CliError> {
        #[derive(Deserialize)]
        struct Body {
            services: Vec<String>,
        }
        let body: Body = self.get_found("/api/otelite/services").await?;
        Ok(body.services)
    }

    /// `None` when the server knows no such service.
    pub async fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Option<Vec<(String, SpanKind)>>, CliError> {
        #[derive(Deserialize)]
        struct Operation {
            name: String,
            kind: SpanKind,
        }
        #[derive(Deserialize)]
        struct Body {
            operations: Vec<Operation>,
        }
        let mut path = format!(
            "/api/otelite/services/{}/operations",
            percent_encode(service)
        );
        if let Some(kind) = kind {
            path.push_str(&format!("?kind={}", span_kind_name(kind)));
        }
        let body: Option<Body> = self.get(&path).await?;
        Ok(body.map(|body| {
            body.operations
                .into_iter()
                .map(|op| (op.name, op.kind))
                .collect()
        }))
    }

    /// Page after page until `query.limit` summaries or the last page.
    pub async fn search(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, CliError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            traces: Vec<TraceSummary>,
            next_cursor: Option<String>,
        }
        let mut traces = Vec::new();
        let mut cursor = None;
        while traces.len() < query.limit {
            let limit = (query.limit - traces.len()).min(PAGE_LIMIT);
            let parameters = search_parameters(query, limit, cursor.take());
            let page: Page = self
                .get_found(&format!("/api/otelite/search?{parameters}"))
                .await?;
            traces.extend(page.traces);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        traces.truncate(query.limit);
        Ok(traces)
    }

    /// `None` when the server has no such trace.
    pub async fn trace(&self, id: &TraceId) -> Result<Option<Vec<Span>>, CliError> {
        #[derive(Deserialize)]
        struct Body {
            spans: Vec<Span>,
        }
        let body: Option<Body> = self.get(&format!("/api/otelite/traces/{id}")).await?;
        Ok(body.map(|body| body.spans))
    }

    pub async fn rates(
        &self,
        service: Option<&str>,
        start_ns: u64,
        end_ns: u64,
    ) -> Result<RatesReport, CliError> {
        let mut pairs = vec![("start", start_ns.to_string()), ("end", end_ns.to_string())];
        pairs.extend(service.map(|s| ("service", s.to_owned())));
        self.get_found(&format!("/api/rates?{}", encode(&pairs)))
            .await
    }

    pub async fn dependencies(
        &self,
        start_ns: u64,
        end_ns: u64,
    ) -> Result<Vec<Dependency>, CliError> {
        #[derive(Deserialize)]
        struct Body {
            dependencies: Vec<Dependency>,
        }
        let pairs = [("start", start_ns.to_string()), ("end", end_ns.to_string())];
        let body: Body = self
            .get_found(&format!("/api/otelite/dependencies?{}", encode(&pairs)))
            .await?;
        Ok(body.dependencies)
    }

    /// As `get`, where a 404 can only mean the URL is not otelite's API.
    async fn get_found<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let url = format!("{}{path}", self.base);
        self.get(path).await?.ok_or(CliError::ServerAnswer {
            url,
            status: StatusCode::NOT_FOUND,
            message: "not found".into(),
        })
    }

    /// GETs `path` (with its query) under the base URL: the JSON body of a
    /// 2xx, `None` for otelite's own 404 (a JSON `error`: no such trace or
    /// service), and an error naming the cause otherwise.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, CliError> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url.parse().map_err(|_| not_a_url(&url))?;
        let fetch = self
            .client
            .get(&uri, self.authorization.as_ref(), MAX_ANSWER_BYTES);
        let answer = match tokio::time::timeout(self.timeout, fetch).await {
            Err(_) => {
                return Err(CliError::Timeout {
                    url,
                    timeout: self.timeout,
                });
            }
            Ok(Err(FetchError::Request(reason))) => {
                return Err(CliError::Unreachable {
                    url: self.base.clone(),
                    reason,
                });
            }
            Ok(Err(error)) => {
                return Err(CliError::BadAnswer {
                    url,
                    reason: error.to_string(),
                });
            }
            Ok(Ok(answer)) => answer,
        };
        let message = error_message(&answer.body);
        match answer.status {
            status if status.is_success() => serde_json::from_slice(&answer.body)
                .map(Some)
                .map_err(|error| CliError::BadAnswer {
                    url,
                    reason: error.to_string(),
                }),
            StatusCode::UNAUTHORIZED => Err(CliError::Unauthorized {
                url: self.base.clone(),
                hint: if self.authorization.is_some() {
                    "the server refused the query token (--query-token or OTELITE_QUERY_TOKEN)"
                } else {
                    "the server needs a query token: pass --query-token or set OTELITE_QUERY_TOKEN"
                },
            }),
            StatusCode::NOT_FOUND if message.is_some() => Ok(None),
            status => Err(CliError::ServerAnswer {
                url,
                status,
                message: message.unwrap_or_else(|| body_excerpt(&answer.body)),
            }),
        }
    }
}

fn not_a_url(url: &str) -> CliError {
    CliError::BadArgument(format!(
        "server {url:?} is not an http:// or https:// URL like http://127.0.0.1:16686"
    ))
}

fn bearer(token: &str) -> Result<HeaderValue, CliError> {
    if token.trim().is_empty() {
        return Err(CliError::BadArgument("the query token is empty".into()));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        CliError::BadArgument("the query token has characters a header cannot carry".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The `error` of otelite's JSON error answers (`{"error": "…"}`).
fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Error {
        error: String,
    }
    serde_json::from_slice::<Error>(body)
        .ok()
        .map(|body| body.error)
}

/// The start of an answer that is not otelite's, to say what came instead.
fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        _ if text.is_empty() => "(no message)".into(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn encode(pairs: &[(&str, String)]) -> String {
    // Encoding pairs of strings cannot fail.
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// The search's query string: the filters of `query`, one page of `limit`.
fn search_parameters(query: &TraceQuery, limit: usize, cursor: Option<String>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    pairs.extend(query.service.clone().map(|v| ("service", v)));
    pairs.extend(query.operation.clone().map(|v| ("operation", v)));
    pairs.extend(query.kind.map(|k| ("kind", span_kind_name(k).to_owned())));
    for (key, value) in &query.attributes {
        pairs.push(("attribute", format!("{key}={value}")));
    }
    for (key, prefix) in &query.attribute_prefixes {
        pairs.push(("attributePrefix", format!("{key}={prefix}")));
    }
    if query.error_only {
        pairs.push(("error", "true".into()));
    }
    let number = |name, value: Option<u64>| value.map(|v| (name, v.to_string()));
    pairs.extend(number("minDurationNanos", query.min_duration_ns));
    pairs.extend(number("maxDurationNanos", query.max_duration_ns));
    pairs.extend(number("start", query.start_ns));
    pairs.extend(number("end", query.end_ns));
    pairs.push(("limit", limit.to_string()));
    pairs.extend(cursor.map(|c| ("cursor", c)));
    encode(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_one_percent_encode() {
        assert_eq!(percent_encode("shop-frontend_1.x~"), "shop-frontend_1.x~");
        assert_eq!(percent_encode("a b/c?d%"), "a%20b%2Fc%3Fd%25");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn the_search_sends_every_filter() {
        let query = TraceQuery {
            service: Some("shop front".into()),
            operation: Some("GET /x".into()),
            kind: Some(SpanKind::Client),
            attributes: vec![("user.id".into(), "7".into()), ("q".into(), "a=b&c".into())],
            attribute_prefixes: vec![("url".into(), "/a b".into())],
            error_only: true,
            min_duration_ns: Some(1),
            max_duration_ns: Some(2),
            start_ns: Some(3),
            end_ns: Some(4),
            limit: 5000,
            cursor: None,
        };
        assert_eq!(
            search_parameters(&query, 1000, Some("9-ab".into())),
            "service=shop+front&operation=GET+%2Fx&kind=client&attribute=user.id%3D7\
             &attribute=q%3Da%3Db%26c&attributePrefix=url%3D%2Fa+b&error=true\
             &minDurationNanos=1&maxDurationNanos=2\
             &start=3&end=4&limit=1000&cursor=9-ab"
        );
        let plain = TraceQuery {
            limit: 20,
            ..TraceQuery::default()
        };
        assert_eq!(search_parameters(&plain, 20, None), "limit=20");
    }

    #[test]
    fn only_http_and_https_urls_are_servers() {
        let timeout = Duration::from_secs(1);
        for good in [
            "http://127.0.0.1:16686",
            "http://127.0.0.1:16686/",
            "https://otelite.example/prefix/",
        ] {
            let remote = Remote::new(good, None, None, timeout);
            assert!(remote.is_ok(), "{good}");
        }
        let remote = Remote::new("http://127.0.0.1:16686//", None, None, timeout);
        assert_eq!(
            remote.map(|r| r.base).ok().as_deref(),
            Some("http://127.0.0.1:16686")
        );
        for bad in [
            "127.0.0.1:16686",
            "ftp://host",
            "http://",
            "http://h/?q=1",
            "",
        ] {
            let error = Remote::new(bad, None, None, timeout).err();
            assert!(
                matches!(&error, Some(CliError::BadArgument(m)) if m.contains("not an http")),
                "{bad}: {error:?}"
            );
        }
        for bad in ["", " ", "line\nbreak"] {
            let error = Remote::new("http://h", Some(bad), None, timeout).err();
            assert!(
                matches!(&error, Some(CliError::BadArgument(m)) if m.contains("query token")),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn error_answers_give_their_message() {
        assert_eq!(
            error_message(br#"{"error":"limit must be between 1 and 1000"}"#).as_deref(),
            Some("limit must be between 1 and 1000")
        );
        assert_eq!(error_message(b"<html>nope</html>"), None);
        assert_eq!(body_excerpt(b"  \n"), "(no message)");
        assert_eq!(body_excerpt(b" plain text \n"), "plain text");
        assert_eq!(
            body_excerpt("x".repeat(300).as_bytes()).chars().count(),
            201
        );
    }
}
