//! The webhook endpoints in GraphQL: the same operations as REST (`webhooks::endpoints`).

use async_graphql::{ID, SimpleObject};

use anomaly_workers::store::Delivery;

use crate::webhooks::endpoints::{Listed, Registered};

/// A registered webhook endpoint (its secret is shown only when it is registered).
#[derive(SimpleObject)]
pub struct Webhook {
    pub id: ID,
    pub url: String,
    /// When it was registered (RFC 3339).
    pub created_at: String,
}

/// A newly registered endpoint, with the secret its receiver verifies signatures with.
#[derive(SimpleObject)]
pub struct RegisteredWebhook {
    pub id: ID,
    pub url: String,
    /// `whsec_` and the base64 of the key: shown this once.
    pub secret: String,
    /// When it was registered (RFC 3339).
    pub created_at: String,
}

/// One message to one endpoint and every attempt to deliver it.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    /// The message id: the `webhook-id` header of every attempt.
    pub id: ID,
    pub webhook_id: ID,
    /// When the alert was handed to the endpoint (RFC 3339).
    pub created_at: String,
    /// Whether an attempt was answered 2xx.
    pub delivered: bool,
    /// The JSON body sent.
    pub payload: String,
    pub attempts: Vec<WebhookAttempt>,
}

/// One delivery attempt: the HTTP status it was answered with, or why there was none.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    /// When it was sent (RFC 3339).
    pub at: String,
    pub status: Option<i32>,
    pub error: Option<String>,
}

impl From<Listed> for Webhook {
    fn from(listed: Listed) -> Self {
        Self {
            id: ID(listed.id.to_string()),
            url: listed.url,
            created_at: crate::rfc3339::from_ms(listed.created_at_ms),
        }
    }
}

impl From<Registered> for RegisteredWebhook {
    fn from(registered: Registered) -> Self {
        Self {
            id: ID(registered.id.to_string()),
            url: registered.url,
            secret: registered.secret,
            created_at: crate::rfc3339::from_ms(registered.created_at_ms),
        }
    }
}

impl From<Delivery> for WebhookDelivery {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: ID(delivery.id.to_string()),
            webhook_id: ID(delivery.webhook_id.to_string()),
            created_at: crate::rfc3339::from_ms(delivery.created_at_ms),
            delivered: delivery.delivered,
            payload: delivery.payload,
            attempts: delivery
                .attempts
                .into_iter()
                .map(|a| WebhookAttempt {
                    at: crate::rfc3339::from_ms(a.at_ms),
                    status: a.status.map(i32::from),
                    error: a.error,
                })
                .collect(),
        }
    }
}
