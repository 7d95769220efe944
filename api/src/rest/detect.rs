//! `POST /detect`: whole-series mode. Fits on the leading points, scores the rest in order as the
//! predictor would (online learning and alert suppression included), and stores nothing. A
//! request is priced first (points × the detector's per-point work) and refused over
//! `DETECT_MAX_COST`; one that still runs past `DETECT_TIMEOUT_SECS` is answered 408.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use anomaly_workers::live::{default_training_points, score_series};

use super::fit::FitBody;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// What one `/detect` request may spend.
#[derive(Debug, Clone, Copy)]
pub struct DetectLimits {
    /// Largest points × per-point work (`DETECT_MAX_COST`).
    pub max_cost: u64,
    /// Longest it may run (`DETECT_TIMEOUT_SECS`).
    pub timeout: Duration,
}

impl Default for DetectLimits {
    fn default() -> Self {
        Self {
            max_cost: 2_000_000_000,
            timeout: Duration::from_secs(30),
        }
    }
}

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

pub async fn detect(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DetectBody>,
) -> Result<Json<DetectAnswer>, ApiError> {
    let limits = state.config.detect;
    let (points, spec) = body.model.into_parts()?;
    if points.is_empty() {
        return Err(ApiError::bad_request("No data points provided"));
    }
    let per_point = spec.detector.point_cost();
    let cost = (points.len() as u64).saturating_mul(per_point);
    if cost > limits.max_cost {
        return Err(ApiError::bad_request(format!(
            "This detection would cost {cost} ({} points × {per_point} for {}), over the \
             limit of {} (DETECT_MAX_COST): send fewer points or a smaller window",
            points.len(),
            spec.detector.name(),
            limits.max_cost
        )));
    }
    let training_points = body
        .training_points
        .unwrap_or_else(|| default_training_points(points.len()));
    let detector = spec.detector.name();
    // Scoring a long series is CPU work: keep it off the async workers.
    let task = tokio::task::spawn_blocking(move || {
        let observed = score_series(&spec, &points, training_points);
        (points, observed)
    });
    let (points, observed) = tokio::time::timeout(limits.timeout, task)
        .await
        .map_err(|_| {
            ApiError::RequestTimeout(format!(
                "The detection did not finish within {} s (DETECT_TIMEOUT_SECS)",
                limits.timeout.as_secs_f64()
            ))
        })?
        .map_err(|e| {
            ApiError::Internal(anomaly_workers::cause::Cause::context(
                "whole-series task failed",
                e,
            ))
        })?;
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
