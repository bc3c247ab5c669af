//! Target `query_router`: any method, request target and header fields
//! through the query listener's router as served (API, Jaeger, UI, health),
//! without a socket, against a small SQLite store holding one trace of
//! `SEED_SPANS` spans, read with a span cap below that so paging is hit.
//! Panics on a panic, on a 5xx other than 503 (a store error or a bug
//! behind a parameter), and on a trace page past the cap.

use crate::storage::QueueLimits;
use crate::storage::sqlite::{SqliteStore, WriterThread};
use axum::body::Body;
use http::{Method, Request, StatusCode};
use tower::ServiceExt;

/// The seeded trace: its id, and how many spans it has.
pub const SEED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
pub const SEED_SPANS: usize = 5;
/// The router's `max_spans_per_answer`: below the trace's size.
const CAP: usize = 2;

const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::HEAD,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
];

/// The query router and the store it reads, with a runtime to drive them.
pub struct QueryFixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _writer: WriterThread,
}

impl QueryFixture {
    /// The database goes in `dir`, which the caller owns and removes.
    pub fn new(dir: &std::path::Path) -> Self {
        let limits = QueueLimits {
            requests: 8,
            spans: 1 << 16,
        };
        let (store, writer) =
            SqliteStore::open(&dir.join("query.db"), limits).expect("a store in the temp dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let query_limits = crate::query::QueryLimits {
            max_spans_per_answer: CAP,
            query_timeout: std::time::Duration::from_secs(5),
            ..crate::query::QueryLimits::default()
        };
        let (receive, router) = crate::routers(
            &store,
            crate::receive::Limits::with_body_limit(1 << 20),
            query_limits,
            &crate::BearerTokens::default(),
        );
        let seeded = runtime.block_on(async {
            let request = Request::post("/v1/traces")
                .header("content-type", "application/json")
                .body(Body::from(seed_body()))
                .expect("the seed request");
            receive.oneshot(request).await.map(|r| r.status())
        });
        assert_eq!(
            seeded.ok(),
            Some(StatusCode::OK),
            "the seed trace is stored"
        );
        Self {
            runtime,
            router,
            _writer: writer,
        }
    }

    /// The first byte picks the method; the rest, as text, is the request
    /// target on its first line and `name: value` header fields on the
    /// others. Returns the status (`None` when `http` refuses the request
    /// before any server code runs).
    pub fn check(&self, data: &[u8]) -> Option<StatusCode> {
        let (choice, rest) = data.split_first()?;
        let text = String::from_utf8_lossy(rest);
        let mut lines = text.split('\n');
        let target = lines.next()?;
        let method = METHODS[usize::from(*choice) % METHODS.len()].clone();
        // HEAD answers the status without the body.
        let has_body = method != Method::HEAD;
        let mut builder = Request::builder().method(method).uri(target);
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                builder = builder.header(name.trim(), value.trim());
            }
        }
        let request = builder.body(Body::empty()).ok()?;
        let (status, body) = self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await;
            let response = response.unwrap_or_else(|never| match never {});
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            (status, body.unwrap_or_default())
        });
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} for {target:?}: {excerpt}"
        );
        if has_body && status == StatusCode::OK && target.starts_with("/api/otelite/traces/") {
            let page: serde_json::Value =
                serde_json::from_slice(&body).expect("a trace answer is JSON");
            let spans = page["spans"].as_array().map_or(0, Vec::len);
            assert!(spans <= CAP, "{spans} spans past the cap of {CAP}");
        }
        Some(status)
    }
}

/// One trace of `SEED_SPANS` spans (a root and its children) as OTLP JSON.
fn seed_body() -> String {
    let spans: Vec<String> = (0..SEED_SPANS)
        .map(|i| {
            let parent = if i == 0 {
                String::new()
            } else {
                "0000000000000001".into()
            };
            format!(
                r#"{{"traceId":"{SEED_TRACE}","spanId":"{:016x}","parentSpanId":"{parent}","name":"op-{i}","kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":[{{"key":"user.id","value":{{"stringValue":"u{i}"}}}}]}}"#,
                i + 1,
                1_700_000_000_000_000_000u64 + i as u64 * 1000,
                1_700_000_000_000_000_000u64 + i as u64 * 1000 + 500
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"shop"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}
