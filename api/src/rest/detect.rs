//! `POST /detect`: whole-series mode. Fits on the leading points, scores the rest in order as the
//! predictor would (online learning and alert suppression included), and stores nothing.

use axum::Json;
use serde::{Deserialize, Serialize};

use anomaly_workers::live::{default_training_points, score_series};

use super::fit::FitBody;
use crate::error::ApiError;
use crate::extract::JsonBody;

#[derive(Deserialize)]
pub struct DetectBody {
    #[serde(flatten)]
    model: FitBody,
    /// How many leading points train the model; NAB's 15% (at most 750) when absent.
    training_points: Option<usize>,
}

#[derive(Serialize)]
pub struct DetectAnswer {
    detector: &'static str,
    training_points: usize,
    anomalies: usize,
    points: Vec<ScoredPoint>,
}

#[derive(Serialize)]
struct ScoredPoint {
    timestamp: i64,
    value: f64,
    anomaly: bool,
    alert: bool,
    score: f64,
    expected: f64,
    lower: Option<f64>,
    upper: Option<f64>,
}

pub async fn detect(JsonBody(body): JsonBody<DetectBody>) -> Result<Json<DetectAnswer>, ApiError> {
    let (points, spec) = body.model.into_parts()?;
    if points.is_empty() {
        return Err(ApiError::bad_request("No data points provided"));
    }
    let training_points = body
        .training_points
        .unwrap_or_else(|| default_training_points(points.len()));
    let detector = spec.detector.name();
    // Scoring a long series is CPU work: keep it off the async workers.
    let (points, observed) = tokio::task::spawn_blocking(move || {
        let observed = score_series(&spec, &points, training_points);
        (points, observed)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("whole-series task failed: {e}")))?;
    let observed = observed?;
    let scored: Vec<ScoredPoint> = points[training_points..]
        .iter()
        .zip(observed)
        .map(|(p, o)| ScoredPoint {
            timestamp: p.timestamp,
            value: p.value,
            anomaly: o.verdict.anomaly,
            alert: o.alert,
            score: o.verdict.score,
            expected: o.verdict.expected,
            lower: o.verdict.lower,
            upper: o.verdict.upper,
        })
        .collect();
    Ok(Json(DetectAnswer {
        detector,
        training_points,
        anomalies: scored.iter().filter(|p| p.anomaly).count(),
        points: scored,
    }))
}
