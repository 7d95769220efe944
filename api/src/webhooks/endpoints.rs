//! What registering, listing, removing and replaying webhook endpoints does, for REST
//! (`routes`) and GraphQL alike.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use anomaly_workers::events::now_ms;
use anomaly_workers::store::{Delivery, Webhook, Webhooks};

use super::dispatch::{self, WebhookSettings};
use super::signature::Secret;
use crate::error::ApiError;

/// Longest endpoint URL taken.
const MAX_URL: usize = 2048;
/// Most deliveries one page of the log holds.
pub const MAX_PAGE: u64 = 1000;

/// The registered endpoints, as the APIs manage them.
pub struct Endpoints {
    store: Arc<dyn Webhooks>,
    client: reqwest::Client,
    settings: WebhookSettings,
}

/// A new endpoint: its secret is shown this once.
#[derive(Serialize)]
pub struct Registered {
    pub id: Uuid,
    pub url: String,
    pub secret: String,
    pub created_at_ms: i64,
}

/// An endpoint as listed: without its secret.
#[derive(Serialize)]
pub struct Listed {
    pub id: Uuid,
    pub url: String,
    pub created_at_ms: i64,
}

pub fn id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request(format!("{raw:?} is not a {what} id")))
}

impl Endpoints {
    pub fn new(store: Arc<dyn Webhooks>, settings: &WebhookSettings) -> Self {
        Self {
            store,
            client: dispatch::client(settings),
            settings: settings.clone(),
        }
    }

    pub async fn register(
        &self,
        url: &str,
        secret: Option<String>,
    ) -> Result<Registered, ApiError> {
        let url = url.trim().to_owned();
        if url.len() > MAX_URL || !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ApiError::bad_request(format!(
                "url must be an http:// or https:// URL of at most {MAX_URL} characters"
            )));
        }
        if reqwest::Url::parse(&url).is_err() {
            return Err(ApiError::bad_request("url is not a valid URL"));
        }
        let secret = match secret {
            Some(text) => {
                Secret::parse(&text).map_err(ApiError::bad_request)?;
                text
            }
            None => Secret::generate().1,
        };
        if self.store.webhooks().await?.len() >= self.settings.max_endpoints {
            return Err(ApiError::bad_request(format!(
                "At most {} webhook endpoints may be registered (WEBHOOK_MAX_ENDPOINTS)",
                self.settings.max_endpoints
            )));
        }
        let hook = Webhook {
            id: Uuid::now_v7(),
            url,
            secret,
            created_at_ms: now_ms(),
        };
        self.store.create_webhook(&hook).await?;
        Ok(Registered {
            id: hook.id,
            url: hook.url,
            secret: hook.secret,
            created_at_ms: hook.created_at_ms,
        })
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ApiError> {
        Ok(self
            .store
            .webhooks()
            .await?
            .into_iter()
            .map(|h| Listed {
                id: h.id,
                url: h.url,
                created_at_ms: h.created_at_ms,
            })
            .collect())
    }

    pub async fn remove(&self, webhook_id: &str) -> Result<(), ApiError> {
        let webhook_id = id(webhook_id, "webhook")?;
        if self.store.delete_webhook(webhook_id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound("Webhook not found"))
        }
    }

    pub async fn deliveries(
        &self,
        webhook_id: &str,
        limit: u64,
    ) -> Result<Vec<Delivery>, ApiError> {
        let webhook_id = id(webhook_id, "webhook")?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        self.find(webhook_id).await?;
        Ok(self.store.deliveries(webhook_id, limit).await?)
    }

    async fn find(&self, webhook_id: Uuid) -> Result<Webhook, ApiError> {
        self.store
            .webhooks()
            .await?
            .into_iter()
            .find(|h| h.id == webhook_id)
            .ok_or(ApiError::NotFound("Webhook not found"))
    }

    /// Sends a delivery again now; the delivery with the new attempt.
    pub async fn replay(&self, webhook_id: &str, delivery_id: &str) -> Result<Delivery, ApiError> {
        let (webhook_id, delivery_id) = (id(webhook_id, "webhook")?, id(delivery_id, "delivery")?);
        let hook = self.find(webhook_id).await?;
        let mut delivery = self
            .store
            .delivery(delivery_id)
            .await?
            .filter(|d| d.webhook_id == webhook_id)
            .ok_or(ApiError::NotFound("Delivery not found"))?;
        let attempt = dispatch::attempt(&self.client, &hook, &delivery).await;
        delivery.delivered |= dispatch::delivered(&attempt);
        delivery.attempts.push(attempt);
        self.store.save_delivery(&delivery).await?;
        Ok(delivery)
    }
}
