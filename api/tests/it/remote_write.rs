//! `POST /api/v1/write` as Prometheus calls it: a selected series warms up, is fitted and then
//! scored; its results show on `/federate`, are pushed by remote write and its alerts reach an
//! Alertmanager (here a recording stand-in; `monitoring_stack` runs the real programs). Bad
//! requests get the 4xx Prometheus does not retry, resent batches are taken once, and the
//! bounds on samples and new series hold.

use std::sync::{Arc, Mutex};

use anomaly_api::remote_write::wire::{self, Label, Sample, TimeSeries, WriteRequest};
use axum::body::Bytes;
use axum::routing::post;
use serde_json::Value;

use crate::support::{Answer, TestApp, eventually, serve, spawn_app_with};

/// Milliseconds of the first sample.
pub const T0_MS: i64 = 1_764_000_000_000;

/// A normal value of the test signal at step `i`: a repeating ramp with a little jitter.
pub fn normal(i: usize) -> f64 {
    10.0 + (i % 6) as f64 + 0.1 * ((i * 7) % 3) as f64
}

pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut labels: Vec<Label> = labels.iter().map(|(n, v)| Label::new(n, v)).collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
    }
}

pub async fn remote_write(app: &TestApp, request: &WriteRequest) -> Answer {
    app.answer(
        app.client
            .post(format!("{}/api/v1/write", app.base))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(wire::encode(request)),
    )
    .await
}

/// Samples `from..to` of the test signal, one a second.
fn signal(from: usize, to: usize) -> Vec<(i64, f64)> {
    (from..to)
        .map(|i| (T0_MS + 1000 * i as i64, normal(i)))
        .collect()
}

const CPU: [(&str, &str); 3] = [
    ("__name__", "node_load1"),
    ("instance", "host-a:9100"),
    ("job", "node"),
];

/// A stand-in HTTP receiver on port 0 that keeps the body of every POST to `path`.
async fn recorder(path: &'static str) -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        path,
        post(move |body: Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    (serve(app).await, seen)
}

/// The value of `name{...}` lines containing `label` in a text exposition.
fn exposed(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .find_map(|l| l.split(' ').nth(1)?.parse().ok())
}

#[tokio::test]
async fn a_series_warms_up_is_fitted_and_scored_with_results_and_alerts_out() {
    let (alertmanager, alerts) = recorder("/api/v2/alerts").await;
    let (results, pushed) = recorder("/api/v1/push").await;
    let app = spawn_app_with(&[
        (
            "REMOTE_WRITE_SELECTOR",
            r#"{__name__=~"node_load.*",job="node"}"#,
        ),
        ("REMOTE_WRITE_WARMUP_POINTS", "60"),
        (
            "REMOTE_WRITE_RESULTS_URL",
            &format!("{results}/api/v1/push"),
        ),
        ("ALERTMANAGER_URL", &alertmanager),
        ("PUBLIC_URL", "http://anomaly.example:8000"),
    ])
    .await;
    let ignored = [("__name__", "node_load1"), ("job", "other")];
    let warmup = WriteRequest {
        timeseries: vec![
            series(&CPU, &signal(0, 60)),
            series(&ignored, &signal(0, 60)),
        ],
    };
    assert_eq!(remote_write(&app, &warmup).await.status, 204);
    let id = "node_load1:".to_owned();
    let health = app.health().await;
    assert_eq!(health["series_trained"], 1, "{health}");
    // Sent again (Prometheus retries after a 5xx): taken once, nothing refitted.
    assert_eq!(remote_write(&app, &warmup).await.status, 204);
    assert_eq!(app.health().await["series_trained"], 1);

    let normal_batch = WriteRequest {
        timeseries: vec![series(&CPU, &signal(60, 90))],
    };
    assert_eq!(remote_write(&app, &normal_batch).await.status, 204);
    let federated = String::from_utf8(app.get("/federate").await.bytes).unwrap();
    let label = r#"for="node_load1""#;
    assert!(
        federated.contains(r#"instance="host-a:9100""#) && federated.contains(&id),
        "{federated}"
    );
    assert!(
        exposed(&federated, "anomaly_score", label).is_some(),
        "{federated}"
    );
    assert_eq!(
        exposed(&federated, "anomaly_alert", label),
        Some(0.0),
        "{federated}"
    );
    assert!(
        !federated.contains(r#"job="other""#),
        "an unselected series is not modelled"
    );

    let spike = WriteRequest {
        timeseries: vec![series(&CPU, &[(T0_MS + 90_000, 500.0)])],
    };
    assert_eq!(remote_write(&app, &spike).await.status, 204);
    let federated = String::from_utf8(app.get("/federate").await.bytes).unwrap();
    assert_eq!(
        exposed(&federated, "anomaly_alert", label),
        Some(1.0),
        "{federated}"
    );
    let firing = |bodies: &[Bytes], resolved: bool| {
        bodies.iter().any(|body| {
            let alerts: Value = serde_json::from_slice(body).unwrap();
            alerts.as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == "AnomalyDetected"
                    && a["labels"]["series_id"].as_str().unwrap().starts_with(&id)
                    && a["labels"]["instance"] == "host-a:9100"
                    && a["labels"]["for"] == "node_load1"
                    && if resolved {
                        a["annotations"].is_null()
                    } else {
                        a["annotations"]["value"] == "500"
                            && a["annotations"]["dashboard"].as_str().unwrap().starts_with(
                                "http://anomaly.example:8000/dashboard#series=node_load1:",
                            )
                    }
            })
        })
    };
    eventually("Alertmanager is told of the alert", || async {
        firing(&alerts.lock().unwrap(), false)
    })
    .await;

    let calm = WriteRequest {
        timeseries: vec![series(&CPU, &signal(91, 100))],
    };
    assert_eq!(remote_write(&app, &calm).await.status, 204);
    eventually("Alertmanager is told it resolved", || async {
        firing(&alerts.lock().unwrap(), true)
    })
    .await;

    eventually("results are pushed by remote write", || async {
        pushed.lock().unwrap().iter().any(|body| {
            let request = wire::decode(body, 1 << 24).unwrap();
            request.timeseries.iter().any(|s| {
                let has = |n: &str, v: &str| {
                    s.labels
                        .iter()
                        .any(|l| l.name == n.as_bytes() && l.value == v.as_bytes())
                };
                has("__name__", "anomaly_score")
                    && has("for", "node_load1")
                    && has("job", "node")
                    && s.samples
                        .iter()
                        .any(|x| x.timestamp == T0_MS + 90_000 && x.value >= 1.0)
            })
        })
    })
    .await;
}

#[tokio::test]
async fn bad_requests_get_the_answers_prometheus_does_not_retry() {
    let app = spawn_app_with(&[
        ("REMOTE_WRITE_MAX_SAMPLES", "100"),
        ("REMOTE_WRITE_WARMUP_POINTS", "3"),
        ("REMOTE_WRITE_MAX_DECODED_BYTES", "1048576"),
    ])
    .await;
    let post = |body: Vec<u8>, encoding: Option<&str>, content_type: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}/api/v1/write", app.base))
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("Content-Encoding", encoding);
        }
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        app.answer(request)
    };
    let good = wire::encode(&WriteRequest {
        timeseries: vec![series(&CPU, &signal(0, 3))],
    });
    let protobuf = Some("application/x-protobuf");
    assert_eq!(
        post(good.clone(), Some("snappy"), protobuf).await.status,
        204
    );
    assert_eq!(post(good.clone(), None, protobuf).await.status, 415);
    assert_eq!(post(good.clone(), Some("gzip"), protobuf).await.status, 415);
    let v2 = post(
        good.clone(),
        Some("snappy"),
        Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
    )
    .await;
    assert_eq!(v2.status, 415);
    assert!(v2.detail().contains("2.0"), "{}", v2.detail());
    assert_eq!(
        post(good, Some("snappy"), Some("application/json"))
            .await
            .status,
        415
    );
    for garbage in [b"not snappy at all".to_vec(), vec![0xff; 32], Vec::new()] {
        let answer = post(garbage, Some("snappy"), protobuf).await;
        assert_eq!(
            answer.status,
            400,
            "{}",
            String::from_utf8_lossy(&answer.bytes)
        );
    }
    // A snappy header promising more than the decoded limit is refused before decompressing.
    let bomb = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 2 * 1024 * 1024])
        .unwrap();
    assert_eq!(post(bomb, Some("snappy"), protobuf).await.status, 400);
    let too_many = WriteRequest {
        timeseries: vec![series(&CPU, &signal(10, 111))],
    };
    let answer = remote_write(&app, &too_many).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.detail().contains("101 samples"),
        "{}",
        answer.detail()
    );
    // A bad series is reported; the good ones beside it are still taken.
    let mixed = WriteRequest {
        timeseries: vec![
            series(&[("job", "no-name")], &signal(0, 3)),
            series(&[("__name__", "fine"), ("job", "x")], &signal(0, 3)),
        ],
    };
    let answer = remote_write(&app, &mixed).await;
    assert_eq!(answer.status, 400);
    assert!(answer.detail().contains("__name__"), "{}", answer.detail());
    assert_eq!(
        app.health().await["series_trained"],
        2,
        "node_load1 and fine"
    );
    // A label name that would break the results' exposition is refused.
    let injected = WriteRequest {
        timeseries: vec![series(
            &[("__name__", "x"), ("a=\"1\"} 9\n#", "v")],
            &signal(0, 3),
        )],
    };
    let answer = remote_write(&app, &injected).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.detail().contains("label name"),
        "{}",
        answer.detail()
    );
    // Staleness markers (a NaN) are skipped quietly.
    let stale = WriteRequest {
        timeseries: vec![series(
            &CPU,
            &[(T0_MS + 50_000, f64::from_bits(0x7ff0000000000002))],
        )],
    };
    assert_eq!(remote_write(&app, &stale).await.status, 204);
}

#[tokio::test]
async fn new_series_are_taken_on_within_the_bounds() {
    let app = spawn_app_with(&[
        ("REMOTE_WRITE_NEW_SERIES_PER_MINUTE", "3"),
        ("REMOTE_WRITE_WARMUP_POINTS", "3"),
    ])
    .await;
    let many = |from, to| WriteRequest {
        timeseries: (0..10)
            .map(|i| {
                let instance = format!("host-{i}");
                series(
                    &[("__name__", "up_like"), ("instance", &instance)],
                    &signal(from, to),
                )
            })
            .collect(),
    };
    assert_eq!(remote_write(&app, &many(0, 3)).await.status, 204);
    // Three were taken on (and fitted on their three points); the other seven wait their turn.
    assert_eq!(app.health().await["series_trained"], 3);
    assert_eq!(remote_write(&app, &many(3, 6)).await.status, 204);
    assert_eq!(app.health().await["series_trained"], 3);
}

/// Prometheus presents `authorization: {credentials: ...}` as a bearer token: writing needs the
/// full token, reading the results the read-only one too.
#[tokio::test]
async fn writing_needs_the_token_and_results_need_a_reader() {
    let app = spawn_app_with(&[("API_TOKEN", "full"), ("API_READ_TOKEN", "viewer")]).await;
    let body = wire::encode(&WriteRequest {
        timeseries: vec![series(&CPU, &signal(0, 3))],
    });
    let write = |token: Option<&'static str>| {
        let mut request = app
            .client
            .post(format!("{}/api/v1/write", app.base))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        app.answer(request)
    };
    assert_eq!(write(None).await.status, 401);
    assert_eq!(write(Some("viewer")).await.status, 403);
    assert_eq!(write(Some("full")).await.status, 204);
    assert_eq!(app.get("/federate").await.status, 401);
    let read = app
        .answer(
            app.client
                .get(format!("{}/federate", app.base))
                .bearer_auth("viewer"),
        )
        .await;
    assert_eq!(read.status, 200);
}

/// In the distributed deployment the gateway takes remote write: it fits through the trainer
/// and scores through the predictors, over HTTP.
#[tokio::test]
async fn a_distributed_gateway_fits_and_scores_remote_written_series() {
    use anomaly_api::process::parts;
    use anomaly_api::roles::internal::{predictor_routes, trainer_routes};
    use anomaly_api::roles::remote::{RemotePredictors, RemoteTrainer};
    use anomaly_workers::bus::MemoryBus;
    use anomaly_workers::predictor::Predictor;
    use anomaly_workers::stats::MemoryStats;
    use anomaly_workers::store::SqlStore;
    use anomaly_workers::trainer::Trainer;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let bus = Arc::new(MemoryBus::new(1024));
    let trainer = Arc::new(Trainer::storing_points(store.clone(), bus.clone()));
    let trainer_url = serve(trainer_routes(trainer, 1 << 20)).await;
    let predictor = Arc::new(Predictor::new(store.clone(), bus.clone(), 100));
    let predictor_url = serve(predictor_routes(predictor, 1 << 20)).await;
    let config = anomaly_api::config::Config::from_lookup(|name| {
        (name == "REMOTE_WRITE_WARMUP_POINTS").then(|| "30".to_owned())
    })
    .unwrap();
    let gateway = parts::gateway(
        Arc::new(config),
        parts::Gateway {
            training: Arc::new(RemoteTrainer::new(&trainer_url)),
            scoring: Arc::new(RemotePredictors::new(&[predictor_url])),
            store: store.clone(),
            stats: Arc::new(MemoryStats::new()),
            bus,
        },
        Default::default(),
    )
    .await
    .unwrap();
    let gateway = crate::support::Http::new(serve(gateway).await);

    let hosts: Vec<String> = (0..20).map(|i| format!("host-{i}")).collect();
    let request = |from, to| WriteRequest {
        timeseries: hosts
            .iter()
            .map(|host| {
                series(
                    &[("__name__", "node_load1"), ("instance", host)],
                    &signal(from, to),
                )
            })
            .collect(),
    };
    let write = |request: WriteRequest| {
        gateway.answer(
            gateway
                .client
                .post(format!("{}/api/v1/write", gateway.base))
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .body(wire::encode(&request)),
        )
    };
    assert_eq!(write(request(0, 30)).await.status, 204);
    assert_eq!(write(request(30, 40)).await.status, 204);
    let federated = String::from_utf8(gateway.get("/federate").await.bytes).unwrap();
    let scored = federated
        .lines()
        .filter(|l| l.starts_with("anomaly_score{"))
        .count();
    assert_eq!(scored, 20, "{federated}");
}
