//! The seed's documented REST API, kept working as it was documented (README, "Use it"), and the
//! whole-series mode (`/detect`).

mod anomalies;
mod detect;
mod fit;
mod health;
mod plot;
mod predict;
mod predict_batch;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub use detect::DetectLimits;
pub use health::series_trained;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            crate::openapi::operation("/fit/{series_id}"),
            post(fit::fit),
        )
        .route(
            crate::openapi::operation("/predict/{series_id}"),
            post(predict::predict),
        )
        .route(
            crate::openapi::operation("/predict-batch"),
            post(predict_batch::predict_batch),
        )
        .route(crate::openapi::operation("/plot"), get(plot::plot))
        .route(
            crate::openapi::operation("/healthcheck"),
            get(health::healthcheck),
        )
        .route(crate::openapi::operation("/detect"), post(detect::detect))
        .route(
            crate::openapi::operation("/anomalies"),
            get(anomalies::anomalies),
        )
}
