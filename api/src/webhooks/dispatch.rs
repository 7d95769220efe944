//! Alerts to the registered webhook endpoints: a decorator around the predictor hands every
//! alert a prediction raises (through any API) to a background dispatcher through a bounded
//! queue, so predict never waits on a receiver. For each endpoint the dispatcher stores a
//! delivery (the message and its attempts) before the first attempt, signs every attempt
//! (`signature`), and retries what is not answered 2xx with exponential backoff, recording each
//! attempt's status in the delivery log. Endpoints are read from the database, at most
//! `REFRESH` old, so one registered through any gateway is served by all of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::{Mutex, Semaphore, mpsc};
use uuid::Uuid;

use anomaly_workers::domain::{Point, SeriesId};
use anomaly_workers::events::now_ms;
use anomaly_workers::predictor::{PredictError, Prediction, Scoring};
use anomaly_workers::store::{Attempt, Delivery, ModelStore, StoreError, Webhook};

use super::signature::Secret;

/// How stale the dispatcher's list of endpoints may be.
const REFRESH: Duration = Duration::from_secs(2);

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
    /// Alerts waiting for the dispatcher, at most (more are dropped and counted).
    pub queue: usize,
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
            queue: 10_000,
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

/// `inner`, with its alerts delivered to the webhook endpoints registered in `store`.
pub fn notifying(
    inner: Arc<dyn Scoring>,
    store: Arc<dyn ModelStore>,
    settings: &WebhookSettings,
) -> Arc<dyn Scoring> {
    let (alerts, pending) = mpsc::channel(settings.queue.max(1));
    let dispatcher = Arc::new(Dispatcher {
        store,
        client: client(settings),
        settings: settings.clone(),
        endpoints: Mutex::new((Vec::new(), None)),
        running: Arc::new(Semaphore::new(settings.concurrency.max(1))),
    });
    tokio::spawn(dispatcher.run(pending));
    Arc::new(Notifying { inner, alerts })
}

struct Notifying {
    inner: Arc<dyn Scoring>,
    alerts: mpsc::Sender<Prediction>,
}

#[async_trait]
impl Scoring for Notifying {
    async fn predict(&self, series: &SeriesId, point: Point) -> Result<Prediction, PredictError> {
        let prediction = self.inner.predict(series, point).await?;
        if prediction.alert && self.alerts.try_send(prediction.clone()).is_err() {
            metrics::counter!("anomaly_webhook_dropped_total").increment(1);
        }
        Ok(prediction)
    }
}

struct Dispatcher {
    store: Arc<dyn ModelStore>,
    client: reqwest::Client,
    settings: WebhookSettings,
    /// The endpoints and when they were read.
    endpoints: Mutex<(Vec<Webhook>, Option<Instant>)>,
    running: Arc<Semaphore>,
}

impl Dispatcher {
    async fn run(self: Arc<Self>, mut alerts: mpsc::Receiver<Prediction>) {
        while let Some(prediction) = alerts.recv().await {
            let endpoints = match self.endpoints().await {
                Ok(endpoints) => endpoints,
                Err(err) => {
                    tracing::warn!(error = %err, "webhook endpoints unreadable; alert not delivered");
                    metrics::counter!("anomaly_webhook_dropped_total").increment(1);
                    continue;
                }
            };
            for hook in endpoints {
                let payload = payload(&prediction);
                let delivery = Delivery {
                    id: Uuid::now_v7(),
                    webhook_id: hook.id,
                    created_at_ms: now_ms(),
                    delivered: false,
                    payload,
                    attempts: Vec::new(),
                };
                // Waits for a free slot: a slow receiver backs the queue up, not memory.
                let Ok(slot) = self.running.clone().acquire_owned().await else {
                    return;
                };
                let this = self.clone();
                tokio::spawn(async move {
                    this.deliver(hook, delivery).await;
                    drop(slot);
                });
            }
        }
    }

    async fn endpoints(&self) -> Result<Vec<Webhook>, StoreError> {
        let mut cached = self.endpoints.lock().await;
        if cached.1.is_none_or(|at| at.elapsed() > REFRESH) {
            *cached = (self.store.webhooks().await?, Some(Instant::now()));
        }
        Ok(cached.0.clone())
    }

    /// Attempts a delivery until it is delivered or out of attempts, logging every attempt.
    async fn deliver(&self, hook: Webhook, mut delivery: Delivery) {
        let mut backoff = self.settings.first_backoff;
        loop {
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
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.settings.max_backoff);
        }
    }
}

/// The message of an alert: `{"type": "anomaly.alert", "timestamp": ..., "data": {...}}`.
fn payload(prediction: &Prediction) -> String {
    let verdict = &prediction.verdict;
    json!({
        "type": "anomaly.alert",
        "timestamp": crate::alertmanager::rfc3339(std::time::SystemTime::now()),
        "data": {
            "event_id": prediction.event_id,
            "series_id": prediction.series_id.as_str(),
            "model_version": prediction.model_version.to_string(),
            "detector": &*prediction.detector,
            "timestamp": prediction.point.timestamp,
            "value": prediction.point.value,
            "score": verdict.score,
            "expected": verdict.expected,
            "lower": verdict.lower,
            "upper": verdict.upper,
        }
    })
    .to_string()
}
