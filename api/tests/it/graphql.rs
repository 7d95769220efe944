//! The GraphQL endpoint over HTTP on the embedded platform: the checked SDL, fit → predict →
//! series query, the REST error cases with their GraphQL codes, and the batch limit.

use anomaly_workers::detector::DetectorSpec;
use serde_json::{Value, json};

use crate::demo_scenario::T0;
use crate::support::{Http, eventually, spawn_app, spawn_app_with};

impl Http {
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let answer = self
            .post(
                "/graphql",
                &json!({ "query": query, "variables": variables }),
            )
            .await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.bytes)
        );
        answer.json()
    }
}

/// The `extensions.code` of a GraphQL answer's first error.
pub fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {answer}"))
}

const FIT: &str = "mutation($id: String!, $points: [PointInput!]!) {
    fit(seriesId: $id, points: $points) { seriesId version pointsUsed detector } }";

fn points(values: &[f64]) -> Value {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({ "timestamp": T0 + 60 * i as i64, "value": v }))
        .collect()
}

#[test]
fn schema_graphql_at_the_root_equals_anomaly_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.graphql at the root");
    assert!(
        committed == anomaly_api::graphql::sdl(),
        "schema.graphql is stale: run `cargo run -q -- schema > schema.graphql`"
    );
}

#[tokio::test]
async fn fit_predict_and_query_a_series_with_its_training_data() {
    let app = spawn_app().await;
    let fit = app
        .graphql(
            FIT,
            json!({ "id": "sensor_01", "points": points(&[10.0, 10.5, 11.0]) }),
        )
        .await;
    assert_eq!(
        fit["data"]["fit"],
        json!({ "seriesId": "sensor_01", "version": "v1", "pointsUsed": 3, "detector": "art" })
    );
    let refit = app
        .graphql(
            "mutation($id: String!, $points: [PointInput!]!) {
                fit(seriesId: $id, points: $points,
                    detector: { kind: ZSCORE, threshold: 3.0, direction: ABOVE }) { version detector } }",
            json!({ "id": "sensor_01", "points": points(&[10.0, 10.5, 11.0]) }),
        )
        .await;
    assert_eq!(
        refit["data"]["fit"],
        json!({ "version": "v2", "detector": "zscore" })
    );

    let predict = "mutation($p: PointInput!) { predict(seriesId: \"sensor_01\", point: $p) {
        anomaly score expected lower upper detector modelVersion timestamp value } }";
    eventually("the predictor uses v2", || async {
        let answer = app
            .graphql(
                predict,
                json!({ "p": { "timestamp": T0 + 600, "value": 10.5 } }),
            )
            .await;
        answer["data"]["predict"]["modelVersion"] == "v2"
    })
    .await;
    let spike = app
        .graphql(
            predict,
            json!({ "p": { "timestamp": T0 + 660, "value": 22.5 } }),
        )
        .await;
    let spike = &spike["data"]["predict"];
    assert_eq!(
        (spike["anomaly"].as_bool(), spike["detector"].as_str()),
        (Some(true), Some("zscore"))
    );
    assert!(spike["score"].as_f64().unwrap() > 1.0);
    assert!(
        spike["lower"].is_null(),
        "an `above` detector has no lower bound"
    );
    assert!(spike["upper"].as_f64().unwrap() < 22.5);

    let batch = app
        .graphql(
            "mutation($ps: [PointInput!]!) { predictBatch(seriesId: \"sensor_01\", points: $ps) { anomaly timestamp } }",
            json!({ "ps": [{ "timestamp": T0 + 700, "value": 10.4 }, { "timestamp": T0 + 760, "value": 40.0 }] }),
        )
        .await;
    assert_eq!(
        batch["data"]["predictBatch"],
        json!([{ "anomaly": false, "timestamp": T0 + 700 }, { "anomaly": true, "timestamp": T0 + 760 }])
    );

    let series = "{ series(id: \"sensor_01\") { id latest { version } models { version trainingData { timestamp value } } } }";
    eventually("both versions' training data are stored", || async {
        let answer = app.graphql(series, json!({})).await;
        let models = &answer["data"]["series"]["models"];
        models[0]["trainingData"]
            .as_array()
            .is_some_and(|d| d.len() == 3)
            && models[1]["trainingData"]
                .as_array()
                .is_some_and(|d| d.len() == 3)
    })
    .await;
    let answer = app.graphql(series, json!({})).await;
    let series = &answer["data"]["series"];
    assert_eq!(series["latest"]["version"], "v2");
    assert_eq!(
        series["models"][1]["trainingData"],
        points(&[10.0, 10.5, 11.0])
    );

    let model = app
        .graphql(
            "{ model(seriesId: \"sensor_01\", version: \"v1\") { version detector pointsUsed } }",
            json!({}),
        )
        .await;
    assert_eq!(
        model["data"]["model"],
        json!({ "version": "v1", "detector": "art", "pointsUsed": 3 })
    );
    let list = app
        .graphql(
            "{ seriesList(first: 10) { edges { cursor node { id } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["data"]["seriesList"]["edges"][0]["node"]["id"],
        "sensor_01"
    );
    assert_eq!(list["data"]["seriesList"]["pageInfo"]["hasNextPage"], false);
    let health = app
        .graphql("{ health { seriesTrained instances { role } } }", json!({}))
        .await;
    assert!(health["data"]["health"]["instances"].as_array().is_some());
}

#[tokio::test]
async fn the_rest_error_cases_have_graphql_twins_with_codes() {
    let app = spawn_app().await;
    let constant = app
        .graphql(
            FIT,
            json!({ "id": "flat", "points": points(&[5.0, 5.0, 5.0]) }),
        )
        .await;
    assert_eq!(code(&constant), "BAD_USER_INPUT");
    assert!(
        constant["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("constant")
    );
    let empty = app
        .graphql(FIT, json!({ "id": "empty", "points": [] }))
        .await;
    assert_eq!(
        (code(&empty), empty["errors"][0]["message"].as_str()),
        ("BAD_USER_INPUT", Some("No data points provided"))
    );
    let bad_id = app
        .graphql(
            FIT,
            json!({ "id": "no spaces/allowed", "points": points(&[1.0, 2.0, 3.0]) }),
        )
        .await;
    assert_eq!(code(&bad_id), "BAD_USER_INPUT");
    let untrained = app
        .graphql(
            "mutation { predict(seriesId: \"sensor_99\", point: { timestamp: 1, value: 1.0 }) { anomaly } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (code(&untrained), untrained["errors"][0]["message"].as_str()),
        ("NOT_FOUND", Some("Model not found"))
    );
    let bad_version = app
        .graphql(
            "{ model(seriesId: \"a\", version: \"1\") { version } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&bad_version), "BAD_USER_INPUT");
    assert!(
        app.graphql("{ series(id: \"nobody\") { id } }", json!({}))
            .await["data"]["series"]
            .is_null()
    );
}

#[tokio::test]
async fn batches_are_limited() {
    let app = spawn_app().await;
    let one = json!({ "query": "{ health { seriesTrained } }" });
    let ten: Vec<Value> = (0..10).map(|_| one.clone()).collect();
    let answer = app.post("/graphql", &Value::Array(ten)).await.json();
    assert_eq!(answer.as_array().map(Vec::len), Some(10));
    let eleven: Vec<Value> = (0..11).map(|_| one.clone()).collect();
    let refused = app.post("/graphql", &Value::Array(eleven)).await.json();
    assert_eq!(code(&refused), "BAD_USER_INPUT");

    let small = spawn_app_with(&[("GRAPHQL_BATCH_LIMIT", "2")]).await;
    let three: Vec<Value> = (0..3).map(|_| one.clone()).collect();
    let refused = small.post("/graphql", &Value::Array(three)).await.json();
    assert_eq!(code(&refused), "BAD_USER_INPUT");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2")
    );
}

#[tokio::test]
async fn with_an_api_token_requests_without_it_are_unauthenticated() {
    let app = spawn_app_with(&[("API_TOKEN", "s3cret")]).await;
    let query = json!({ "query": "{ health { seriesTrained } }" });
    let refused = app.post("/graphql", &query).await;
    assert_eq!(refused.status, 401);
    assert_eq!(code(&refused.json()), "UNAUTHENTICATED");
    let wrong = app
        .answer(
            app.client
                .post(format!("{}/graphql", app.base))
                .bearer_auth("guess")
                .json(&query),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let rest = app
        .fit("sensor_01", &crate::demo_scenario::fit_body(1))
        .await;
    assert_eq!(
        (rest.status, rest.detail()),
        (401, "Not authenticated".into())
    );

    let allowed = app
        .answer(
            app.client
                .post(format!("{}/graphql", app.base))
                .bearer_auth("s3cret")
                .json(&query),
        )
        .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.json()["data"]["health"]["seriesTrained"], 0);
    assert_eq!(
        app.get("/healthcheck").await.status,
        200,
        "probes stay open"
    );
}

#[tokio::test]
async fn get_runs_queries_only_and_bad_requests_get_graphql_errors() {
    let app = spawn_app().await;
    let query = app
        .get("/graphql?query=%7B%20health%20%7B%20seriesTrained%20%7D%20%7D")
        .await;
    assert_eq!(query.status, 200);
    assert_eq!(query.json()["data"]["health"]["seriesTrained"], 0);

    let mutation = app
        .get("/graphql?query=mutation%20%7B%20fit(seriesId%3A%20%22a%22%2C%20points%3A%20%5B%5D)%20%7B%20version%20%7D%20%7D")
        .await;
    assert_eq!(mutation.status, 405);
    assert_eq!(code(&mutation.json()), "BAD_USER_INPUT");

    let missing = app.get("/graphql").await;
    assert_eq!(missing.status, 400);
    assert_eq!(code(&missing.json()), "BAD_USER_INPUT");

    let not_json = app
        .answer(
            app.client
                .post(format!("{}/graphql", app.base))
                .header("content-type", "application/json")
                .body("{ not json"),
        )
        .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(code(&not_json.json()), "BAD_USER_INPUT");
}

/// Every kind of the detectors' registry is a `DetectorKind` (its name in capitals), and each
/// fits through GraphQL with all of its options spelt out (their defaults).
#[tokio::test]
async fn every_detector_kind_fits_with_its_options() {
    let app = spawn_app().await;
    let values: Vec<f64> = (0..40).map(|i| 10.0 + (i % 7) as f64 * 0.3).collect();
    for name in DetectorSpec::NAMES {
        let spec = serde_json::to_value(DetectorSpec::named(name).unwrap()).unwrap();
        let mut input = serde_json::Map::new();
        for (option, value) in spec.as_object().unwrap() {
            let camel = option
                .split('_')
                .enumerate()
                .map(|(i, w)| {
                    if i == 0 {
                        w.to_owned()
                    } else {
                        w[..1].to_uppercase() + &w[1..]
                    }
                })
                .collect::<String>();
            let value = match value.as_str() {
                Some(enum_value) => enum_value.to_uppercase().into(),
                None => value.clone(),
            };
            input.insert(camel, value);
        }
        let fit = app
            .graphql(
                "mutation($id: String!, $points: [PointInput!]!, $detector: DetectorInput!) {
                    fit(seriesId: $id, points: $points, detector: $detector) { detector } }",
                json!({ "id": format!("kind_{name}"), "points": points(&values), "detector": input }),
            )
            .await;
        assert_eq!(fit["data"]["fit"]["detector"], name, "{input:?}: {fit}");
    }
}
