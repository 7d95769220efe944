//! `POST /predict-batch`: points of several series scored in one request, in order, with
//! `predict`'s answer for each; a bad point refuses the request before anything is scored.

use serde_json::json;

use crate::demo_scenario::{T0, fit_body};
use crate::support::spawn_app;

#[tokio::test]
async fn points_of_several_series_are_scored_in_order() {
    let app = spawn_app().await;
    for series in ["batch_a", "batch_b"] {
        assert_eq!(app.fit(series, &fit_body(1)).await.status, 200);
    }
    let points: Vec<_> = (0..6)
        .map(|i| {
            let series = if i % 2 == 0 { "batch_a" } else { "batch_b" };
            json!({ "series_id": series, "timestamp": T0 + 600 + i, "value": 10.0 + i as f64 })
        })
        .collect();
    let answer = app
        .post("/predict-batch", &json!({ "points": points }))
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    let predictions = answer.json()["predictions"].as_array().unwrap().clone();
    assert_eq!(predictions.len(), 6);
    for (i, prediction) in predictions.iter().enumerate() {
        assert_eq!(prediction["series_id"], points[i]["series_id"]);
        assert_eq!(prediction["timestamp"], points[i]["timestamp"]);
        assert_eq!(prediction["model_version"], "v1");
    }
}

#[tokio::test]
async fn a_bad_batch_is_refused_with_the_reason() {
    let app = spawn_app().await;
    assert_eq!(app.fit("batch_c", &fit_body(1)).await.status, 200);
    let point = |series: &str| json!({ "series_id": series, "timestamp": T0 + 600, "value": 1.0 });
    let bad_id = app
        .post(
            "/predict-batch",
            &json!({ "points": [point("batch_c"), point("no spaces")] }),
        )
        .await;
    assert_eq!(bad_id.status, 400);
    assert!(bad_id.detail().contains("series_id"), "{}", bad_id.detail());
    let unknown = app
        .post(
            "/predict-batch",
            &json!({ "points": [point("batch_c"), point("never_fitted")] }),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.detail().as_str()),
        (404, "Model not found")
    );
    let too_many: Vec<_> = (0..10_001).map(|_| point("batch_c")).collect();
    let answer = app
        .post("/predict-batch", &json!({ "points": too_many }))
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.detail().contains("10000"), "{}", answer.detail());
    let extra = app
        .post(
            "/predict-batch",
            &json!({ "points": [], "series_id": "batch_c" }),
        )
        .await;
    assert_eq!(extra.status, 400);
}
