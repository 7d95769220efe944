//! Stored alerts as both APIs read them: cursors (event ids) from clients, and pages newest
//! first (`GET /anomalies` and the `anomalies` query page the same way).

use anomaly_workers::domain::SeriesId;
use anomaly_workers::events::Scored;
use anomaly_workers::store::{AlertOrder, AlertQuery};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// A cursor given back by the API (an event id).
pub fn parse_cursor(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::bad_request(format!(
            "{raw:?} is not a cursor: use the `cursor` of an event"
        ))
    })
}

/// A page of stored alerts, newest first: at most `limit` older than `before`, raised at or after
/// `since` (Unix seconds), and whether older ones remain.
pub async fn newest_alerts(
    state: &AppState,
    series: Option<SeriesId>,
    before: Option<Uuid>,
    since: Option<i64>,
    limit: u64,
) -> Result<(Vec<Scored>, bool), ApiError> {
    let mut alerts = state
        .store
        .alerts(&AlertQuery {
            series,
            order: AlertOrder::NewestBefore(before),
            since_ms: since.map(|s| s.saturating_mul(1000)),
            limit: limit + 1,
        })
        .await?;
    let more = alerts.len() as u64 > limit;
    alerts.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((alerts, more))
}
