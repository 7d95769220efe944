//! anomaly inside a real monitoring stack: Debian's `prometheus` scrapes a test exporter and
//! remote-writes into anomaly, which fits the series after its warm-up, scores the rest, pushes
//! `anomaly_score` and its band back into Prometheus by remote write (queryable there) and
//! sends the alert an injected spike raises to a real `prometheus-alertmanager`, then its
//! resolution. The configuration files are the README's "With Prometheus" snippets.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use std::process::{Child, Command};
use tokio::net::TcpListener;

use crate::remote_write::normal;
use crate::support::{eventually_within, free_port, spawn_app_with};

const STACK_DEADLINE: Duration = Duration::from_secs(90);

/// A program of the stack, stopped when the test ends.
struct Program(Child);

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(program: &str, args: &[String], dir: &std::path::Path) -> Program {
    let log = std::fs::File::create(dir.join(format!("{program}.log"))).unwrap();
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map(Program)
        .unwrap_or_else(|e| panic!("{program} could not start ({e}): apt-get install {program}"))
}

/// An exporter of `test_signal{room="lab"}`: the test signal, one step per scrape, or a spike
/// while `spikes` is above zero.
async fn exporter(spikes: Arc<AtomicU64>) -> u16 {
    let step = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (step, spikes) = (step.clone(), spikes.clone());
            async move {
                let i = step.fetch_add(1, Ordering::SeqCst) as usize;
                let spiking = spikes
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let value = if spiking { 500.0 } else { normal(i) };
                format!("# TYPE test_signal gauge\ntest_signal{{room=\"lab\"}} {value}\n")
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn json(client: &reqwest::Client, url: &str) -> Option<Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

async fn ready(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Alertmanager's active alerts for the test signal's series.
async fn active_alerts(client: &reqwest::Client, alertmanager: &str) -> Vec<Value> {
    let alerts = json(client, &format!("{alertmanager}/api/v2/alerts?active=true"))
        .await
        .unwrap_or_default();
    alerts
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter(|a| {
                    a["labels"]["series_id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with("test_signal:"))
                        && a["status"]["state"] == "active"
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs Debian's prometheus and prometheus-alertmanager: run bash .ci/run"]
async fn prometheus_feeds_anomaly_and_alertmanager_hears_of_the_spike() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (prometheus_port, alertmanager_port) = (free_port(), free_port());
    let prometheus = format!("http://127.0.0.1:{prometheus_port}");
    let alertmanager = format!("http://127.0.0.1:{alertmanager_port}");

    let app = spawn_app_with(&[
        ("REMOTE_WRITE_SELECTOR", r#"{__name__="test_signal"}"#),
        ("REMOTE_WRITE_WARMUP_POINTS", "20"),
        (
            "REMOTE_WRITE_RESULTS_URL",
            &format!("{prometheus}/api/v1/write"),
        ),
        ("ALERTMANAGER_URL", &alertmanager),
        ("ALERTMANAGER_RESEND_SECS", "1"),
    ])
    .await;
    let spikes = Arc::new(AtomicU64::new(0));
    let exporter_port = exporter(spikes.clone()).await;

    std::fs::write(
        dir.path().join("alertmanager.yml"),
        include_str!("../../../docs/monitoring/alertmanager.yml"),
    )
    .unwrap();
    let prometheus_yml = include_str!("../../../docs/monitoring/prometheus.yml")
        .replace("anomaly:8000", app.base.trim_start_matches("http://"))
        .replace("exporter:9100", &format!("127.0.0.1:{exporter_port}"))
        .replace("anomaly:8000", app.base.trim_start_matches("http://"))
        .replace("scrape_interval: 15s", "scrape_interval: 500ms")
        .replace("batch_send_deadline: 5s", "batch_send_deadline: 500ms");
    std::fs::write(dir.path().join("prometheus.yml"), prometheus_yml).unwrap();
    let _alertmanager = start(
        "prometheus-alertmanager",
        &[
            "--config.file=alertmanager.yml".into(),
            "--storage.path=alertmanager-data".into(),
            format!("--web.listen-address=127.0.0.1:{alertmanager_port}"),
            "--cluster.listen-address=".into(),
        ],
        dir.path(),
    );
    let _prometheus = start(
        "prometheus",
        &[
            "--config.file=prometheus.yml".into(),
            "--storage.tsdb.path=prometheus-data".into(),
            format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
            "--web.enable-remote-write-receiver".into(),
        ],
        dir.path(),
    );
    let log = |name: &str| std::fs::read_to_string(dir.path().join(format!("{name}.log")));
    eventually_within(
        STACK_DEADLINE,
        "Prometheus and Alertmanager are ready",
        || async {
            ready(&client, &format!("{prometheus}/-/ready")).await
                && ready(&client, &format!("{alertmanager}/-/ready")).await
        },
    )
    .await;

    eventually_within(
        STACK_DEADLINE,
        "the remote-written series is fitted",
        || async { app.health().await["series_trained"] == 1 },
    )
    .await;
    spikes.store(2, Ordering::SeqCst);
    eventually_within(
        STACK_DEADLINE,
        "Alertmanager holds the spike's alert",
        || async {
            let alerts = active_alerts(&client, &alertmanager).await;
            alerts.iter().any(|a| {
                a["annotations"]["value"] == "500"
                    && a["annotations"]["dashboard"]
                        .as_str()
                        .is_some_and(|link| link.contains("/dashboard#series=test_signal:"))
            })
        },
    )
    .await;
    eventually_within(STACK_DEADLINE, "the alert resolves", || async {
        active_alerts(&client, &alertmanager).await.is_empty()
    })
    .await;

    let query = format!(
        "{prometheus}/api/v1/query?query=max_over_time(anomaly_score%7Bfor%3D%22test_signal%22%2Croom%3D%22lab%22%7D%5B5m%5D)"
    );
    eventually_within(
        STACK_DEADLINE,
        "Prometheus answers anomaly_score",
        || async {
            let answer = json(&client, &query).await.unwrap_or_default();
            answer["data"]["result"].as_array().is_some_and(|r| {
                r.iter().any(|s| {
                    s["value"][1]
                        .as_str()
                        .and_then(|v| v.parse::<f64>().ok())
                        .is_some_and(|score| score >= 1.0)
                })
            })
        },
    )
    .await;
    let scraped = format!(
        "{prometheus}/api/v1/query?query=anomaly_expected%7Bjob%3D%22anomaly-results%22%2Cfor%3D%22test_signal%22%7D"
    );
    eventually_within(STACK_DEADLINE, "Prometheus scraped /federate", || async {
        let answer = json(&client, &scraped).await.unwrap_or_default();
        answer["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    })
    .await;
    // Pushed by remote write, the series keeps the source's own job (the scraped one is
    // job="anomaly-results", the source's kept as exported_job).
    let band = format!(
        "{prometheus}/api/v1/query?query=anomaly_upper%7Bfor%3D%22test_signal%22%2Cjob%3D%22exporter%22%7D"
    );
    let answer = json(&client, &band).await.unwrap_or_default();
    assert_eq!(
        answer["data"]["result"].as_array().map(Vec::len),
        Some(1),
        "{answer}\nprometheus: {:?}",
        log("prometheus")
    );
}
