//! `POST /predict/{series_id}`: the seed's answer (`model_version`, `anomaly`) first, then the
//! evidence (score, expected value and band, detector).

use axum::extract::State;
use serde::Serialize;

use anomaly_workers::domain::{Point, SeriesId, Version};
use anomaly_workers::events::DetectorName;
use anomaly_workers::predictor::Prediction;

use super::fit::PointBody;
use crate::answer::JsonAnswer;
use crate::error::ApiError;
use crate::extract::{JsonBody, SeriesPath};
use crate::state::AppState;

#[derive(Serialize)]
pub struct PredictAnswer {
    model_version: Version,
    anomaly: bool,
    score: f64,
    expected: f64,
    lower: Option<f64>,
    upper: Option<f64>,
    detector: DetectorName,
    alert: bool,
    series_id: SeriesId,
    timestamp: i64,
    value: f64,
}

pub async fn predict(
    State(state): State<AppState>,
    SeriesPath(series): SeriesPath,
    JsonBody(body): JsonBody<PointBody>,
) -> Result<JsonAnswer<PredictAnswer>, ApiError> {
    let point = Point::parse(body.timestamp, body.value)?;
    let prediction = state.scoring.predict(&series, point).await?;
    Ok(JsonAnswer(PredictAnswer::from(prediction)))
}

impl From<Prediction> for PredictAnswer {
    fn from(prediction: Prediction) -> Self {
        let verdict = prediction.verdict;
        PredictAnswer {
            model_version: prediction.model_version,
            anomaly: verdict.anomaly,
            score: verdict.score,
            expected: verdict.expected,
            lower: verdict.lower,
            upper: verdict.upper,
            detector: prediction.detector,
            alert: prediction.alert,
            series_id: prediction.series_id,
            timestamp: prediction.point.timestamp,
            value: prediction.point.value,
        }
    }
}
