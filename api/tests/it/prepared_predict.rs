//! The prepared `predict` mutation: once async-graphql has run a plain `predict` document, the
//! gateway runs that text without the executor. Its answers must be the executor's, byte for
//! byte: the same document is sent again and again (the first answer is the executor's, the
//! next ones the plan's), and as a one-operation batch (batches always go to the executor).
//! `zscore` learns nothing online, so one point gets one verdict however often it is sent.

use serde_json::{Value, json};

use crate::demo_scenario::T0;
use crate::support::{Answer, TestApp, spawn_app};

const SERIES: &str = "prepared_1";

async fn fitted() -> TestApp {
    let app = spawn_app().await;
    let points: Vec<Value> = (0..30)
        .map(|i| json!({ "timestamp": T0 + 60 * i, "value": 10.0 + (i % 3) as f64 }))
        .collect();
    let fit = app
        .graphql(
            "mutation($id: String!, $points: [PointInput!]!) {
                fit(seriesId: $id, points: $points, detector: { kind: ZSCORE }) { version } }",
            json!({ "id": SERIES, "points": points }),
        )
        .await;
    assert_eq!(fit["data"]["fit"]["version"], "v1", "{fit}");
    app
}

async fn post(app: &TestApp, body: &str) -> Answer {
    app.answer(
        app.client
            .post(format!("{}/graphql", app.base))
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

fn text(answer: &Answer) -> String {
    String::from_utf8(answer.bytes.clone()).expect("UTF-8")
}

/// `body` answered three times (the executor's answer, then the plan's twice) and in a batch
/// of one (the executor's): the same status, type and bytes each time.
async fn answered_alike(app: &TestApp, body: &Value) -> Value {
    let single = body.to_string();
    let first = post(app, &single).await;
    for _ in 0..2 {
        let again = post(app, &single).await;
        assert_eq!(
            (again.status, &again.content_type, text(&again)),
            (first.status, &first.content_type, text(&first)),
            "{single}"
        );
    }
    let batch = post(app, &format!("[{single}]")).await;
    assert_eq!(batch.status, first.status);
    assert_eq!(text(&batch), format!("[{}]", text(&first)), "{single}");
    first.json()
}

/// `anomaly_graphql_prepared_total`, as `/metrics` shows it (0 before its first increment).
async fn prepared_total(app: &TestApp) -> f64 {
    let metrics = text(&app.get("/metrics").await);
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("anomaly_graphql_prepared_total "))
        .map_or(0.0, |value| value.parse().expect("a number"))
}

#[tokio::test]
async fn a_prepared_predict_answers_byte_for_byte_as_the_executor() {
    let app = fitted().await;
    let before = prepared_total(&app).await;
    let literal = format!(
        "mutation {{ predict(seriesId: \"{SERIES}\", point: {{ timestamp: {}, value: 10.5 }}) {{
            modelVersion anomaly score expected lower upper detector seriesId timestamp value
            alert __typename }} }}",
        T0 + 3_600
    );
    let answer = answered_alike(&app, &json!({ "query": literal })).await;
    assert_eq!(answer["data"]["predict"]["modelVersion"], "v1", "{answer}");
    assert_eq!(answer["data"]["predict"]["__typename"], "Prediction");
    // Its plan ran for the two answers after the first.
    assert!(prepared_total(&app).await >= before + 2.0);

    let named = "mutation Score($id: String!, $p: PointInput!) {
        verdict: predict(seriesId: $id, point: $p) { a: anomaly s: score v: modelVersion upper } }";
    let spike = json!({ "timestamp": T0 + 3_660, "value": 60 });
    let answer = answered_alike(
        &app,
        &json!({ "query": named, "operationName": "Score",
                 "variables": { "id": SERIES, "p": spike } }),
    )
    .await;
    assert_eq!(answer["data"]["verdict"]["a"], true, "{answer}");
    // Without the operation's name, and with the fields in another order.
    let unnamed = json!({ "query": named, "variables": { "p": spike, "id": SERIES } });
    answered_alike(&app, &unnamed).await;
}

#[tokio::test]
async fn a_prepared_predict_reports_errors_as_the_executor() {
    let app = fitted().await;
    let document = "mutation($id: String!, $p: PointInput!) {
        predict(seriesId: $id, point: $p) { score } }";
    let point = json!({ "timestamp": T0 + 3_600, "value": 10.5 });
    let good = json!({ "query": document, "variables": { "id": SERIES, "p": point } });
    answered_alike(&app, &good).await;
    // Planned now: these run the plan (the resolver's errors), or go to the executor (the
    // variables' errors), and answer as the executor does.
    let cases = [
        (json!({ "id": "no_such_series", "p": point }), "NOT_FOUND"),
        (json!({ "id": "bad id!", "p": point }), "BAD_USER_INPUT"),
        (
            json!({ "id": SERIES, "p": { "timestamp": T0, "value": "high" } }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        // The executor's own error, given a code by the guard.
        (json!({ "id": SERIES }), "BAD_USER_INPUT"),
    ];
    for (variables, code) in cases {
        let body = json!({ "query": document, "variables": variables });
        let answer = answered_alike(&app, &body).await;
        assert!(answer["data"].is_null(), "{answer}");
        let got = answer["errors"][0]["extensions"]["code"].as_str();
        assert_eq!(got, Some(code), "{answer}");
    }
}

#[tokio::test]
async fn the_read_only_token_is_refused_a_planned_predict() {
    let app = crate::support::spawn_app_with(&[("API_TOKEN", "w"), ("API_READ_TOKEN", "r")]).await;
    let post_as = |token: &'static str, body: &Value| {
        app.answer(
            app.client
                .post(format!("{}/graphql", app.base))
                .bearer_auth(token)
                .json(body),
        )
    };
    let fit = json!({ "query": "mutation { fit(seriesId: \"s\", points: [
        { timestamp: 1700000000, value: 1 }, { timestamp: 1700000060, value: 2 },
        { timestamp: 1700000120, value: 3 }], detector: { kind: ZSCORE }) { version } }" });
    assert_eq!(post_as("w", &fit).await.status, 200);
    let predict = json!({ "query": "mutation { predict(seriesId: \"s\",
        point: { timestamp: 1700000180, value: 2 }) { score } }" });
    for _ in 0..2 {
        let answer = post_as("w", &predict).await;
        assert!(
            answer.json()["data"]["predict"]["score"].is_number(),
            "{}",
            text(&answer)
        );
    }
    let refused = post_as("r", &predict).await;
    assert_eq!(
        refused.json()["errors"][0]["extensions"]["code"],
        "FORBIDDEN",
        "{}",
        text(&refused)
    );
}
