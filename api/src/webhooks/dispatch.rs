//! Delivering a message to a webhook endpoint: each attempt signed (`signature`), what is not
//! answered 2xx retried with exponential backoff, every attempt's status written to the
//! delivery log; deliveries a stopped process left undelivered are resumed at start. Endpoints
//! are read from the database for every alert, so one registered through any gateway is served
//! from the next alert on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use anomaly_workers::events::{Scored, now_ms};
use anomaly_workers::store::{Attempt, Delivery, StoreError, Webhook, Webhooks};

use super::signature::Secret;

/// How deliveries are retried and bounded.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; each later one waits twice as long, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest an attempt may wait for its answer.
    pub timeout: Duration,
    /// Deliveries in progress at once, at most.
    pub concurrency: usize,
    /// Endpoints that may be registered.
    pub max_endpoints: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            concurrency: 32,
            max_endpoints: 100,
        }
    }
}

/// Sends a delivery's message, signed, once; the attempt.
pub async fn attempt(client: &reqwest::Client, hook: &Webhook, delivery: &Delivery) -> Attempt {
    let at_ms = now_ms();
    let timestamp = at_ms / 1000;
    let id = delivery.id.to_string();
    let signature = match Secret::parse(&hook.secret) {
        Ok(secret) => secret.sign(&id, timestamp, delivery.payload.as_bytes()),
        Err(err) => {
            return Attempt {
                at_ms,
                status: None,
                error: Some(format!("the stored secret is unusable: {err}")),
            };
        }
    };
    let sent = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("user-agent", concat!("anomaly/", env!("CARGO_PKG_VERSION")))
        .body(delivery.payload.clone())
        .send()
        .await;
    match sent {
        Ok(answer) => Attempt {
            at_ms,
            status: Some(answer.status().as_u16()),
            error: None,
        },
        Err(err) => Attempt {
            at_ms,
            status: None,
            error: Some(err.to_string()),
        },
    }
}

/// Whether an attempt delivered the message.
pub fn delivered(attempt: &Attempt) -> bool {
    attempt.status.is_some_and(|s| (200..300).contains(&s))
}

/// The dispatcher's client: no redirects followed (a receiver answers, it does not send us on).
pub fn client(settings: &WebhookSettings) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client with a timeout builds")
}

/// Runs deliveries: at most `concurrency` at once, each retried until delivered or out of
/// attempts, every attempt written to the delivery log.
pub struct Deliverer {
    store: Arc<dyn Webhooks>,
    client: reqwest::Client,
    settings: WebhookSettings,
    running: Arc<Semaphore>,
    /// Ends deliveries in progress (they stay undelivered in the log, resumed by the next start).
    stop: CancellationToken,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Webhooks>,
        settings: &WebhookSettings,
        stop: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            client: client(settings),
            settings: settings.clone(),
            running: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            stop,
        })
    }

    pub fn store(&self) -> &Arc<dyn Webhooks> {
        &self.store
    }

    /// The registered endpoints, read now: one registered a moment ago gets the next alert
    /// (alerts are rare next to predictions, so one small query each costs little).
    pub async fn endpoints(&self) -> Result<Vec<Webhook>, StoreError> {
        self.store.webhooks().await
    }

    /// Starts delivering `delivery` to `hook` once a slot is free (waiting for one: a slow
    /// receiver slows the alerts' consumer down, it does not pile up tasks).
    pub async fn start(self: &Arc<Self>, hook: Webhook, delivery: Delivery) {
        let Ok(slot) = self.running.clone().acquire_owned().await else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let stop = this.stop.clone();
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = this.deliver(hook, delivery) => {}
            }
            drop(slot);
        });
    }

    /// Attempts a delivery until it is delivered or out of attempts, logging every attempt.
    async fn deliver(&self, hook: Webhook, mut delivery: Delivery) {
        loop {
            // After the n-th attempt: first_backoff * 2^(n-1), at most max_backoff (a resumed
            // delivery goes on with its own schedule).
            if let Some(done) = delivery.attempts.len().checked_sub(1) {
                let doubled = 2u32.saturating_pow(done.min(31) as u32);
                let wait = self.settings.first_backoff.saturating_mul(doubled);
                tokio::time::sleep(wait.min(self.settings.max_backoff)).await;
            }
            let attempt = attempt(&self.client, &hook, &delivery).await;
            delivery.delivered = delivered(&attempt);
            delivery.attempts.push(attempt);
            if let Err(err) = self.store.save_delivery(&delivery).await {
                tracing::warn!(error = %err, delivery = %delivery.id, "delivery log not written");
            }
            if delivery.delivered {
                metrics::counter!("anomaly_webhook_delivered_total").increment(1);
                return;
            }
            if delivery.attempts.len() >= self.settings.max_attempts as usize {
                tracing::warn!(url = %hook.url, delivery = %delivery.id, "webhook delivery failed every attempt");
                metrics::counter!("anomaly_webhook_failed_total").increment(1);
                return;
            }
        }
    }

    /// Resumes the deliveries a stopped process left undelivered with attempts to spare.
    pub async fn resume(self: &Arc<Self>) {
        let pending = match self.store.undelivered(RESUME_AT_MOST).await {
            Ok(pending) => pending,
            Err(err) => {
                tracing::warn!(error = %err, "undelivered webhook deliveries not read; not resumed");
                return;
            }
        };
        let Ok(endpoints) = self.endpoints().await else {
            return;
        };
        let mut resumed = 0;
        for delivery in pending {
            if delivery.attempts.len() >= self.settings.max_attempts as usize {
                continue;
            }
            if let Some(hook) = endpoints.iter().find(|h| h.id == delivery.webhook_id) {
                self.start(hook.clone(), delivery).await;
                resumed += 1;
            }
        }
        if resumed > 0 {
            tracing::info!(resumed, "undelivered webhook deliveries resumed");
        }
    }
}

/// Most undelivered deliveries a process resumes when it starts.
const RESUME_AT_MOST: u64 = 10_000;

/// The message of an alert: `{"type": "anomaly.alert", "timestamp": ..., "data": {...}}`.
pub fn payload(alert: &Scored) -> String {
    let verdict = &alert.verdict;
    json!({
        "type": "anomaly.alert",
        "timestamp": crate::rfc3339::from_ms(alert.at_ms),
        "data": {
            "event_id": alert.id,
            "series_id": alert.series_id.as_str(),
            "model_version": alert.model_version.to_string(),
            "detector": &*alert.detector,
            "timestamp": alert.point.timestamp,
            "value": alert.point.value,
            "score": verdict.score,
            "expected": verdict.expected,
            "lower": verdict.lower,
            "upper": verdict.upper,
        }
    })
    .to_string()
}
