//! The webhook endpoints over REST: register (`POST /webhooks`, the secret shown once), list,
//! remove, read an endpoint's delivery log and replay a delivery (sent again at once, same
//! `webhook-id`, its attempt added to the log and answered).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use anomaly_workers::events::now_ms;
use anomaly_workers::store::{Delivery, ModelStore, Webhook};

use super::dispatch::{self, WebhookSettings};
use super::signature::Secret;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams};

/// Longest endpoint URL taken.
const MAX_URL: usize = 2048;
/// Most deliveries one page of the log holds.
const MAX_PAGE: u64 = 1000;

struct Endpoints {
    store: Arc<dyn ModelStore>,
    client: reqwest::Client,
    settings: WebhookSettings,
}

pub fn routes(store: Arc<dyn ModelStore>, settings: &WebhookSettings) -> Router {
    let endpoints = Arc::new(Endpoints {
        store,
        client: dispatch::client(settings),
        settings: settings.clone(),
    });
    Router::new()
        .route("/webhooks", post(register).get(list))
        .route("/webhooks/{webhook_id}", axum::routing::delete(remove))
        .route("/webhooks/{webhook_id}/deliveries", get(deliveries))
        .route(
            "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
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

#[derive(Serialize)]
struct Registered {
    id: Uuid,
    url: String,
    /// Shown here only: receivers verify signatures with it.
    secret: String,
    created_at_ms: i64,
}

#[derive(Serialize)]
struct Listed {
    id: Uuid,
    url: String,
    created_at_ms: i64,
}

fn id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request(format!("{raw:?} is not a {what} id")))
}

async fn register(
    State(endpoints): State<Arc<Endpoints>>,
    JsonBody(body): JsonBody<Registration>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let url = body.url.trim().to_owned();
    if url.len() > MAX_URL || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::bad_request(format!(
            "url must be an http:// or https:// URL of at most {MAX_URL} characters"
        )));
    }
    if reqwest::Url::parse(&url).is_err() {
        return Err(ApiError::bad_request("url is not a valid URL"));
    }
    let secret = match body.secret {
        Some(text) => {
            Secret::parse(&text).map_err(ApiError::bad_request)?;
            text
        }
        None => Secret::generate().1,
    };
    if endpoints.store.webhooks().await?.len() >= endpoints.settings.max_endpoints {
        return Err(ApiError::bad_request(format!(
            "At most {} webhook endpoints may be registered (WEBHOOK_MAX_ENDPOINTS)",
            endpoints.settings.max_endpoints
        )));
    }
    let hook = Webhook {
        id: Uuid::now_v7(),
        url,
        secret,
        created_at_ms: now_ms(),
    };
    endpoints.store.create_webhook(&hook).await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            id: hook.id,
            url: hook.url,
            secret: hook.secret,
            created_at_ms: hook.created_at_ms,
        }),
    ))
}

async fn list(
    State(endpoints): State<Arc<Endpoints>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let listed: Vec<Listed> = endpoints
        .store
        .webhooks()
        .await?
        .into_iter()
        .map(|h| Listed {
            id: h.id,
            url: h.url,
            created_at_ms: h.created_at_ms,
        })
        .collect();
    Ok(Json(serde_json::json!({ "webhooks": listed })))
}

async fn remove(
    State(endpoints): State<Arc<Endpoints>>,
    Path(webhook_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let webhook_id = id(&webhook_id, "webhook")?;
    if endpoints.store.delete_webhook(webhook_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("Webhook not found"))
    }
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u64>,
}

async fn deliveries(
    State(endpoints): State<Arc<Endpoints>>,
    Path(webhook_id): Path<String>,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let webhook_id = id(&webhook_id, "webhook")?;
    let limit = page.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    find(&endpoints, webhook_id).await?;
    let log = endpoints.store.deliveries(webhook_id, limit).await?;
    Ok(Json(serde_json::json!({ "deliveries": log })))
}

async fn find(endpoints: &Endpoints, webhook_id: Uuid) -> Result<Webhook, ApiError> {
    endpoints
        .store
        .webhooks()
        .await?
        .into_iter()
        .find(|h| h.id == webhook_id)
        .ok_or(ApiError::NotFound("Webhook not found"))
}

async fn replay(
    State(endpoints): State<Arc<Endpoints>>,
    Path((webhook_id, delivery_id)): Path<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    let (webhook_id, delivery_id) = (id(&webhook_id, "webhook")?, id(&delivery_id, "delivery")?);
    let hook = find(&endpoints, webhook_id).await?;
    let mut delivery = endpoints
        .store
        .delivery(delivery_id)
        .await?
        .filter(|d| d.webhook_id == webhook_id)
        .ok_or(ApiError::NotFound("Delivery not found"))?;
    let attempt = dispatch::attempt(&endpoints.client, &hook, &delivery).await;
    delivery.delivered |= dispatch::delivered(&attempt);
    delivery.attempts.push(attempt);
    endpoints.store.save_delivery(&delivery).await?;
    Ok(Json(delivery))
}
