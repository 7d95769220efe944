//! Scored samples back out as Prometheus series: `anomaly_score`, `anomaly_expected`,
//! `anomaly_lower`, `anomaly_upper` and `anomaly_alert` (1 when the sample raised an alert), with
//! the source series' labels plus `for="<its metric name>"` and `series_id` (a source label of
//! either name is kept as `exported_for` / `exported_series_id`, as Prometheus does). Scraped
//! from `GET /federate` (the newest sample of every tracked series, at its own timestamp), or
//! pushed by remote write to `REMOTE_WRITE_RESULTS_URL` as they are scored: batched, retried with
//! backoff on 5xx, 429 and connection errors, dropped on other 4xx (which a retry cannot fix);
//! what does not fit the bounded queue is dropped and counted, so scoring never waits on it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::receiver::{Latest, RESULT_METRICS, Receiver, Tracked};
use super::wire::{self, Label, Sample, TimeSeries, WriteRequest};

/// Scored samples per pushed request (each makes five series).
const PUSH_BATCH: usize = 1000;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The output labels of a series, in name order, without `__name__`.
fn output_labels(tracked: &Tracked) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = tracked
        .labels
        .iter()
        .filter(|(name, _)| name != "__name__")
        .map(|(name, value)| match name.as_str() {
            "for" | "series_id" => (format!("exported_{name}"), value.clone()),
            _ => (name.clone(), value.clone()),
        })
        .collect();
    labels.push(("for".into(), tracked.metric.clone()));
    labels.push(("series_id".into(), tracked.id.as_str().to_owned()));
    labels.sort();
    labels
}

/// The five result values of a scored sample by name (`RESULT_METRICS`); a missing band side
/// is left out.
fn values(latest: &Latest) -> [(&'static str, Option<f64>); 5] {
    let values = [
        Some(latest.score),
        Some(latest.expected),
        latest.lower,
        latest.upper,
        Some(if latest.alert { 1.0 } else { 0.0 }),
    ];
    std::array::from_fn(|i| (RESULT_METRICS[i], values[i]))
}

/// The newest results of every tracked series in the Prometheus text format.
pub fn exposition(receiver: &Receiver) -> String {
    let mut families: [String; 5] = Default::default();
    let help = [
        "How anomalous the newest sample of the series is (0 normal, 1 and above: anomalous)",
        "The value the detector expected",
        "The lower end of the band of normal values",
        "The upper end of the band of normal values",
        "1 when the newest sample raised an alert",
    ];
    for tracked in receiver.tracked() {
        let Some(latest) = tracked.latest() else {
            continue;
        };
        let mut labels = String::new();
        for (i, (name, value)) in output_labels(&tracked).iter().enumerate() {
            if i > 0 {
                labels.push(',');
            }
            let _ = write!(labels, "{name}=\"{}\"", escape(value));
        }
        for (family, (_, value)) in families.iter_mut().zip(values(&latest)) {
            if let Some(value) = value {
                let _ = writeln!(family, "{{{labels}}} {value} {}", latest.timestamp_ms);
            }
        }
    }
    let mut out = String::new();
    for (name, (body, help)) in RESULT_METRICS.iter().zip(families.iter().zip(help)) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for line in body.lines() {
            let _ = writeln!(out, "{name}{line}");
        }
    }
    out
}

fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Pushes scored samples to a remote write URL from a bounded queue.
#[derive(Clone)]
pub struct ResultsPush {
    queue: mpsc::Sender<(Arc<Tracked>, Latest)>,
}

impl ResultsPush {
    /// Starts the pusher; it ends when every `ResultsPush` is dropped and the queue is empty.
    pub fn start(url: String, token: Option<String>, capacity: usize) -> Self {
        let (queue, pending) = mpsc::channel(capacity.max(1));
        tokio::spawn(push(url, token, pending));
        Self { queue }
    }

    /// Queues a scored sample; a full queue drops it (counted), never waits.
    pub fn offer(&self, tracked: &Arc<Tracked>, latest: Latest) {
        if self.queue.try_send((tracked.clone(), latest)).is_err() {
            metrics::counter!("anomaly_remote_write_results_dropped_total", "reason" => "queue_full")
                .increment(1);
        }
    }
}

async fn push(
    url: String,
    token: Option<String>,
    mut pending: mpsc::Receiver<(Arc<Tracked>, Latest)>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client with a timeout builds");
    let mut batch = Vec::with_capacity(PUSH_BATCH);
    while pending.recv_many(&mut batch, PUSH_BATCH).await > 0 {
        let body = wire::encode(&request(&batch));
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut post = client
                .post(&url)
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .header("User-Agent", concat!("anomaly/", env!("CARGO_PKG_VERSION")))
                .body(body.clone());
            if let Some(token) = &token {
                post = post.bearer_auth(token);
            }
            let retry = match post.send().await {
                Ok(answer) if answer.status().is_success() => {
                    metrics::counter!("anomaly_remote_write_results_sent_total")
                        .increment(batch.len() as u64);
                    false
                }
                Ok(answer)
                    if answer.status().is_server_error()
                        || answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS =>
                {
                    tracing::warn!(%url, status = %answer.status(), "results push refused for now; retrying");
                    true
                }
                Ok(answer) => {
                    let status = answer.status();
                    let detail = answer.text().await.unwrap_or_default();
                    tracing::warn!(%url, %status, %detail, samples = batch.len(), "results push refused; dropped");
                    metrics::counter!("anomaly_remote_write_results_dropped_total", "reason" => "refused")
                        .increment(batch.len() as u64);
                    false
                }
                Err(err) => {
                    tracing::warn!(%url, error = %err, "results push failed; retrying");
                    true
                }
            };
            if !retry {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        batch.clear();
    }
}

/// The remote write request for a batch of scored samples.
fn request(batch: &[(Arc<Tracked>, Latest)]) -> WriteRequest {
    let mut timeseries = Vec::with_capacity(batch.len() * 5);
    for (tracked, latest) in batch {
        let labels: Vec<Label> = output_labels(tracked)
            .iter()
            .map(|(name, value)| Label::new(name, value))
            .collect();
        for (name, value) in values(latest) {
            let Some(value) = value else { continue };
            // Remote write wants labels in name order (an upper-case name sorts before `__name__`).
            let mut series_labels = Vec::with_capacity(labels.len() + 1);
            series_labels.push(Label::new("__name__", name));
            series_labels.extend(labels.iter().cloned());
            series_labels.sort_by(|a, b| a.name.cmp(&b.name));
            timeseries.push(TimeSeries {
                labels: series_labels,
                samples: vec![Sample {
                    value,
                    timestamp: latest.timestamp_ms,
                }],
            });
        }
    }
    WriteRequest { timeseries }
}
