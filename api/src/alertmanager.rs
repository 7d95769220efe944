//! Alerts to Alertmanager (its v2 API, `POST /api/v2/alerts`), as Prometheus sends them: a
//! decorator around the predictor notes each alert a prediction raises and the first normal
//! prediction after it (the resolution), whichever API the point came through (REST, GraphQL,
//! remote write), and hands them to a background sender through a bounded queue, so predict
//! never waits on Alertmanager. The sender POSTs firing alerts with `endsAt` four resend
//! intervals ahead and sends them again every interval while they fire (so Alertmanager
//! resolves an alert by itself if this gateway dies), a resolved one once with `endsAt` now,
//! and retries what failed with exponential backoff; only the newest state of a series is
//! kept while Alertmanager is down.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use anomaly_workers::domain::{Point, SeriesId};
use anomaly_workers::predictor::{PredictError, Prediction, Scoring};

tokio::task_local! {
    /// Labels a caller scoring a point wants on the point's alert (remote write: the source
    /// series' labels and `for`, so Alertmanager routes by `job`, `instance`, ...), in name order.
    pub static ALERT_LABELS: Arc<[(String, String)]>;
}

/// Where alerts go and how often firing ones are sent again.
#[derive(Debug, Clone)]
pub struct AlertmanagerSettings {
    /// Alertmanager's base URL (`http://alertmanager:9093`).
    pub url: String,
    /// The gateway's URL as people reach it, for the dashboard link in each alert.
    pub public_url: String,
    /// How often a firing alert is sent again.
    pub resend: Duration,
    /// Alert changes waiting for the sender, at most.
    pub queue: usize,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// `inner`, with its alerts sent to Alertmanager when `settings` says where.
pub fn notifying(
    inner: Arc<dyn Scoring>,
    settings: Option<&AlertmanagerSettings>,
) -> Arc<dyn Scoring> {
    let Some(settings) = settings else {
        return inner;
    };
    let (changes, pending) = mpsc::channel(settings.queue.max(1));
    tokio::spawn(send(settings.clone(), pending));
    Arc::new(Notifying {
        inner,
        changes,
        firing: RwLock::new(HashSet::new()),
        firing_count: AtomicUsize::new(0),
    })
}

/// A change of a series' alert.
enum Change {
    Fire(Box<Prediction>, Option<Arc<[(String, String)]>>),
    Resolve(SeriesId),
}

struct Notifying {
    inner: Arc<dyn Scoring>,
    changes: mpsc::Sender<Change>,
    /// Series whose alert fires, so a normal prediction of another series costs one load.
    firing: RwLock<HashSet<SeriesId>>,
    firing_count: AtomicUsize,
}

impl Notifying {
    fn offer(&self, change: Change) {
        if self.changes.try_send(change).is_err() {
            metrics::counter!("anomaly_alertmanager_dropped_total").increment(1);
        }
    }
}

#[async_trait]
impl Scoring for Notifying {
    async fn predict(&self, series: &SeriesId, point: Point) -> Result<Prediction, PredictError> {
        let prediction = self.inner.predict(series, point).await?;
        if prediction.alert {
            let new = self
                .firing
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(series.clone());
            if new {
                self.firing_count.fetch_add(1, Ordering::Relaxed);
            }
            let labels = ALERT_LABELS.try_with(Arc::clone).ok();
            self.offer(Change::Fire(Box::new(prediction.clone()), labels));
        } else if !prediction.verdict.anomaly
            && self.firing_count.load(Ordering::Relaxed) > 0
            && self
                .firing
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(series)
        {
            let removed = self
                .firing
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(series);
            if removed {
                self.firing_count.fetch_sub(1, Ordering::Relaxed);
                self.offer(Change::Resolve(series.clone()));
            }
        }
        Ok(prediction)
    }
}

/// A firing alert as the sender keeps it.
struct Firing {
    starts_at: SystemTime,
    last: Box<Prediction>,
    /// The labels the alert was first sent with: Alertmanager tells alerts apart by them.
    labels: Value,
}

/// Applies changes, sends what is due, retries what failed, resends what fires.
async fn send(settings: AlertmanagerSettings, mut changes: mpsc::Receiver<Change>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client with a timeout builds");
    let url = format!("{}/api/v2/alerts", settings.url.trim_end_matches('/'));
    let mut firing: HashMap<SeriesId, Firing> = HashMap::new();
    // Series with a change not yet delivered: resolved ones carry their end time and labels.
    let mut due: HashMap<SeriesId, Option<(SystemTime, Value)>> = HashMap::new();
    let mut resend = tokio::time::interval(settings.resend);
    resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = FIRST_BACKOFF;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = changes.recv() => {
                let Some(change) = change else { return };
                apply(change, &mut firing, &mut due);
                // Take whatever else is queued, so one POST carries a burst.
                while let Ok(change) = changes.try_recv() {
                    apply(change, &mut firing, &mut due);
                }
                if retry_at.is_some() {
                    continue;
                }
            }
            _ = resend.tick() => {
                due.extend(firing.keys().map(|series| (series.clone(), None)));
            }
            _ = retry => {}
        }
        if due.is_empty() {
            retry_at = None;
            continue;
        }
        let alerts: Vec<Value> = due
            .iter()
            .filter_map(|(series, ended)| match ended {
                Some((ended, labels)) => Some(resolved(series, labels, *ended, &settings)),
                None => firing.get(series).map(|f| alert(f, &settings)),
            })
            .collect();
        match client.post(&url).json(&alerts).send().await {
            Ok(answer) if answer.status().is_success() => {
                metrics::counter!("anomaly_alertmanager_sent_total").increment(alerts.len() as u64);
                due.clear();
                backoff = FIRST_BACKOFF;
                retry_at = None;
            }
            Ok(answer) if answer.status().is_client_error() => {
                let status = answer.status();
                let detail = answer.text().await.unwrap_or_default();
                tracing::warn!(%url, %status, %detail, "Alertmanager refused alerts; dropped");
                metrics::counter!("anomaly_alertmanager_dropped_total")
                    .increment(alerts.len() as u64);
                due.clear();
                retry_at = None;
            }
            outcome => {
                let error = match outcome {
                    Ok(answer) => answer.status().to_string(),
                    Err(err) => err.to_string(),
                };
                tracing::warn!(%url, %error, retry_in = ?backoff, "alerts not delivered to Alertmanager; retrying");
                retry_at = Some(tokio::time::Instant::now() + backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn apply(
    change: Change,
    firing: &mut HashMap<SeriesId, Firing>,
    due: &mut HashMap<SeriesId, Option<(SystemTime, Value)>>,
) {
    match change {
        Change::Fire(prediction, extra) => {
            let series = prediction.series_id.clone();
            firing
                .entry(series.clone())
                .and_modify(|f| f.last = prediction.clone())
                .or_insert_with(|| Firing {
                    starts_at: SystemTime::now(),
                    labels: labels(&series, extra.as_deref().unwrap_or_default()),
                    last: prediction,
                });
            due.insert(series, None);
        }
        Change::Resolve(series) => {
            if let Some(ended) = firing.remove(&series) {
                due.insert(series, Some((SystemTime::now(), ended.labels)));
            }
        }
    }
}

/// An alert's labels: anomaly's own, then the caller's (one named like anomaly's is kept as
/// `exported_<name>`).
fn labels(series: &SeriesId, extra: &[(String, String)]) -> Value {
    let mut labels = json!({ "alertname": "AnomalyDetected", "series_id": series.as_str(), "source": "anomaly" });
    for (name, value) in extra {
        let name = if labels.get(name).is_some() {
            format!("exported_{name}")
        } else {
            name.clone()
        };
        labels[name] = value.as_str().into();
    }
    labels
}

fn dashboard(series: &SeriesId, settings: &AlertmanagerSettings) -> String {
    format!(
        "{}/dashboard#series={}",
        settings.public_url.trim_end_matches('/'),
        series.as_str()
    )
}

fn alert(firing: &Firing, settings: &AlertmanagerSettings) -> Value {
    let p = &firing.last;
    let verdict = &p.verdict;
    let band = match (verdict.lower, verdict.upper) {
        (Some(lower), Some(upper)) => format!("{lower} to {upper}"),
        (Some(lower), None) => format!("above {lower}"),
        (None, Some(upper)) => format!("below {upper}"),
        (None, None) => "none".into(),
    };
    let mut annotations = json!({
        "summary": format!("Anomaly in series {}", p.series_id.as_str()),
        "description": format!(
            "{} at {} is outside the expected band ({band}); expected {}, score {:.3}",
            p.point.value, p.point.timestamp, verdict.expected, verdict.score
        ),
        "value": p.point.value.to_string(),
        "timestamp": p.point.timestamp.to_string(),
        "expected": verdict.expected.to_string(),
        "score": verdict.score.to_string(),
        "detector": &*p.detector,
        "model_version": p.model_version.to_string(),
        "dashboard": dashboard(&p.series_id, settings),
    });
    if let Some(lower) = verdict.lower {
        annotations["lower"] = lower.to_string().into();
    }
    if let Some(upper) = verdict.upper {
        annotations["upper"] = upper.to_string().into();
    }
    json!({
        "labels": firing.labels,
        "annotations": annotations,
        "startsAt": crate::rfc3339::from_system_time(firing.starts_at),
        "endsAt": crate::rfc3339::from_system_time(SystemTime::now() + 4 * settings.resend),
        "generatorURL": dashboard(&p.series_id, settings),
    })
}

fn resolved(
    series: &SeriesId,
    labels: &Value,
    ended: SystemTime,
    settings: &AlertmanagerSettings,
) -> Value {
    json!({
        "labels": labels,
        "endsAt": crate::rfc3339::from_system_time(ended),
        "generatorURL": dashboard(series, settings),
    })
}
