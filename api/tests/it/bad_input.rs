//! Bad input of every kind gets a clear 4xx with a `detail`, never a 500, and the server keeps
//! serving (README, "Errors").

use serde_json::json;

use crate::support::{eventually, spawn_app, spawn_app_with};

const TRAINING: &str = r#"{"data":[{"timestamp":1,"value":10.0},{"timestamp":2,"value":10.5},{"timestamp":3,"value":11.0}]}"#;

#[tokio::test]
async fn malformed_fit_bodies_get_400_with_a_detail() {
    let app = spawn_app().await;
    let cases = [
        (
            r#"{"data":[{"timestamp":1,"value":1e999},{"timestamp":2,"value":1},{"timestamp":3,"value":2}]}"#,
            "Invalid request payload",
        ),
        (
            r#"{"data":[{"timestamp":1,"value":"ten"},{"timestamp":2,"value":1},{"timestamp":3,"value":2}]}"#,
            "Invalid request payload",
        ),
        (
            r#"{"data":[{"timestamp":1,"value":NaN}]}"#,
            "Invalid request payload",
        ),
        (
            r#"{"data":[{"timestamp":1,"value":1},{"timestamp":2,"value":2}]}"#,
            "At least 3",
        ),
        (r#"{"timestamps":[1,2,3],"values":[1,2]}"#, "same length"),
        (
            r#"{"timestamps":[],"values":[]}"#,
            "No data points provided",
        ),
        (r#"{"timestamps":[1,2,3]}"#, "together"),
        (r#"{}"#, "No data points provided"),
        (r#"not json"#, "Invalid request payload"),
        (r#""#, "Invalid request payload"),
        (
            r#"{"data":[{"timestamp":1,"value":1},{"timestamp":2,"value":2},{"timestamp":3,"value":3}],"values":[1,2,3]}"#,
            "not both",
        ),
        (
            r#"{"timestamps":[1,2,3],"values":[1,2,3],"detector":{"kind":"zscore","threshold":-1}}"#,
            "threshold",
        ),
        (
            r#"{"timestamps":[1,2,3],"values":[1,2,3],"detector":{"kind":"crystal_ball"}}"#,
            "Invalid request payload",
        ),
    ];
    for (body, expected) in cases {
        let answer = app.post_raw("/fit/sensor_bad", body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert!(
            answer.detail().contains(expected),
            "{body}: {}",
            answer.detail()
        );
    }
}

#[tokio::test]
async fn malformed_predictions_get_400_with_a_detail() {
    let app = spawn_app().await;
    assert_eq!(app.post_raw("/fit/s1", TRAINING).await.status, 200);
    for body in [
        r#"{"timestamp":"now","value":10.5}"#,
        r#"{"timestamp":1,"value":1e999}"#,
        r#"{"timestamp":1,"value":null}"#,
        r#"{"timestamp":1}"#,
        r#"{"timestamp":1.5,"value":1}"#,
        r#"[1,2]"#,
    ] {
        let answer = app.post_raw("/predict/s1", body).await;
        assert_eq!(
            (answer.status, answer.detail().as_str()),
            (400, "Invalid request payload"),
            "{body}"
        );
    }
    // A body without a content type, as the seed's clients sent it, is accepted.
    let answer = app
        .post_raw("/predict/s1", r#"{"timestamp":1,"value":10.4}"#)
        .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn malformed_ids_and_versions_get_400() {
    let app = spawn_app().await;
    let long = "x".repeat(129);
    for path in [
        format!("/fit/{long}"),
        "/fit/has%20space".to_owned(),
        "/fit/semi%3Bcolon".to_owned(),
        "/predict/%C3%A9t%C3%A9".to_owned(),
    ] {
        let answer = app.post_raw(&path, TRAINING).await;
        assert_eq!(answer.status, 400, "{path}");
        assert!(
            answer.detail().starts_with("Invalid series_id"),
            "{path}: {}",
            answer.detail()
        );
    }
    for query in [
        "series_id=s1&version=1",
        "series_id=s1&version=v0",
        "series_id=s1&version=vx",
    ] {
        let answer = app.get(&format!("/plot?{query}")).await;
        assert_eq!(answer.status, 400, "{query}");
        assert!(answer.detail().starts_with("Invalid version"), "{query}");
    }
    let missing = app.get("/plot?series_id=s1").await;
    assert_eq!(missing.status, 400);
    assert!(missing.detail().contains("required"));
}

#[tokio::test]
async fn oversized_bodies_get_413_and_the_limit_is_configurable() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "4096")]).await;
    let values: Vec<f64> = (0..2000).map(f64::from).collect();
    let timestamps: Vec<i64> = (0..2000).collect();
    let big = json!({ "timestamps": timestamps, "values": values });
    let answer = app.post("/fit/big", &big).await;
    assert_eq!(answer.status, 413);
    assert!(answer.detail().contains("4096"), "{}", answer.detail());
    assert_eq!(
        app.post_raw("/fit/small", TRAINING).await.status,
        200,
        "still serving"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let app = spawn_app().await;
    let missing = app.get("/nowhere").await;
    assert_eq!(
        (missing.status, missing.detail().as_str()),
        (404, "Not Found")
    );
    let wrong = app.get("/fit/s1").await;
    assert_eq!(
        (wrong.status, wrong.detail().as_str()),
        (405, "Method Not Allowed")
    );
}

#[tokio::test]
async fn an_oversized_graphql_body_gets_413_with_a_code() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "4096")]).await;
    let padding = "x".repeat(20_000);
    let big = json!({ "query": "{ health { seriesTrained } }", "variables": { "pad": padding } });
    let answer = app.post("/graphql", &big).await;
    assert_eq!(answer.status, 413);
    let body = answer.json();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let small = json!({ "query": "{ health { seriesTrained } }" });
    let answer = app.post("/graphql", &small).await;
    assert_eq!(answer.status, 200, "still serving");
    assert_eq!(answer.json()["data"]["health"]["seriesTrained"], 0);
}

/// A cross-site form can post `text/plain` or a form encoding without a preflight: refused.
#[tokio::test]
async fn bodies_sent_as_anything_but_json_get_415() {
    let app = spawn_app().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let answer = app
            .answer(
                app.client
                    .post(format!("{}/fit/form", app.base))
                    .header("content-type", content_type)
                    .body(TRAINING),
            )
            .await;
        assert_eq!(
            (answer.status, answer.detail().as_str()),
            (415, "Send the body as application/json"),
            "{content_type}"
        );
    }
    let answer = app
        .answer(
            app.client
                .post(format!("{}/fit/json", app.base))
                .header("content-type", "application/json; charset=utf-8")
                .body(TRAINING),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        app.post_raw("/fit/bare", TRAINING).await.status,
        200,
        "no content type: JSON"
    );
}

/// The public healthcheck (and GraphQL `health`) lists only the most used series, however many
/// are predicted.
#[tokio::test]
async fn healthcheck_lists_only_the_most_used_series() {
    let app = spawn_app_with(&[("HEALTH_TOP_SERIES", "2")]).await;
    for (series, predictions) in [("rare", 1), ("busy", 4), ("busier", 6)] {
        assert_eq!(
            app.post_raw(&format!("/fit/{series}"), TRAINING)
                .await
                .status,
            200
        );
        for i in 0..predictions {
            assert_eq!(app.predict(series, 10 + i, 10.5).await.status, 200);
        }
    }
    eventually("every prediction is counted", || async {
        app.health().await["model_usage"] == json!({ "busy": 4, "busier": 6 })
    })
    .await;
    let usage = app
        .graphql(
            "{ health { modelUsage { seriesId predictions } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        usage["data"]["health"]["modelUsage"],
        json!([
            { "seriesId": "busier", "predictions": 6 },
            { "seriesId": "busy", "predictions": 4 }
        ]),
        "{usage}"
    );
}
