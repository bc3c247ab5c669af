//! `GET /api/rates?service=&start=&end=`: the stage rates over a time range
//! (unix nanoseconds, default: everything up to now).

use super::ApiError;
use crate::rates::{self, RatesReport};
use crate::stage::minute_of;
use crate::store::{self, Store};
use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct RatesParams {
    service: Option<String>,
    start: Option<u64>,
    end: Option<u64>,
}

#[derive(Serialize)]
pub struct RatesBody {
    start: u64,
    end: u64,
    #[serde(flatten)]
    report: RatesReport,
}

pub async fn rates(
    State(store): State<Store>,
    Query(params): Query<RatesParams>,
) -> Result<Json<RatesBody>, ApiError> {
    let start = params.start.unwrap_or(0);
    let end = params.end.unwrap_or(u64::MAX / 2);
    if start > end {
        return Err(ApiError::BadParameter("start must not be after end".into()));
    }
    let service = params.service.filter(|s| !s.is_empty());
    let rows = store
        .read(move |conn| {
            store::stage_counts(conn, service.as_deref(), minute_of(start), minute_of(end))
        })
        .await?;
    Ok(Json(RatesBody {
        start,
        end,
        report: rates::report(&rows),
    }))
}
