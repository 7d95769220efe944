//! `POST /predict-batch`: many points, of any series, scored in one request, in the order given
//! (each point of a series learns from the ones before it). Answers `predict`'s answer for each
//! point, in order; the first point that cannot be scored ends the request with its error (the
//! points before it were scored).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use anomaly_workers::domain::{Point, SeriesId};

use super::predict::PredictAnswer;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// Most points one request may carry.
pub const MAX_BATCH_POINTS: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    points: Vec<BatchPoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPoint {
    series_id: String,
    timestamp: i64,
    value: f64,
}

#[derive(Serialize)]
pub struct BatchAnswer {
    predictions: Vec<PredictAnswer>,
}

pub async fn predict_batch(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Json<BatchAnswer>, ApiError> {
    if body.points.len() > MAX_BATCH_POINTS {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_BATCH_POINTS} points per batch, got {}",
            body.points.len()
        )));
    }
    // Every point is checked before any is scored.
    let points = body
        .points
        .into_iter()
        .map(|p| {
            Ok((
                SeriesId::parse(&p.series_id)?,
                Point::parse(p.timestamp, p.value)?,
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let mut predictions = Vec::with_capacity(points.len());
    for (series, point) in points {
        let prediction = state.scoring.predict(&series, point).await?;
        predictions.push(prediction.into());
    }
    Ok(Json(BatchAnswer { predictions }))
}
