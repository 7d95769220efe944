//! `GET /plot?series_id=...&version=...`: the training points of one model version as a PNG.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;

use anomaly_workers::cause::Cause;
use anomaly_workers::domain::{SeriesId, Version};

use crate::error::{ApiError, NO_TRAINING_DATA};
use crate::extract::QueryParams;
use crate::plot;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PlotQuery {
    series_id: Option<String>,
    version: Option<String>,
}

pub async fn plot(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<PlotQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let (Some(series_id), Some(version)) = (query.series_id, query.version) else {
        return Err(ApiError::bad_request(
            "Query parameters series_id and version are required",
        ));
    };
    let series = SeriesId::parse(&series_id)?;
    let version = Version::parse(&version)?;
    let points = state.store.training_points(&series, version).await?;
    if points.is_empty() {
        return Err(ApiError::NotFound(NO_TRAINING_DATA));
    }
    let title = plot::title(&series, version);
    let png = tokio::task::spawn_blocking(move || plot::render(&title, &points))
        .await
        .map_err(|e| ApiError::Internal(Cause::context("plot task failed", e)))?
        .map_err(|e| ApiError::Internal(Cause::context("plot rendering failed", e)))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png))
}
