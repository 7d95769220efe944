//! `anomalies`: alerts as they happen, of one series or all, above a score if asked, resumable
//! from a cursor (the alert store keeps this topic's events, so `after` can replay them).

use async_graphql::{Context, Subscription};

use anomaly_workers::events::Topic;

use super::live::{self, Follow, Results, parse_series};
use crate::alerts::parse_cursor;
use crate::error::ApiError;

#[derive(Default)]
pub struct AnomaliesSubscription;

#[Subscription]
impl AnomaliesSubscription {
    /// Alerts as they happen, of one series or all; `minScore` drops weaker ones. With `after`
    /// (an event's `cursor`), the alerts raised after it are replayed first, oldest first, then
    /// live ones follow with none twice. A subscriber that falls behind gets an error coded
    /// `LAGGED` (with `missed`), and its subscription carries on.
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        series_id: Option<String>,
        min_score: Option<f64>,
        after: Option<String>,
    ) -> async_graphql::Result<Results> {
        live::subscribe(ctx, || {
            let series = parse_series(series_id)?;
            let after = after
                .map(|raw| parse_cursor(&raw))
                .transpose()
                .map_err(ApiError::into_graphql)?;
            Ok(Follow {
                field: "anomalies",
                topic: Topic::Anomalies,
                series,
                after,
                keep: Box::new(move |e| min_score.is_none_or(|min| e.verdict.score >= min)),
            })
        })
        .await
    }
}
