//! The seed's demo scenario, replayed end to end on the embedded platform, then across a restart.

use anomaly_workers::domain::{Point, SeriesId, Version};
use anomaly_workers::store::TrainingPoints;
use serde_json::{Value, json};

use anomaly_workers::store::SqlStore;

use crate::support::{Http, eventually, spawn_app};

const ROLES: [&str; 5] = [
    "gateway",
    "trainer",
    "predictor",
    "metrics-consumer",
    "training-data-consumer",
];

pub const T0: i64 = 1_693_459_200;

fn values_of(series: usize) -> [f64; 3] {
    let base = 10.0 * series as f64;
    [base, base + 0.5, base + 1.0]
}

/// The seed's two body shapes, alternating: odd series send `data`, even ones parallel arrays.
pub fn fit_body(series: usize) -> Value {
    let values = values_of(series);
    if series % 2 == 1 {
        json!({ "data": values.iter().enumerate()
            .map(|(i, v)| json!({ "timestamp": T0 + 60 * i as i64, "value": v }))
            .collect::<Vec<_>>() })
    } else {
        json!({ "timestamps": [T0, T0 + 60, T0 + 120], "values": values })
    }
}

pub fn sent_points(series: usize) -> Vec<Point> {
    values_of(series)
        .iter()
        .enumerate()
        .map(|(i, &value)| Point {
            timestamp: T0 + 60 * i as i64,
            value,
        })
        .collect()
}

async fn training_points_of(store: &SqlStore, series: &str, version: &str) -> Vec<Point> {
    store
        .training_points(
            &SeriesId::parse(series).unwrap(),
            Version::parse(version).unwrap(),
        )
        .await
        .expect("query")
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    (reader.info().width, reader.info().height)
}

#[tokio::test]
async fn the_seed_demo_runs_end_to_end_and_survives_a_restart() {
    let app = spawn_app().await;
    let store = app.store().await;
    replay(&app, &store).await;

    // A restart on the same database keeps models and training data.
    let app = app.restart().await;
    let store = app.store().await;
    let after = app.predict("sensor_01", T0 + 900, 22.5).await.json();
    assert_eq!(
        (after["model_version"].as_str(), after["anomaly"].as_bool()),
        (Some("v2"), Some(true))
    );
    assert_eq!(
        app.predict("sensor_03", T0 + 900, 30.5).await.json()["model_version"],
        "v1"
    );
    assert_eq!(app.plot("sensor_01", "v2").await.status, 200);
    assert_eq!(
        training_points_of(&store, "sensor_05", "v1").await,
        sent_points(5)
    );
    let next = app.fit("sensor_01", &fit_body(1)).await.json();
    assert_eq!(next["version"], "v3", "versions continue after a restart");
}

/// The seed's demo against a gateway (embedded or distributed) whose database is `store`:
/// answers, stored training data and health figures.
pub async fn replay(app: &Http, store: &SqlStore) {
    // Train five series, both body shapes.
    for n in 1..=5 {
        let series = format!("sensor_0{n}");
        let answer = app.fit(&series, &fit_body(n)).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.bytes)
        );
        let body = answer.json();
        assert_eq!(body["series_id"], series.as_str());
        assert_eq!(body["version"], "v1");
        assert_eq!(body["points_used"], 3);
    }

    // Bad training sets.
    let constant = app
        .fit(
            "sensor_const",
            &json!({ "timestamps": [T0, T0 + 60, T0 + 120], "values": [5.0, 5.0, 5.0] }),
        )
        .await;
    assert_eq!(constant.status, 400);
    assert!(
        constant.detail().contains("constant"),
        "{}",
        constant.detail()
    );
    let empty = app.fit("sensor_empty", &json!({ "data": [] })).await;
    assert_eq!(
        (empty.status, empty.detail().as_str()),
        (400, "No data points provided")
    );

    // A refit makes a new version.
    let refit = app.fit("sensor_01", &fit_body(1)).await;
    assert_eq!(refit.json()["version"], "v2");

    // Predictions. The new version reaches the predictor's cache through the `models` topic.
    let mut predictions = 0;
    eventually("the predictor uses v2", || {
        predictions += 1;
        async { app.predict("sensor_01", T0 + 800, 10.5).await.json()["model_version"] == "v2" }
    })
    .await;
    let normal = app.predict("sensor_01", T0 + 800, 10.5).await;
    assert_eq!(normal.status, 200);
    let normal = normal.json();
    assert_eq!(
        (
            normal["model_version"].as_str(),
            normal["anomaly"].as_bool()
        ),
        (Some("v2"), Some(false))
    );
    assert!(normal["score"].as_f64().unwrap() <= 1.0);
    assert!(normal["lower"].as_f64().unwrap() <= 10.5 && 10.5 <= normal["upper"].as_f64().unwrap());

    let spike = app.predict("sensor_01", T0 + 860, 22.5).await.json();
    assert_eq!(spike["anomaly"], true);
    assert!(spike["score"].as_f64().unwrap() > 1.0);
    assert!(spike["upper"].as_f64().unwrap() < 22.5);

    let zero = app.predict("sensor_01", T0 + 900, 0.0).await;
    assert_eq!(zero.status, 200, "a value of 0 is a valid value");

    let now = app
        .post(
            "/predict/sensor_01",
            &json!({ "timestamp": "now", "value": 10.5 }),
        )
        .await;
    assert_eq!(
        (now.status, now.detail().as_str()),
        (400, "Invalid request payload")
    );

    let untrained = app.predict("sensor_99", T0, 1.0).await;
    assert_eq!(
        (untrained.status, untrained.json()),
        (404, json!({ "detail": "Model not found" }))
    );

    // Plots: the training data reaches the database through the training-data consumer.
    eventually("sensor_01 v2 is plotted", || async {
        app.plot("sensor_01", "v2").await.status == 200
    })
    .await;
    let plot = app.plot("sensor_01", "v2").await;
    assert_eq!(plot.content_type, "image/png");
    assert_eq!(
        png_size(&plot.bytes),
        (anomaly_api::plot::WIDTH, anomaly_api::plot::HEIGHT)
    );
    let unknown = app.plot("sensor_01", "v9").await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (
            404,
            json!({ "detail": "No training data found for given series_id and version." })
        )
    );

    // Every training point reached the database, none doubled.
    for n in 1..=5 {
        let series = format!("sensor_0{n}");
        eventually("training data is stored", || async {
            training_points_of(store, &series, "v1").await.len() == 3
        })
        .await;
        assert_eq!(
            training_points_of(store, &series, "v1").await,
            sent_points(n)
        );
    }
    assert_eq!(
        training_points_of(store, "sensor_01", "v2").await,
        sent_points(1)
    );
    assert!(
        training_points_of(store, "sensor_const", "v1")
            .await
            .is_empty()
    );

    // Health: the metrics consumer has counted everything.
    // Every prediction above counts: the waiting ones, then normal, spike and zero.
    let predictions = predictions + 3;
    // Heartbeats arrive on their own schedule: wait until every role has been heard from.
    eventually(
        "health counts five series, every prediction and every role",
        || async {
            let health = app.health().await;
            let listed: Vec<String> = health["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["role"].as_str().map(str::to_owned))
                .collect();
            health["series_trained"] == 5
                && health["model_usage"]["sensor_01"] == predictions
                && ROLES.iter().all(|role| listed.iter().any(|l| l == role))
        },
    )
    .await;
    let health = app.health().await;
    for key in ["inference_latency_ms", "training_latency_ms"] {
        assert!(
            health[key]["avg"].as_f64().unwrap() > 0.0,
            "{key}: {health}"
        );
        assert!(
            health[key]["p95"].as_f64().unwrap() > 0.0,
            "{key}: {health}"
        );
    }
    assert!(
        health["throughput"]["trainer"]["avg_per_minute"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        health["throughput"]["predictor"]["avg_per_minute"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    for role in ["trainer", "predictor"] {
        let figures = &health["system_metrics"][role];
        assert!(
            figures["memory_percent"].as_f64().unwrap() > 0.0,
            "{role}: {health}"
        );
        assert_eq!(figures["load_avg"].as_array().unwrap().len(), 3);
    }
    let roles: Vec<&str> = health["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    for role in ROLES {
        assert!(roles.contains(&role), "{role} missing from {roles:?}");
    }
}
