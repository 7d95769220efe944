//! Mutations: fit, predict, a batch predict that scores many points of one series in order, and
//! the webhook endpoints'.

use async_graphql::{Context, ID, Object};

use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{SeriesId, TrainingSet};

use super::context::ContextExt;
use super::types::{AlertsInput, DetectorInput, FitResult, PointInput, Prediction};
use crate::error::ApiError;
use crate::state::AppState;

/// Most points one `predictBatch` may score.
const MAX_BATCH_POINTS: usize = 10_000;

pub struct MutationRoot;

/// The `predict` field: its resolver's body, which a prepared `predict` (`super::prepared`) runs
/// too.
pub(super) async fn predict_field(
    state: &AppState,
    series_id: &str,
    point: PointInput,
) -> async_graphql::Result<Prediction> {
    let series = self::series_id(series_id)?;
    let point = point.parse().map_err(ApiError::into_graphql)?;
    let prediction = state
        .scoring
        .predict(&series, point)
        .await
        .map_err(|e| ApiError::from(e).into_graphql())?;
    Ok(prediction.into())
}

fn series_id(raw: &str) -> async_graphql::Result<SeriesId> {
    SeriesId::parse(raw).map_err(|e| ApiError::from(e).into_graphql())
}

#[Object]
impl MutationRoot {
    /// Registers a webhook endpoint: every alert is POSTed to `url`, signed (Standard
    /// Webhooks) with `secret` (`whsec_<base64>`; made up when left out, and shown only here).
    async fn register_webhook(
        &self,
        ctx: &Context<'_>,
        url: String,
        secret: Option<String>,
    ) -> async_graphql::Result<super::webhooks::RegisteredWebhook> {
        ctx.webhooks()
            .register(&url, secret)
            .await
            .map(Into::into)
            .map_err(ApiError::into_graphql)
    }

    /// Removes a webhook endpoint and its delivery log.
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        ctx.webhooks()
            .remove(&id)
            .await
            .map(|()| true)
            .map_err(ApiError::into_graphql)
    }

    /// Sends a delivery again now (same message id, a new signature); its attempt is logged.
    async fn replay_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        delivery_id: ID,
    ) -> async_graphql::Result<super::webhooks::WebhookDelivery> {
        ctx.webhooks()
            .replay(&webhook_id, &delivery_id)
            .await
            .map(Into::into)
            .map_err(ApiError::into_graphql)
    }

    /// Trains the series' next model version on `points` (at least 3, not all equal).
    async fn fit(
        &self,
        ctx: &Context<'_>,
        series_id: String,
        points: Vec<PointInput>,
        detector: Option<DetectorInput>,
        alerts: Option<AlertsInput>,
    ) -> async_graphql::Result<FitResult> {
        let state = ctx.services();
        let run = async {
            let series = SeriesId::parse(&series_id)?;
            let points = points
                .into_iter()
                .map(PointInput::parse)
                .collect::<Result<Vec<_>, _>>()?;
            let training = TrainingSet::parse(points)?;
            let spec = ModelSpec {
                detector: detector
                    .map(DetectorInput::parse)
                    .transpose()?
                    .unwrap_or_default(),
                alerts: alerts.map(AlertsInput::parse).unwrap_or_default(),
            };
            let outcome = state.training.fit(series, training, spec).await?;
            Ok::<_, ApiError>(FitResult {
                series_id: outcome.series_id.to_string(),
                version: outcome.version.to_string(),
                points_used: outcome.points_used,
                detector: outcome.detector,
            })
        };
        run.await.map_err(ApiError::into_graphql)
    }

    /// Scores one point against the series' newest model (and learns from it).
    async fn predict(
        &self,
        ctx: &Context<'_>,
        series_id: String,
        point: PointInput,
    ) -> async_graphql::Result<Prediction> {
        predict_field(ctx.services(), &series_id, point).await
    }

    /// Scores `points` of one series in the order given, each learning from the ones before.
    async fn predict_batch(
        &self,
        ctx: &Context<'_>,
        series_id: String,
        points: Vec<PointInput>,
    ) -> async_graphql::Result<Vec<Prediction>> {
        let state = ctx.services();
        let series = self::series_id(&series_id)?;
        if points.len() > MAX_BATCH_POINTS {
            return Err(ApiError::bad_request(format!(
                "At most {MAX_BATCH_POINTS} points per batch, got {}",
                points.len()
            ))
            .into_graphql());
        }
        let points = points
            .into_iter()
            .map(PointInput::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::into_graphql)?;
        let mut scored = Vec::with_capacity(points.len());
        for point in points {
            let prediction = state
                .scoring
                .predict(&series, point)
                .await
                .map_err(|e| ApiError::from(e).into_graphql())?;
            scored.push(prediction.into());
        }
        Ok(scored)
    }
}
