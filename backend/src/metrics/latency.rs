//! Request latency per route, as Prometheus histograms. Routes are found by
//! axum's `MatchedPath` (the template, so `/api/traces/{trace_id}` is one
//! series) and given a slot the first time they are seen; a slot is a
//! `OnceLock`, so lookups take no lock. Past `SLOTS` routes, or without a
//! matched route (404s), requests count under `route="other"`.

use super::Metrics;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const SLOTS: usize = 64;
pub const OTHER: &str = "other";

#[derive(Default)]
pub struct Histogram {
    /// Per bucket, not cumulative; the last counts what exceeds every bound.
    buckets: [AtomicU64; BUCKETS_SECONDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(super) fn observe(&self, seconds: f64) {
        let bucket = BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the last is `+Inf`, the total), and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|bucket| {
                total += bucket.load(Ordering::Relaxed);
                total
            })
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (cumulative, sum)
    }
}

pub struct RouteLatency {
    routes: [OnceLock<(String, Histogram)>; SLOTS],
    other: Histogram,
}

impl Default for RouteLatency {
    fn default() -> Self {
        Self {
            routes: std::array::from_fn(|_| OnceLock::new()),
            other: Histogram::default(),
        }
    }
}

impl RouteLatency {
    pub(super) fn histogram(&self, route: Option<&str>) -> &Histogram {
        let Some(route) = route else {
            return &self.other;
        };
        for slot in &self.routes {
            // Another request may fill an empty slot first: then look on.
            let (name, histogram) = slot.get_or_init(|| (route.to_owned(), Histogram::default()));
            if name == route {
                return histogram;
            }
        }
        &self.other
    }

    /// Every route seen so far, sorted, then `other`.
    pub fn snapshot(&self) -> Vec<(&str, &Histogram)> {
        let mut routes: Vec<(&str, &Histogram)> = self
            .routes
            .iter()
            .filter_map(OnceLock::get)
            .map(|(name, histogram)| (name.as_str(), histogram))
            .collect();
        routes.sort_by_key(|(name, _)| *name);
        routes.push((OTHER, &self.other));
        routes
    }
}

/// Middleware (`axum::middleware::from_fn_with_state`) timing each request
/// until its response head is ready.
pub async fn record_latency(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .histogram(route.as_deref())
        .observe(start.elapsed().as_secs_f64());
    response
}
