//! The cost budget of the query API, checked before any handler runs: a
//! cap on how often one parameter may repeat (each `attributePrefix` or
//! `tag` is one more condition on every span searched), a cap on distinct
//! trace ids per request (each is a whole trace loaded), and a bound on
//! reads served at once, past which a request gets 503 with `Retry-After`
//! instead of another blocking thread and another trace in memory.

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The defaults, which `Settings` declares.
pub mod defaults {
    /// Reads served at once.
    pub const MAX_CONCURRENT_READS: usize = 8;
    /// Distinct `traceID`s one request may ask for.
    pub const MAX_TRACE_IDS: usize = 20;
    /// Times one parameter may be given in one request.
    pub const MAX_REPEATED_PARAMS: usize = 32;
    /// Spans in one answer (a trace's page, a Jaeger search's traces):
    /// about 6 MiB of otelite's JSON, which the Jaeger UI still draws.
    pub const MAX_SPANS_PER_ANSWER: usize = 10_000;
}

/// The most spans one answer holds (`max_spans_per_answer`), handed to the
/// handlers as a request extension by [`enforce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanCap(pub usize);

/// The limits; each is a setting of `otelite serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    pub max_concurrent_reads: usize,
    pub max_trace_ids: usize,
    pub max_repeated_params: usize,
    /// Spans in one answer; a larger trace is answered in pages.
    pub max_spans_per_answer: usize,
    /// How long one query may run (SQLite's reads, ClickHouse's too).
    pub query_timeout: std::time::Duration,
    /// How long after a span arrived its parent is waited for, before the
    /// span counts as an orphan in `/api/rates`' upstream loss estimate.
    pub orphan_grace: std::time::Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_concurrent_reads: defaults::MAX_CONCURRENT_READS,
            max_trace_ids: defaults::MAX_TRACE_IDS,
            max_repeated_params: defaults::MAX_REPEATED_PARAMS,
            max_spans_per_answer: defaults::MAX_SPANS_PER_ANSWER,
            query_timeout: crate::storage::sqlite::DEFAULT_QUERY_TIMEOUT,
            orphan_grace: crate::rates::DEFAULT_ORPHAN_GRACE,
        }
    }
}

/// The limits with the reads' permits; cheap to clone.
#[derive(Clone)]
pub struct Budget {
    limits: QueryLimits,
    reads: Arc<Semaphore>,
}

impl Budget {
    pub fn new(limits: QueryLimits) -> Self {
        Self {
            limits,
            reads: Arc::new(Semaphore::new(limits.max_concurrent_reads.max(1))),
        }
    }

    #[cfg(test)]
    pub fn reads(&self) -> Arc<Semaphore> {
        self.reads.clone()
    }

    /// Why this query string costs more than the budget allows, if it does.
    fn refusal(&self, raw: Option<&str>) -> Option<String> {
        // A query string that does not decode is the handler's 400 to give.
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or_default()).ok()?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (name, _) in &pairs {
            *counts.entry(name).or_default() += 1;
        }
        let max = self.limits.max_repeated_params;
        if let Some((name, count)) = counts.iter().find(|(_, count)| **count > max) {
            return Some(format!(
                "parameter {name:?} is given {count} times; at most {max} are allowed (max_repeated_params)"
            ));
        }
        let ids: HashSet<String> = pairs
            .iter()
            .filter(|(name, value)| name == "traceID" && !value.is_empty())
            .map(|(_, value)| value.trim_start_matches('0').to_ascii_lowercase())
            .collect();
        let max = self.limits.max_trace_ids;
        (ids.len() > max).then(|| {
            format!(
                "{} distinct trace ids asked for; at most {max} per request (max_trace_ids): ask in several requests",
                ids.len()
            )
        })
    }
}

/// The middleware: refuses what is over budget, holds a read permit
/// while the handler runs, and tells the handler the span cap.
pub async fn enforce(State(budget): State<Budget>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if let Some(why) = budget.refusal(request.uri().query()) {
        return refuse(&path, StatusCode::BAD_REQUEST, why);
    }
    let Ok(_permit) = budget.reads.clone().try_acquire_owned() else {
        let why = format!(
            "{} queries are being answered, the most at once (max_concurrent_reads); retry shortly",
            budget.limits.max_concurrent_reads
        );
        let mut response = refuse(&path, StatusCode::SERVICE_UNAVAILABLE, why);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    request
        .extensions_mut()
        .insert(SpanCap(budget.limits.max_spans_per_answer.max(1)));
    next.run(request).await
}

/// The refusal in the error shape of the API asked: Jaeger v3, otelite's
/// own, or Jaeger v1's envelope.
fn refuse(path: &str, status: StatusCode, message: String) -> Response {
    let body: Value = if path.starts_with("/api/v3/") {
        json!({ "error": { "httpCode": status.as_u16(), "message": message } })
    } else if path.starts_with("/api/otelite/") || path == "/api/rates" {
        json!({ "error": message })
    } else {
        json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{ "code": status.as_u16(), "msg": message }],
        })
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    /// With one read allowed and one in flight, the next gets 503 with
    /// `Retry-After`; once the first is done, reads are served again.
    #[tokio::test]
    async fn reads_past_the_bound_get_503_with_retry_after()
    -> Result<(), Box<dyn std::error::Error>> {
        let budget = Budget::new(QueryLimits {
            max_concurrent_reads: 1,
            ..QueryLimits::default()
        });
        let release = Arc::new(tokio::sync::Notify::new());
        let held = release.clone();
        let router = Router::new()
            .route(
                "/api/slow",
                get(move || async move { held.notified().await }),
            )
            .route("/api/fast", get(|| async {}))
            .layer(axum::middleware::from_fn_with_state(
                budget.clone(),
                enforce,
            ));
        let slow = tokio::spawn(
            router
                .clone()
                .oneshot(http::Request::get("/api/slow").body(Body::empty())?),
        );
        // The slow read holds the only permit once it has started.
        while budget.reads().available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = router
            .clone()
            .oneshot(http::Request::get("/api/fast").body(Body::empty())?)
            .await?;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        release.notify_one();
        assert_eq!(slow.await??.status(), StatusCode::OK);
        let served = router
            .oneshot(http::Request::get("/api/fast").body(Body::empty())?)
            .await?;
        assert_eq!(served.status(), StatusCode::OK);
        Ok(())
    }
}
