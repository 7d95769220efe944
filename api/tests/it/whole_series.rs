//! Whole-series mode: `POST /detect` scores a list of points in order and stores nothing.

use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn a_whole_series_is_scored_in_order_and_nothing_is_stored() {
    let app = spawn_app().await;
    let timestamps: Vec<i64> = (0..200).map(|i| 1_700_000_000 + 60 * i).collect();
    let values: Vec<f64> = (0..200)
        .map(|i| {
            if i == 150 {
                95.0
            } else {
                20.0 + ((i * 7919) % 13) as f64 / 10.0
            }
        })
        .collect();
    let answer = app
        .post(
            "/detect",
            &json!({ "timestamps": timestamps, "values": values, "training_points": 100 }),
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    let body = answer.json();
    assert_eq!(body["detector"], "art");
    assert_eq!(body["training_points"], 100);
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 100);
    let alerts: Vec<i64> = points
        .iter()
        .filter(|p| p["alert"] == true)
        .map(|p| p["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(alerts, vec![1_700_000_000 + 60 * 150]);
    let spike = &points[50];
    assert!(spike["score"].as_f64().unwrap() > 1.0 && spike["upper"].as_f64().unwrap() < 95.0);

    // Nothing was stored: no model exists for any series.
    assert_eq!(app.predict("whole-series", 1, 1.0).await.status, 404);
    assert_eq!(app.health().await["series_trained"], 0);
}

#[tokio::test]
async fn whole_series_bad_input_gets_400() {
    let app = spawn_app().await;
    for (body, expected) in [
        (json!({}), "No data points provided"),
        (
            json!({ "timestamps": [1, 2, 3], "values": [1.0, 2.0, 3.0], "training_points": 3 }),
            "training_points",
        ),
        (
            json!({ "timestamps": [1, 2, 3, 4], "values": [5.0, 5.0, 5.0, 6.0], "training_points": 3 }),
            "constant",
        ),
        (
            json!({ "timestamps": [1, 2], "values": [1.0] }),
            "same length",
        ),
    ] {
        let answer = app.post("/detect", &body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert!(
            answer.detail().contains(expected),
            "{body}: {}",
            answer.detail()
        );
    }
}
