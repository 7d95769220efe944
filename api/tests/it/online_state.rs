//! Online learning survives a restart: the predictor checkpoints each series' learning state
//! (periodically and on shutdown) and restores it, so scores carry on exactly as in an
//! uninterrupted run.

use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{Point, SeriesId, TrainingSet, Version};
use anomaly_workers::live::LiveState;
use anomaly_workers::model::TrainedModel;
use serde_json::json;

use crate::support::{TestApp, spawn_app_with};

/// A daily rhythm (period 24) with noise and a few spikes.
fn series(n: usize) -> Vec<Point> {
    let mut state = 42u64;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let spike = if i % 397 == 0 { 25.0 } else { 0.0 };
            let value =
                50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin() + noise + spike;
            Point {
                timestamp: 1_700_000_000 + 300 * i as i64,
                value,
            }
        })
        .collect()
}

/// What an uninterrupted predictor answers for `points` after fitting on `training`.
fn uninterrupted(training: &[Point], points: &[Point]) -> Vec<f64> {
    let training_set = TrainingSet::parse(training.to_vec()).unwrap();
    let spec = ModelSpec::default();
    let model = TrainedModel {
        series_id: SeriesId::parse("s").unwrap(),
        version: Version::FIRST,
        detector: spec.detector.fit(&training_set).unwrap(),
        alerts: spec.alerts,
        points_used: training.len() as u32,
        created_at_ms: 0,
    };
    let mut state = LiveState::fresh(&model);
    points
        .iter()
        .map(|&p| state.observe(p).verdict.score)
        .collect()
}

async fn scores(app: &TestApp, points: &[Point]) -> Vec<f64> {
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let answer = app.predict("rhythm", p.timestamp, p.value).await;
        assert_eq!(answer.status, 200);
        let body = answer.json();
        assert_eq!(body["detector"], "art");
        out.push(body["score"].as_f64().unwrap());
    }
    out
}

/// A fit body for `training`.
fn fit_body(training: &[Point]) -> serde_json::Value {
    let data: Vec<_> = training
        .iter()
        .map(|p| json!({"timestamp": p.timestamp, "value": p.value}))
        .collect();
    json!({ "data": data })
}

/// `got` equals an uninterrupted run's `expected` scores, which hold anomalies to learn from.
fn assert_uninterrupted(got: &[f64], expected: &[f64], interruption: &str) {
    assert_eq!(got.len(), expected.len());
    for (i, (got, want)) in got.iter().zip(expected).enumerate() {
        assert_eq!(
            got, want,
            "point {i}: score differs from a run {interruption}"
        );
    }
    assert!(
        expected.iter().any(|s| *s > 1.0),
        "the series has anomalies to learn from"
    );
}

#[tokio::test]
async fn learning_carries_on_across_a_restart() {
    // Periodic checkpoints every 300 points: the last 100 of the first 1,000 points reach the
    // database only through the shutdown checkpoint.
    let app = spawn_app_with(&[("CHECKPOINT_EVERY", "300")]).await;
    let all = series(300 + 1500);
    let (training, live) = all.split_at(300);
    assert_eq!(app.fit("rhythm", &fit_body(training)).await.status, 200);

    let expected = uninterrupted(training, live);
    let mut got = scores(&app, &live[..1000]).await;
    let app = app.restart().await;
    got.extend(scores(&app, &live[1000..]).await);

    assert_uninterrupted(&got, &expected, "never restarted");
}

#[tokio::test]
async fn a_series_evicted_from_a_full_model_cache_carries_on_learning() {
    // One series fits in the cache: each predict of one series evicts the other, whose state is
    // checkpointed on the way out and taken back (or reloaded) at its next point.
    let app = spawn_app_with(&[("MODEL_CACHE_MAX", "1"), ("CHECKPOINT_EVERY", "100000")]).await;
    let all = series(300 + 400);
    let (training, live) = all.split_at(300);
    for name in ["rhythm", "other"] {
        assert_eq!(app.fit(name, &fit_body(training)).await.status, 200);
    }
    let expected = uninterrupted(training, live);
    let mut got = Vec::new();
    for p in live {
        got.extend(scores(&app, std::slice::from_ref(p)).await);
        let other = app.predict("other", p.timestamp, p.value).await;
        assert_eq!(other.status, 200);
    }
    assert_uninterrupted(&got, &expected, "never evicted");
}
