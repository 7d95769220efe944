//! `GET /metrics`: Prometheus text whose counters move with what the platform does.

use serde_json::json;

use crate::demo_scenario::{T0, fit_body};
use crate::support::{eventually, spawn_app_with};

/// The value of the sample `name{labels}` (labels as Prometheus prints them, or empty).
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name_and_labels).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn counters_move_after_a_fit_and_a_predict() {
    let app = spawn_app_with(&[("API_TOKEN", "t")]).await;
    let authorised = |request: reqwest::RequestBuilder| request.bearer_auth("t");
    let fit = app
        .answer(authorised(
            app.client
                .post(format!("{}/fit/sensor_m", app.base))
                .json(&fit_body(1)),
        ))
        .await;
    assert_eq!(fit.status, 200);
    let predict = app
        .answer(authorised(
            app.client
                .post(format!("{}/predict/sensor_m", app.base))
                .json(&json!({ "timestamp": T0 + 600, "value": 99.0 })),
        ))
        .await;
    assert_eq!(predict.status, 200);
    let graphql = app
        .answer(authorised(
            app.client
                .post(format!("{}/graphql", app.base))
                .json(&json!({ "query": "{ health { seriesTrained } }" })),
        ))
        .await;
    assert_eq!(graphql.status, 200);

    // On Kafka the training-data consumer writes (and counts) a fit's points just after the
    // fit answers.
    eventually("the fit's training points are counted", || async {
        let text = String::from_utf8(app.get("/metrics").await.bytes).unwrap();
        sample(&text, "anomaly_training_points_written_total").is_some_and(|n| n >= 3.0)
    })
    .await;
    // Public, like the probes: scrapers carry no token.
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.content_type.starts_with("text/plain"),
        "{}",
        answer.content_type
    );
    let text = String::from_utf8(answer.bytes).unwrap();
    let at_least = |name: &str, min: f64| {
        let value = sample(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
        assert!(value >= min, "{name} = {value}");
    };
    at_least("anomaly_fits_total", 1.0);
    at_least("anomaly_training_points_written_total", 3.0);
    at_least("anomaly_predictions_total", 1.0);
    at_least("anomaly_model_cache_series", 1.0);
    at_least(
        r#"anomaly_http_requests_total{method="POST",route="/fit/{series_id}",status="200"}"#,
        1.0,
    );
    at_least(
        r#"anomaly_http_request_duration_seconds_count{method="POST",route="/predict/{series_id}"}"#,
        1.0,
    );
    at_least(r#"anomaly_graphql_operations_total{type="query"}"#, 1.0);
    assert!(
        text.contains("anomaly_http_request_duration_seconds_bucket{"),
        "a histogram, not a summary"
    );
    // Series ids are never labels.
    assert!(!text.contains("sensor_m"), "{text}");
}
