//! `GET /api/rates?service=&start=&end=`: the stage rates over a time range
//! (unix nanoseconds, default: everything up to now), with the upstream
//! loss estimated from the orphans after the server's grace period.

use super::ApiError;
use super::params::{self, Params};
use crate::rates::{self, RatesReport};
use crate::stage::minute_of;
use crate::storage::Storage;
use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use std::time::Duration;

/// What the handler reads from: the store, and how long a parent is
/// waited for (`orphan_grace`).
#[derive(Clone)]
pub struct RatesState {
    pub store: Storage,
    pub orphan_grace: Duration,
}

#[derive(Serialize)]
pub struct RatesBody {
    start: u64,
    end: u64,
    #[serde(flatten)]
    report: RatesReport,
}

pub async fn rates(
    State(RatesState {
        store,
        orphan_grace,
    }): State<RatesState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RatesBody>, ApiError> {
    let params = Params::parse(raw.as_deref(), &["service", "start", "end"])?;
    let (start, end) = params::window(&params)?;
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(u64::MAX / 2));
    let service: Option<String> = params.get("service")?;
    let (first, last) = (minute_of(start), minute_of(end));
    let rows = store.stage_counts(service.clone(), first, last).await?;
    let orphans = store.orphans(service, first, last, orphan_grace).await?;
    Ok(Json(RatesBody {
        start,
        end,
        report: rates::with_orphans(rates::report(&rows), &orphans),
    }))
}
