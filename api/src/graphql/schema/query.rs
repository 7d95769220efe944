//! Queries: a series, a page of series, a model version, and the platform's health.

use async_graphql::connection::{Connection, Edge, EmptyFields, query};
use async_graphql::{Context, Object};

use anomaly_workers::domain::{SeriesId, Version};
use anomaly_workers::events::{Topic, now_ms};

use super::context::ContextExt;
use super::types::{Health, Model, Prediction, Series, load_error};
use crate::alerts::{newest_alerts, parse_cursor};
use crate::error::ApiError;

/// Largest page of `seriesList`, `anomalies` and `recentPredictions`.
pub const MAX_PAGE: usize = 100;

pub struct QueryRoot;

/// A page size from a client: `first` itself, at most `MAX_PAGE`; a negative one is refused with
/// a coded error (async-graphql's connection helper refuses it without a code).
fn page_size(first: i32) -> async_graphql::Result<i32> {
    if first < 0 {
        return Err(ApiError::bad_request(format!(
            "first must be between 0 and {MAX_PAGE}, not {first}"
        ))
        .into_graphql());
    }
    Ok(first.min(MAX_PAGE as i32))
}

#[Object]
impl QueryRoot {
    /// The registered webhook endpoints, oldest first.
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::webhooks::Webhook>> {
        let endpoints = ctx.webhooks();
        let listed = endpoints.list().await.map_err(ApiError::into_graphql)?;
        Ok(listed.into_iter().map(Into::into).collect())
    }

    /// A webhook endpoint's delivery log, newest first (`first` at most 1000).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: async_graphql::ID,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<super::webhooks::WebhookDelivery>> {
        let endpoints = ctx.webhooks();
        let first = u64::try_from(first).unwrap_or(0);
        let log = endpoints
            .deliveries(&webhook_id, first)
            .await
            .map_err(ApiError::into_graphql)?;
        Ok(log.into_iter().map(Into::into).collect())
    }

    /// A trained series, or null if it has no model.
    async fn series(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<Series>> {
        let series = SeriesId::parse(&id).map_err(|e| ApiError::from(e).into_graphql())?;
        let loader = ctx.models_loader();
        let models = loader.load_one(series.clone()).await.map_err(load_error)?;
        Ok(models.map(|models| Series::with_models(series, models)))
    }

    /// Trained series in id order, a page at a time (`first` at most 100; `after` a cursor).
    async fn series_list(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Connection<String, Series, EmptyFields, EmptyFields>> {
        let state = ctx.services();
        let first = page_size(first)?;
        query(
            after,
            None,
            Some(first),
            None,
            |after: Option<String>, _before: Option<String>, first, _last| async move {
                let first = first.unwrap_or(20).min(MAX_PAGE);
                let after = after
                    .map(|cursor| SeriesId::parse(&cursor))
                    .transpose()
                    .map_err(|e| ApiError::bad_request(format!("after: {}", e.0)).into_graphql())?;
                let mut ids = state
                    .store
                    .list_series(after.as_ref(), first as u64 + 1)
                    .await
                    .map_err(|e| ApiError::from(e).into_graphql())?;
                let has_next = ids.len() > first;
                ids.truncate(first);
                let mut page = Connection::new(after.is_some(), has_next);
                page.edges.extend(
                    ids.into_iter()
                        .map(|id| Edge::new(id.to_string(), Series::new(id))),
                );
                Ok::<_, async_graphql::Error>(page)
            },
        )
        .await
    }

    /// Stored alerts, newest first, of one series or all: `first` at most 100, `after` the
    /// cursor of the last alert of the previous page (older ones follow), `since` a Unix time
    /// in seconds (only alerts raised at or after it).
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        series_id: Option<String>,
        after: Option<String>,
        #[graphql(default = 20)] first: i32,
        since: Option<i64>,
    ) -> async_graphql::Result<Connection<String, Prediction, EmptyFields, EmptyFields>> {
        let state = ctx.services();
        let series = series_id
            .map(|id| SeriesId::parse(&id))
            .transpose()
            .map_err(|e| ApiError::from(e).into_graphql())?;
        let first = page_size(first)?;
        query(
            after,
            None,
            Some(first),
            None,
            |after: Option<String>, _before: Option<String>, first, _last| async move {
                let first = first.unwrap_or(20).min(MAX_PAGE);
                let before = after
                    .map(|cursor| parse_cursor(&cursor))
                    .transpose()
                    .map_err(ApiError::into_graphql)?;
                let (alerts, has_next) = newest_alerts(state, series, before, since, first as u64)
                    .await
                    .map_err(ApiError::into_graphql)?;
                let mut page = Connection::new(before.is_some(), has_next);
                page.edges.extend(
                    alerts
                        .into_iter()
                        .map(|alert| Edge::new(alert.id.to_string(), Prediction::from(alert))),
                );
                Ok::<_, async_graphql::Error>(page)
            },
        )
        .await
    }

    /// The series' latest scored points this gateway has seen, newest first (`first` at most
    /// 100). The gateway remembers the last `LIVE_RECENT_EVENTS` of all series from when the
    /// predictions feed started: at its first `predictions` subscription or this query.
    async fn recent_predictions(
        &self,
        ctx: &Context<'_>,
        series_id: String,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<Prediction>> {
        let state = ctx.services();
        let series = SeriesId::parse(&series_id).map_err(|e| ApiError::from(e).into_graphql())?;
        let first = usize::try_from(page_size(first)?).unwrap_or(0);
        let recent = state
            .feed
            .recent(Topic::Predictions, &series, first)
            .await
            .map_err(|e| {
                ApiError::Unavailable {
                    what: "The event bus",
                    cause: anomaly_workers::cause::Cause::new(e),
                }
                .into_graphql()
            })?;
        Ok(recent.into_iter().map(Prediction::from).collect())
    }

    /// One model version (`version` like `v2`), or null.
    async fn model(
        &self,
        ctx: &Context<'_>,
        series_id: String,
        version: String,
    ) -> async_graphql::Result<Option<Model>> {
        let series = SeriesId::parse(&series_id).map_err(|e| ApiError::from(e).into_graphql())?;
        let version = Version::parse(&version).map_err(|e| ApiError::from(e).into_graphql())?;
        let loader = ctx.models_loader();
        let models = loader
            .load_one(series)
            .await
            .map_err(load_error)?
            .unwrap_or_default();
        Ok(models.into_iter().find(|m| m.version == version).map(Model))
    }

    /// Latencies, throughput, usage and every live role instance.
    async fn health(&self, ctx: &Context<'_>) -> async_graphql::Result<Health> {
        let state = ctx.services();
        let top = ctx.health_top_series();
        let snapshot = state
            .stats
            .snapshot(now_ms(), top)
            .await
            .map_err(|e| ApiError::from(e).into_graphql())?;
        let trained = crate::rest::series_trained(state, snapshot.series_trained).await;
        let mut health = Health::from(snapshot);
        health.series_trained = trained;
        Ok(health)
    }
}
