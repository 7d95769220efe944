//! `POST /fit/{series_id}`: both body shapes the seed documented, plus optional detector and
//! alert options.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use anomaly_workers::detector::{AlertOptions, DetectorSpec, ModelSpec};
use anomaly_workers::domain::{Point, TrainingSet};

use crate::error::ApiError;
use crate::extract::{JsonBody, SeriesPath};
use crate::state::AppState;

/// A list of points in either of the seed's shapes: `data` objects or parallel arrays.
#[derive(Deserialize)]
pub struct PointsBody {
    data: Option<Vec<PointBody>>,
    timestamps: Option<Vec<i64>>,
    values: Option<Vec<f64>>,
}

#[derive(Deserialize)]
pub struct PointBody {
    pub timestamp: i64,
    pub value: f64,
}

impl PointsBody {
    /// The points, each parsed (finite values); empty when none were sent.
    pub fn points(self) -> Result<Vec<Point>, ApiError> {
        let raw: Vec<(i64, f64)> = match (self.data, self.timestamps, self.values) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ApiError::bad_request(
                    "Send either data or timestamps and values, not both",
                ));
            }
            (Some(data), None, None) => data.into_iter().map(|p| (p.timestamp, p.value)).collect(),
            (None, Some(timestamps), Some(values)) => {
                if timestamps.len() != values.len() {
                    return Err(ApiError::bad_request(format!(
                        "timestamps and values must have the same length (got {} and {})",
                        timestamps.len(),
                        values.len()
                    )));
                }
                timestamps.into_iter().zip(values).collect()
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(ApiError::bad_request(
                    "timestamps and values must be sent together",
                ));
            }
            (None, None, None) => Vec::new(),
        };
        Ok(raw
            .into_iter()
            .map(|(t, v)| Point::parse(t, v))
            .collect::<Result<_, _>>()?)
    }
}

/// Points plus what to build from them: the body of `fit`, and the core of `detect`'s.
#[derive(Deserialize)]
pub struct FitBody {
    #[serde(flatten)]
    points: PointsBody,
    #[serde(default)]
    detector: DetectorSpec,
    #[serde(default)]
    alerts: AlertOptions,
}

impl FitBody {
    /// The parsed points and the model spec.
    pub fn into_parts(self) -> Result<(Vec<Point>, ModelSpec), ApiError> {
        let spec = ModelSpec {
            detector: self.detector,
            alerts: self.alerts,
        };
        Ok((self.points.points()?, spec))
    }
}

#[derive(Serialize)]
pub struct FitAnswer {
    series_id: String,
    version: String,
    points_used: u32,
    detector: String,
}

pub async fn fit(
    State(state): State<AppState>,
    SeriesPath(series): SeriesPath,
    JsonBody(body): JsonBody<FitBody>,
) -> Result<Json<FitAnswer>, ApiError> {
    let (points, spec) = body.into_parts()?;
    let training = TrainingSet::parse(points)?;
    let outcome = state.training.fit(series, training, spec).await?;
    Ok(Json(FitAnswer {
        series_id: outcome.series_id.to_string(),
        version: outcome.version.to_string(),
        points_used: outcome.points_used,
        detector: outcome.detector,
    }))
}
