//! Alerts into webhook deliveries, as a consumer of the `anomalies` topic (group `webhooks`):
//! for each alert and each registered endpoint a delivery is stored before the alert is
//! acknowledged, so on Kafka an alert a client was told of reaches every endpoint even if a
//! process dies on the way (at least once: receivers tell repeats apart by `webhook-id`, which
//! is derived from the alert and the endpoint, so a redelivered alert makes no second
//! delivery). Then the `Deliverer` sends it.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use anomaly_workers::consumers::{HandleError, Handler};
use anomaly_workers::events::{Event, now_ms};
use anomaly_workers::store::Delivery;

use super::dispatch::{Deliverer, payload};

/// The `anomalies` consumer that makes webhook deliveries.
pub struct WebhookOutbox {
    deliverer: Arc<Deliverer>,
}

impl WebhookOutbox {
    /// Its consumer group.
    pub const GROUP: &'static str = "webhooks";

    pub fn new(deliverer: Arc<Deliverer>) -> Self {
        Self { deliverer }
    }
}

/// The message id of an alert's delivery to an endpoint: the alert's UUIDv7 (so ids sort in
/// time order) with the endpoint's id mixed into its random bits.
fn delivery_id(alert: Uuid, webhook: Uuid) -> Uuid {
    let mut bytes = *alert.as_bytes();
    for (b, w) in bytes[8..].iter_mut().zip(&webhook.as_bytes()[8..]) {
        *b ^= w;
    }
    uuid::Builder::from_bytes(bytes)
        .with_version(uuid::Version::SortRand)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
}

#[async_trait]
impl Handler for WebhookOutbox {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Event::Anomaly(alert) = event else {
            return Err(HandleError::Poison(format!(
                "expected an anomaly, got {event:?}"
            )));
        };
        let endpoints = self
            .deliverer
            .endpoints()
            .await
            .map_err(|e| HandleError::Transient(anomaly_workers::cause::Cause::new(e)))?;
        for hook in endpoints {
            let delivery = Delivery {
                id: delivery_id(alert.id, hook.id),
                webhook_id: hook.id,
                created_at_ms: now_ms(),
                delivered: false,
                payload: payload(alert),
                attempts: Vec::new(),
            };
            let new = self
                .deliverer
                .store()
                .create_delivery(&delivery)
                .await
                .map_err(|e| HandleError::Transient(anomaly_workers::cause::Cause::new(e)))?;
            if new {
                self.deliverer.start(hook, delivery).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_and_an_endpoint_make_one_stable_time_ordered_id() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(delivery_id(a, x), delivery_id(a, x));
        assert_ne!(delivery_id(a, x), delivery_id(a, y));
        assert_eq!(delivery_id(a, x).get_version_num(), 7);
        assert_eq!(
            delivery_id(a, x).as_bytes()[..6],
            a.as_bytes()[..6],
            "its time is the alert's"
        );
        assert!(delivery_id(a, x) < delivery_id(b, x) || a.as_bytes()[..6] == b.as_bytes()[..6]);
    }
}
