//! The HTTP surface the distributed trainer and predictor offer the gateway: the same calls as
//! the `Training` and `Scoring` traits, with errors carried by kind so the gateway's client
//! turns them back into the same variants (and the same answers to users) as in-process calls.
//! The gateway scores points in batches (`PREDICT_BATCH_PATH`); the one-point route stays for
//! gateways of earlier releases.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use anomaly_workers::bus::BusError;
use anomaly_workers::cause::Cause;
use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{InvalidInput, Point, SeriesId, TrainingSet};
use anomaly_workers::predictor::{PredictError, Prediction, Scoring};
use anomaly_workers::store::StoreError;
use anomaly_workers::trainer::{FitOutcome, TrainError, Training};

pub const FIT_PATH: &str = "/internal/fit";
pub const PREDICT_PATH: &str = "/internal/predict";
/// Many points, of any series, scored in one call: how the gateway reaches a predictor.
pub const PREDICT_BATCH_PATH: &str = "/internal/predict-batch";
/// Points one batch call carries at most.
pub const MAX_PREDICT_BATCH: usize = 128;

/// One point of a batch call, with the trace context of the request it came from.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchItem {
    pub series_id: SeriesId,
    pub point: Point,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// What one point of a batch call came to, in the order the points were sent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchAnswer {
    Scored(Prediction),
    Failed(Failure),
}

/// A fit as the gateway sends it to a trainer.
#[derive(Debug, Serialize, Deserialize)]
pub struct FitRequest {
    pub points: Vec<Point>,
    pub spec: ModelSpec,
}

/// Why a call failed, by kind, so the caller can rebuild the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Invalid,
    ModelNotFound,
    DatabaseUnavailable,
    DatabaseCorrupt,
    BusUnavailable,
    Unreachable,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    fn status(&self) -> StatusCode {
        match self.kind {
            FailureKind::Invalid => StatusCode::BAD_REQUEST,
            FailureKind::ModelNotFound => StatusCode::NOT_FOUND,
            FailureKind::DatabaseCorrupt => StatusCode::INTERNAL_SERVER_ERROR,
            FailureKind::DatabaseUnavailable
            | FailureKind::BusUnavailable
            | FailureKind::Unreachable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn from_store(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => Self {
                kind: FailureKind::DatabaseUnavailable,
                message: cause.to_string(),
            },
            StoreError::Corrupt(cause) => Self {
                kind: FailureKind::DatabaseCorrupt,
                message: cause.to_string(),
            },
        }
    }

    /// The failure the remote role reported, as the error it was there (its cause arrives as
    /// text: the error value stayed in the other process).
    pub fn into_train_error(self) -> TrainError {
        let cause = Cause::message(self.message.clone());
        match self.kind {
            FailureKind::Invalid => TrainError::Invalid(InvalidInput(self.message)),
            FailureKind::BusUnavailable => TrainError::Bus(BusError::Unavailable(cause)),
            FailureKind::DatabaseUnavailable => TrainError::Store(StoreError::Unavailable(cause)),
            FailureKind::DatabaseCorrupt => TrainError::Store(StoreError::Corrupt(cause)),
            FailureKind::ModelNotFound | FailureKind::Unreachable => TrainError::Unreachable(cause),
        }
    }

    pub fn into_predict_error(self, series: &SeriesId) -> PredictError {
        let cause = Cause::message(self.message);
        match self.kind {
            FailureKind::ModelNotFound => PredictError::ModelNotFound(series.clone()),
            FailureKind::DatabaseUnavailable => PredictError::Store(StoreError::Unavailable(cause)),
            FailureKind::DatabaseCorrupt => PredictError::Store(StoreError::Corrupt(cause)),
            FailureKind::BusUnavailable => PredictError::Bus(BusError::Unavailable(cause)),
            _ => PredictError::Unreachable(cause),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(kind = ?self.kind, message = %self.message, "internal call failed");
        }
        (self.status(), Json(self)).into_response()
    }
}

impl From<TrainError> for Failure {
    fn from(err: TrainError) -> Self {
        match err {
            TrainError::Invalid(invalid) => Self {
                kind: FailureKind::Invalid,
                message: invalid.0,
            },
            TrainError::Store(store) => Self::from_store(store),
            TrainError::Bus(bus) => Self {
                kind: FailureKind::BusUnavailable,
                message: bus.to_string(),
            },
            TrainError::Unreachable(cause) => Self {
                kind: FailureKind::Unreachable,
                message: cause.to_string(),
            },
        }
    }
}

impl From<PredictError> for Failure {
    fn from(err: PredictError) -> Self {
        match err {
            PredictError::ModelNotFound(series) => Self {
                kind: FailureKind::ModelNotFound,
                message: format!("no model is trained for series {series}"),
            },
            PredictError::Store(store) => Self::from_store(store),
            PredictError::Unreachable(cause) => Self {
                kind: FailureKind::Unreachable,
                message: cause.to_string(),
            },
            PredictError::Bus(bus) => Self {
                kind: FailureKind::BusUnavailable,
                message: bus.to_string(),
            },
        }
    }
}

impl From<InvalidInput> for Failure {
    fn from(err: InvalidInput) -> Self {
        Self {
            kind: FailureKind::Invalid,
            message: err.0,
        }
    }
}

async fn alive() -> &'static str {
    "ok"
}

/// The trainer role's routes.
pub fn trainer_routes(training: Arc<dyn Training>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(&format!("{FIT_PATH}/{{series_id}}"), post(fit))
        .route("/internal/alive", get(alive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(crate::extract::BodyLimit(max_body_bytes)))
        .with_state(training)
}

async fn fit(
    State(training): State<Arc<dyn Training>>,
    Path(series): Path<String>,
    Json(request): Json<FitRequest>,
) -> Result<Json<FitOutcome>, Failure> {
    let series = SeriesId::parse(&series)?;
    let training_set = TrainingSet::parse(request.points)?;
    Ok(Json(
        training.fit(series, training_set, request.spec).await?,
    ))
}

/// The predictor role's routes.
pub fn predictor_routes(scoring: Arc<dyn Scoring>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(&format!("{PREDICT_PATH}/{{series_id}}"), post(predict))
        .route(PREDICT_BATCH_PATH, post(predict_batch))
        .route("/internal/alive", get(alive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(crate::extract::BodyLimit(max_body_bytes)))
        .with_state(scoring)
}

async fn predict(
    State(scoring): State<Arc<dyn Scoring>>,
    Path(series): Path<String>,
    Json(point): Json<Point>,
) -> Result<Json<Prediction>, Failure> {
    let series = SeriesId::parse(&series)?;
    let point = Point::parse(point.timestamp, point.value)?;
    Ok(Json(scoring.predict(&series, point).await?))
}

/// Scores a batch: every point as `predict` would, concurrently (a cached series' points in the
/// order sent; the batch holds only points that were in flight together, which had no order),
/// each in a span continuing the trace of the request it came from.
async fn predict_batch(
    State(scoring): State<Arc<dyn Scoring>>,
    Json(items): Json<Vec<BatchItem>>,
) -> Result<Json<Vec<BatchAnswer>>, Failure> {
    if items.len() > MAX_PREDICT_BATCH {
        return Err(Failure {
            kind: FailureKind::Invalid,
            message: format!(
                "a batch carries at most {MAX_PREDICT_BATCH} points, not {}",
                items.len()
            ),
        });
    }
    let scoring = &scoring;
    let answers = futures_util::future::join_all(items.into_iter().map(|item| async move {
        let score = async {
            let point = Point::parse(item.point.timestamp, item.point.value)?;
            Ok::<_, Failure>(scoring.predict(&item.series_id, point).await?)
        };
        let answer = match item.traceparent {
            None => score.await,
            Some(traceparent) => {
                let span = tracing::info_span!("predict", series = %item.series_id);
                crate::telemetry::continue_trace_from(&span, &traceparent, item.tracestate);
                tracing::Instrument::instrument(score, span).await
            }
        };
        match answer {
            Ok(prediction) => BatchAnswer::Scored(prediction),
            Err(failure) => BatchAnswer::Failed(failure),
        }
    }))
    .await;
    Ok(Json(answers))
}
