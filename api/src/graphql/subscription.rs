//! Subscriptions fed from the event bus: each subscriber follows the topic from now on. A slow
//! subscriber's backlog is bounded by the bus; events it missed are skipped (and logged), never
//! queued without limit.

use async_graphql::futures_util::Stream;
use async_graphql::{Context, Subscription};

use anomaly_workers::bus::{BusError, Subscription as BusSubscription};
use anomaly_workers::domain::SeriesId;
use anomaly_workers::events::{Event, Topic};

use super::types::Prediction;
use crate::error::ApiError;
use crate::state::AppState;

pub struct SubscriptionRoot;

/// Counts an open subscription in `anomaly_subscriptions_open` for as long as it lives.
struct OpenSubscription(&'static str);

impl OpenSubscription {
    fn new(topic: Topic) -> Self {
        let field = match topic {
            Topic::Anomalies => "anomalies",
            _ => "predictions",
        };
        metrics::gauge!("anomaly_subscriptions_open", "field" => field).increment(1.0);
        Self(field)
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        metrics::gauge!("anomaly_subscriptions_open", "field" => self.0).decrement(1.0);
    }
}

/// The scored points of `topic` that pass `keep`, until the bus ends.
async fn scored_stream(
    ctx: &Context<'_>,
    topic: Topic,
    keep: Box<dyn Fn(&Prediction) -> bool + Send + Sync>,
) -> async_graphql::Result<impl Stream<Item = Prediction> + use<>> {
    let state = ctx.data_unchecked::<AppState>();
    let subscription = state.events.follow(topic).await.map_err(|e| {
        ApiError::Unavailable {
            what: "The event bus",
            cause: e.to_string(),
        }
        .into_graphql()
    })?;
    let open = OpenSubscription::new(topic);
    Ok(async_graphql::futures_util::stream::unfold(
        (subscription, keep, open),
        |(mut subscription, keep, open): (Box<dyn BusSubscription>, _, OpenSubscription)| async move {
            loop {
                match subscription.next().await {
                    Ok(Some(delivery)) => {
                        if let Event::Anomaly(scored) | Event::Prediction(scored) = delivery.event {
                            let prediction = Prediction::from(scored);
                            if keep(&prediction) {
                                return Some((prediction, (subscription, keep, open)));
                            }
                        }
                    }
                    Ok(None) => return None,
                    Err(BusError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow subscriber skipped events");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "subscription ended");
                        return None;
                    }
                }
            }
        },
    ))
}

fn parse_series(raw: Option<String>) -> async_graphql::Result<Option<SeriesId>> {
    raw.map(|id| SeriesId::parse(&id))
        .transpose()
        .map_err(|e| ApiError::from(e).into_graphql())
}

#[Subscription]
impl SubscriptionRoot {
    /// Alerts as they happen, of one series or all; `minScore` drops weaker ones.
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        series_id: Option<String>,
        min_score: Option<f64>,
    ) -> async_graphql::Result<impl Stream<Item = Prediction> + use<>> {
        let series = parse_series(series_id)?.map(|s| s.to_string());
        let keep = move |p: &Prediction| {
            series.as_ref().is_none_or(|s| *s == p.series_id)
                && min_score.is_none_or(|min| p.score >= min)
        };
        scored_stream(ctx, Topic::Anomalies, Box::new(keep)).await
    }

    /// Every scored point of one series as it happens.
    async fn predictions(
        &self,
        ctx: &Context<'_>,
        series_id: String,
    ) -> async_graphql::Result<impl Stream<Item = Prediction> + use<>> {
        let series = parse_series(Some(series_id))?.map(|s| s.to_string());
        let keep = move |p: &Prediction| series.as_ref().is_none_or(|s| *s == p.series_id);
        scored_stream(ctx, Topic::Predictions, Box::new(keep)).await
    }
}
