//! `predictions`: every scored point of one series, live only (scored points are not stored).

use async_graphql::{Context, Subscription};

use anomaly_workers::events::Topic;

use super::live::{self, Follow, Results, parse_series};

#[derive(Default)]
pub struct PredictionsSubscription;

#[Subscription]
impl PredictionsSubscription {
    /// Every scored point of one series as it happens.
    async fn predictions(
        &self,
        ctx: &Context<'_>,
        series_id: String,
    ) -> async_graphql::Result<Results> {
        live::subscribe(ctx, || {
            Ok(Follow {
                field: "predictions",
                topic: Topic::Predictions,
                series: parse_series(Some(series_id))?,
                after: None,
                keep: Box::new(|_| true),
            })
        })
        .await
    }
}
