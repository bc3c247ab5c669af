//! A running `otelite serve` as a reader: the seam's questions asked over
//! its own query API (`/api/otelite/…`, `/api/rates`; see
//! `query/openapi.json`) and answered with the store's own types, so the
//! reading commands' `--server` works as `--db` does. Each request has one
//! deadline (`--timeout`); the token goes as `Authorization: Bearer`. Every
//! failure is a [`RemoteError`] that names the server and the cause.

pub mod client;
mod error;

pub use error::RemoteError;

use crate::rates::{RatesReport, UpstreamLossEstimate};
use crate::stage::Stage;
use crate::storage::{
    Dependency, Orphans, Page, PageRequest, RateRow, StoreFuture, TracePage, TraceQuery,
    TraceReader, TraceSummary,
};
use crate::text::{percent_encode, span_kind_name};
use client::{FetchError, HttpClient};
use http::{HeaderValue, StatusCode, Uri};
use otelite_model::{Span, SpanKind, TraceId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// The server's search pages are at most this long (its `limit` maximum):
/// a longer search is read page by page.
pub const PAGE_LIMIT: usize = 1000;
/// The longest list answer read (services, operations, a search page,
/// dependencies, rates), so a wrong or hostile server cannot fill memory:
/// parsed, a list of short strings costs about 12 times its JSON. A full
/// search page of 1000 summaries is well under 1 MiB.
pub const MAX_LIST_BYTES: usize = 8 << 20;
/// The longest answer of one page of a trace read: about 100 000 spans of
/// JSON, past any server's `max_spans_per_answer` default; the pages of a
/// larger trace are read one after the other.
pub const MAX_TRACE_BYTES: usize = 64 << 20;
/// A host that does not answer the connect fails sooner than `--timeout`.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SECOND_NS: u64 = 1_000_000_000;

#[derive(Clone)]
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
    ) -> Result<Self, RemoteError> {
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
            .map_err(|error| RemoteError::BadArgument(error.to_string()))?;
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

    async fn services(&self) -> Result<Vec<String>, RemoteError> {
        #[derive(Deserialize)]
        struct Body {
            services: Vec<String>,
        }
        let body: Body = self.get_found("/api/otelite/services").await?;
        Ok(body.services)
    }

    /// No operations when the server knows no such service.
    async fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<(String, SpanKind)>, RemoteError> {
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
        let body: Option<Body> = self.get(&path, MAX_LIST_BYTES).await?;
        let operations = body.map(|body| body.operations).unwrap_or_default();
        Ok(operations
            .into_iter()
            .map(|op| (op.name, op.kind))
            .collect())
    }

    /// One page of at most the server's own page limit.
    async fn search_page(&self, query: &TraceQuery) -> Result<Page, RemoteError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Body {
            traces: Vec<TraceSummary>,
            next_cursor: Option<String>,
        }
        let limit = query.limit.min(PAGE_LIMIT);
        let cursor = query.cursor.map(|cursor| cursor.to_string());
        let parameters = search_parameters(query, limit, cursor);
        let path = format!("/api/otelite/search?{parameters}");
        let body: Body = self.get_found(&path).await?;
        let next = match body.next_cursor {
            Some(text) => Some(text.parse().map_err(|()| RemoteError::BadAnswer {
                url: format!("{}{path}", self.base),
                reason: format!("{text:?} is not a cursor"),
            })?),
            None => None,
        };
        Ok(Page {
            traces: body.traces,
            next,
        })
    }

    /// One page of a trace; `None` when the server has no such trace. The
    /// server may answer fewer spans than asked (its
    /// `max_spans_per_answer`): its `nextCursor` says where to go on.
    async fn trace_page(
        &self,
        id: &TraceId,
        request: PageRequest,
    ) -> Result<Option<TracePage>, RemoteError> {
        let mut path = format!("/api/otelite/traces/{id}?limit={}", request.limit.max(1));
        if let Some(after) = request.after {
            path.push_str(&format!("&cursor={after}"));
        }
        let body: Option<TracePageBody> = self.get(&path, MAX_TRACE_BYTES).await?;
        body.map(|body| body.into_page(&format!("{}{path}", self.base)))
            .transpose()
    }

    /// The orphans behind the server's upstream loss estimates, counted
    /// after its own grace period; none from a server too old to count them.
    async fn orphans(
        &self,
        service: Option<&str>,
        start_minute: i64,
        end_minute: i64,
    ) -> Result<Vec<Orphans>, RemoteError> {
        let report = self.report(service, start_minute, end_minute).await?;
        let Some(all) = &report.all.upstream_loss_estimate else {
            return Ok(Vec::new());
        };
        let grace = Duration::from_secs(all.grace_seconds);
        let row = |service: Option<String>, estimate: &UpstreamLossEstimate| Orphans {
            service,
            spans: estimate.orphans,
            parents: estimate.lower_bound,
            grace,
        };
        let mut out: Vec<Orphans> = report
            .services
            .iter()
            .filter_map(|rates| {
                let estimate = rates.upstream_loss_estimate.as_ref()?;
                (estimate.orphans > 0).then(|| row(rates.service.clone(), estimate))
            })
            .collect();
        out.push(row(None, all));
        Ok(out)
    }

    /// The server's rates report over the minutes `[start_minute, end_minute]`.
    async fn report(
        &self,
        service: Option<&str>,
        start_minute: i64,
        end_minute: i64,
    ) -> Result<RatesReport, RemoteError> {
        let nanos = |minute: i64| u64::try_from(minute).unwrap_or(0).saturating_mul(SECOND_NS);
        let mut pairs = vec![
            ("start", nanos(start_minute).to_string()),
            ("end", nanos(end_minute).to_string()),
        ];
        pairs.extend(service.map(|s| ("service", s.to_owned())));
        self.get_found(&format!("/api/rates?{}", encode(&pairs)))
            .await
    }

    /// The stage counts behind the server's rates: its per-service report
    /// holds each stage's count.
    async fn stage_counts(
        &self,
        service: Option<&str>,
        start_minute: i64,
        end_minute: i64,
    ) -> Result<Vec<RateRow>, RemoteError> {
        let report = self.report(service, start_minute, end_minute).await?;
        let hop = collector_hop(&report.all);
        Ok(report
            .services
            .into_iter()
            .flat_map(|rates| {
                let service = rates.service.unwrap_or_default();
                rates.stages.into_iter().flat_map(move |stage| {
                    // Its losses by reason too; `unaccounted` is derived
                    // again from the counts.
                    let losses = stage
                        .reasons
                        .into_iter()
                        .filter(|(reason, _)| reason != crate::rates::UNACCOUNTED)
                        .map(|(reason, n)| RateRow {
                            service: service.clone(),
                            stage: stage.stage,
                            reason: Some(reason),
                            n,
                        });
                    // And what rules dropped, as the stores keep it.
                    let dropped = stage.dropped.into_iter().map(|drop| RateRow {
                        service: service.clone(),
                        stage: stage.stage,
                        reason: Some(crate::analyze::policy::reason(&drop.rule)),
                        n: drop.n,
                    });
                    let passed = stage.n.map(|n| RateRow {
                        service: service.clone(),
                        stage: stage.stage,
                        reason: None,
                        n,
                    });
                    passed
                        .into_iter()
                        .chain(losses)
                        .chain(dropped)
                        .collect::<Vec<_>>()
                })
            })
            .chain(hop)
            .collect())
    }

    async fn dependencies(
        &self,
        start_ns: u64,
        end_ns: u64,
    ) -> Result<Vec<Dependency>, RemoteError> {
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
    async fn get_found<T: DeserializeOwned>(&self, path: &str) -> Result<T, RemoteError> {
        let url = format!("{}{path}", self.base);
        self.get(path, MAX_LIST_BYTES)
            .await?
            .ok_or(RemoteError::ServerAnswer {
                url,
                status: StatusCode::NOT_FOUND,
                message: "not found".into(),
            })
    }

    /// GETs `path` (with its query) under the base URL: the JSON body of a
    /// 2xx, `None` for otelite's own 404 (a JSON `error`: no such trace or
    /// service), and an error naming the cause otherwise; an answer longer
    /// than `max_body` bytes is an error.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        max_body: usize,
    ) -> Result<Option<T>, RemoteError> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url.parse().map_err(|_| not_a_url(&url))?;
        let fetch = self.client.get(&uri, self.authorization.as_ref(), max_body);
        let answer = match tokio::time::timeout(self.timeout, fetch).await {
            Err(_) => {
                return Err(RemoteError::Timeout {
                    url,
                    timeout: self.timeout,
                });
            }
            Ok(Err(FetchError::Request(reason))) => {
                return Err(RemoteError::Unreachable {
                    url: self.base.clone(),
                    reason,
                });
            }
            Ok(Err(FetchError::TooLarge { limit })) => {
                return Err(RemoteError::TooLarge { url, limit });
            }
            Ok(Err(error)) => {
                return Err(RemoteError::BadAnswer {
                    url,
                    reason: error.to_string(),
                });
            }
            Ok(Ok(answer)) => answer,
        };
        read_answer(
            &self.base,
            url,
            self.authorization.is_some(),
            answer.status,
            &answer.body,
        )
    }
}

/// A page of a trace as the server's JSON has it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TracePageBody {
    spans: Vec<Span>,
    span_count: u64,
    start_time_unix_nano: u64,
    duration_nanos: u64,
    next_cursor: Option<String>,
}

impl TracePageBody {
    /// The page, its cursor checked; `url` names the answer in errors.
    pub(crate) fn into_page(self, url: &str) -> Result<TracePage, RemoteError> {
        let next = match self.next_cursor {
            Some(text) => Some(text.parse().map_err(|()| RemoteError::BadAnswer {
                url: url.to_owned(),
                reason: format!("{text:?} is not a span cursor"),
            })?),
            None => None,
        };
        Ok(TracePage {
            spans: self.spans,
            span_count: self.span_count,
            start_ns: self.start_time_unix_nano,
            end_ns: self
                .start_time_unix_nano
                .saturating_add(self.duration_nanos),
            next,
        })
    }
}

/// What an answer comes to once fetched: the JSON body of a 2xx, `None`
/// for otelite's own 404 (a JSON `error`), and an error naming the cause
/// otherwise. `authorized`: whether a token was sent (a 401 then says it
/// was refused). Pure, so that the fuzz target `cli_answers` feeds it.
pub(crate) fn read_answer<T: DeserializeOwned>(
    base: &str,
    url: String,
    authorized: bool,
    status: StatusCode,
    body: &[u8],
) -> Result<Option<T>, RemoteError> {
    let message = error_message(body);
    match status {
        status if status.is_success() => {
            serde_json::from_slice(body)
                .map(Some)
                .map_err(|error| RemoteError::BadAnswer {
                    url,
                    reason: error.to_string(),
                })
        }
        StatusCode::UNAUTHORIZED => Err(RemoteError::Unauthorized {
            url: base.to_owned(),
            hint: if authorized {
                "the server refused the query token (--query-token or OTELITE_QUERY_TOKEN)"
            } else {
                "the server needs a query token: pass --query-token or set OTELITE_QUERY_TOKEN"
            },
        }),
        StatusCode::NOT_FOUND if message.is_some() => Ok(None),
        status => Err(RemoteError::ServerAnswer {
            url,
            status,
            message: message.unwrap_or_else(|| body_excerpt(body)),
        }),
    }
}

/// Each answer owns a clone of the client, so the futures are `'static`.
impl TraceReader for Remote {
    fn services(&self) -> StoreFuture<Vec<String>> {
        let remote = self.clone();
        Box::pin(async move { Ok(Remote::services(&remote).await?) })
    }

    fn operations(
        &self,
        service: String,
        kind: Option<SpanKind>,
    ) -> StoreFuture<Vec<(String, SpanKind)>> {
        let remote = self.clone();
        Box::pin(async move { Ok(Remote::operations(&remote, &service, kind).await?) })
    }

    fn trace_page(&self, trace_id: TraceId, page: PageRequest) -> StoreFuture<Option<TracePage>> {
        let remote = self.clone();
        Box::pin(async move { Ok(Remote::trace_page(&remote, &trace_id, page).await?) })
    }

    fn search_page(&self, query: TraceQuery) -> StoreFuture<Page> {
        let remote = self.clone();
        Box::pin(async move { Ok(Remote::search_page(&remote, &query).await?) })
    }

    fn dependencies(&self, start_ns: u64, end_ns: u64) -> StoreFuture<Vec<Dependency>> {
        let remote = self.clone();
        Box::pin(async move { Ok(Remote::dependencies(&remote, start_ns, end_ns).await?) })
    }

    fn stage_counts(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
    ) -> StoreFuture<Vec<RateRow>> {
        let remote = self.clone();
        Box::pin(async move {
            Ok(Remote::stage_counts(&remote, service.as_deref(), start_minute, end_minute).await?)
        })
    }

    /// The server counts after its own grace period: `grace` is not sent.
    fn orphans(
        &self,
        service: Option<String>,
        start_minute: i64,
        end_minute: i64,
        _grace: Duration,
    ) -> StoreFuture<Vec<Orphans>> {
        let remote = self.clone();
        Box::pin(async move {
            Ok(Remote::orphans(&remote, service.as_deref(), start_minute, end_minute).await?)
        })
    }
}

fn not_a_url(url: &str) -> RemoteError {
    RemoteError::BadArgument(format!(
        "server {url:?} is not an http:// or https:// URL like http://127.0.0.1:16686"
    ))
}

fn bearer(token: &str) -> Result<HeaderValue, RemoteError> {
    if token.trim().is_empty() {
        return Err(RemoteError::BadArgument("the query token is empty".into()));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        RemoteError::BadArgument("the query token has characters a header cannot carry".into())
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

/// The rows behind the sum's `collector` hop: a passed row per Collector,
/// so that each is named and a loss-free hop still shows, and the losses by
/// reason, filed under the first (the hop's `n` is derived again).
fn collector_hop(all: &crate::rates::Rates) -> Vec<RateRow> {
    let (Some(collector), Some(hop)) = (
        all.collectors.first(),
        all.stages.iter().find(|s| s.stage == Stage::Collector),
    ) else {
        return Vec::new();
    };
    let row = |reason: Option<String>, n| RateRow {
        service: collector.clone(),
        stage: Stage::Collector,
        reason,
        n,
    };
    let named = all.collectors.iter().map(|name| RateRow {
        service: name.clone(),
        ..row(None, hop.n.unwrap_or(0))
    });
    named
        .chain(
            hop.reasons
                .iter()
                .filter(|(reason, _)| *reason != crate::rates::UNACCOUNTED)
                .map(|(reason, n)| row(Some(reason.clone()), *n)),
        )
        .collect()
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
            // Jaeger's tag only: the CLI never asks for it.
            status: None,
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
                matches!(&error, Some(RemoteError::BadArgument(m)) if m.contains("not an http")),
                "{bad}: {error:?}"
            );
        }
        for bad in ["", " ", "line\nbreak"] {
            let error = Remote::new("http://h", Some(bad), None, timeout).err();
            assert!(
                matches!(&error, Some(RemoteError::BadArgument(m)) if m.contains("query token")),
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
