//! `GET /api/rates?service=&start=&end=`: the stage rates over a time range
//! (unix nanoseconds, default: everything up to now).

use super::ApiError;
use super::params::{self, Params};
use crate::rates::{self, RatesReport};
use crate::stage::minute_of;
use crate::storage::Storage;
use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;

#[derive(Serialize)]
pub struct RatesBody {
    start: u64,
    end: u64,
    #[serde(flatten)]
    report: RatesReport,
}

pub async fn rates(
    State(store): State<Storage>,
    RawQuery(raw): RawQuery,
) -> Result<Json<RatesBody>, ApiError> {
    let params = Params::parse(raw.as_deref(), &["service", "start", "end"])?;
    let (start, end) = params::window(&params)?;
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(u64::MAX / 2));
    let service: Option<String> = params.get("service")?;
    let rows = store
        .stage_counts(service, minute_of(start), minute_of(end))
        .await?;
    Ok(Json(RatesBody {
        start,
        end,
        report: rates::report(&rows),
    }))
}
