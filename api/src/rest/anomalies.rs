//! `GET /anomalies?series_id=&limit=&before=&since=`: stored alerts for curl users, newest first.
//! `next` is the cursor to pass as `before` for the page of older ones (null on the last page).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use anomaly_workers::domain::SeriesId;
use anomaly_workers::events::{DetectorName, Scored};

use crate::alerts::{newest_alerts, parse_cursor};
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::state::AppState;

/// The largest page.
pub const MAX_LIMIT: u64 = 1_000;
const DEFAULT_LIMIT: u64 = 20;

#[derive(Deserialize)]
pub struct AnomaliesQuery {
    series_id: Option<String>,
    limit: Option<u64>,
    /// A cursor: only alerts older than it.
    before: Option<String>,
    /// Unix seconds: only alerts raised at or after it.
    since: Option<i64>,
}

#[derive(Serialize)]
pub struct StoredAlert {
    cursor: String,
    series_id: String,
    model_version: String,
    detector: DetectorName,
    timestamp: i64,
    value: f64,
    score: f64,
    expected: f64,
    lower: Option<f64>,
    upper: Option<f64>,
    /// When the alert was raised, in milliseconds since the Unix epoch.
    raised_at_ms: i64,
}

impl From<Scored> for StoredAlert {
    fn from(alert: Scored) -> Self {
        Self {
            cursor: alert.id.to_string(),
            series_id: alert.series_id.to_string(),
            model_version: alert.model_version.to_string(),
            detector: alert.detector,
            timestamp: alert.point.timestamp,
            value: alert.point.value,
            score: alert.verdict.score,
            expected: alert.verdict.expected,
            lower: alert.verdict.lower,
            upper: alert.verdict.upper,
            raised_at_ms: alert.at_ms,
        }
    }
}

#[derive(Serialize)]
pub struct AlertPage {
    anomalies: Vec<StoredAlert>,
    next: Option<String>,
}

pub async fn anomalies(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<AnomaliesQuery>,
) -> Result<Json<AlertPage>, ApiError> {
    let series = query
        .series_id
        .as_deref()
        .map(SeriesId::parse)
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let before = query.before.as_deref().map(parse_cursor).transpose()?;
    let (alerts, more) = newest_alerts(&state, series, before, query.since, limit).await?;
    let next = more
        .then(|| alerts.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(Json(AlertPage {
        anomalies: alerts.into_iter().map(StoredAlert::from).collect(),
        next,
    }))
}
