//! The webhook endpoints over REST: register (`POST /webhooks`, the secret shown once), list,
//! remove, read an endpoint's delivery log and replay a delivery (sent again at once, same
//! `webhook-id`, its attempt added to the log and answered).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use anomaly_workers::store::Delivery;

use super::endpoints::{Endpoints, Registered};
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams};

pub fn routes(endpoints: Arc<Endpoints>) -> Router {
    Router::new()
        .route(
            crate::openapi::operation("/webhooks"),
            post(register).get(list),
        )
        .route(
            crate::openapi::operation("/webhooks/{webhook_id}"),
            axum::routing::delete(remove),
        )
        .route(
            crate::openapi::operation("/webhooks/{webhook_id}/deliveries"),
            get(deliveries),
        )
        .route(
            crate::openapi::operation("/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"),
            post(replay),
        )
        .with_state(endpoints)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    url: String,
    /// `whsec_<base64>`; made up when left out.
    secret: Option<String>,
}

async fn register(
    State(endpoints): State<Arc<Endpoints>>,
    JsonBody(body): JsonBody<Registration>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let registered = endpoints.register(&body.url, body.secret).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

async fn list(State(endpoints): State<Arc<Endpoints>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "webhooks": endpoints.list().await? })))
}

async fn remove(
    State(endpoints): State<Arc<Endpoints>>,
    Path(webhook_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    endpoints.remove(&webhook_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u64>,
}

async fn deliveries(
    State(endpoints): State<Arc<Endpoints>>,
    Path(webhook_id): Path<String>,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<Value>, ApiError> {
    let log = endpoints
        .deliveries(&webhook_id, page.limit.unwrap_or(20))
        .await?;
    Ok(Json(json!({ "deliveries": log })))
}

async fn replay(
    State(endpoints): State<Arc<Endpoints>>,
    Path((webhook_id, delivery_id)): Path<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(endpoints.replay(&webhook_id, &delivery_id).await?))
}
