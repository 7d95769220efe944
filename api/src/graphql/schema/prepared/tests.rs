use super::*;
use async_graphql::Variables;
use async_graphql::parser::parse_query;

fn plan(document: &str) -> Option<Plan> {
    Plan::of(&parse_query(document).expect("the test document parses"))
}

const WITH_VARIABLES: &str = "mutation Score($id: String!, $p: PointInput!) {
    verdict: predict(seriesId: $id, point: $p) { a: anomaly score __typename } }";

fn request(variables: serde_json::Value) -> Request {
    Request::new(WITH_VARIABLES).variables(Variables::from_json(variables))
}

#[test]
fn a_plain_predict_with_literals_is_planned_with_its_fields_in_order() {
    let plan = plan(
        "mutation { predict(seriesId: \"s1\", point: { value: 2, timestamp: 1700000000 }) {
            modelVersion anomaly s: score } }",
    )
    .expect("planned");
    assert_eq!(plan.key.as_str(), "predict");
    let keys: Vec<_> = plan.fields.iter().map(|(k, f)| (k.as_str(), *f)).collect();
    assert_eq!(
        keys,
        [
            ("modelVersion", PredictionField::ModelVersion),
            ("anomaly", PredictionField::Anomaly),
            ("s", PredictionField::Score),
        ]
    );
    let request = Request::new("");
    let (series_id, point) = plan.arguments(&request).expect("arguments");
    assert_eq!(series_id, "s1");
    assert_eq!((point.timestamp, point.value), (1_700_000_000, 2.0));
}

#[test]
fn variables_are_read_only_when_they_are_exactly_those_declared_and_well_shaped() {
    let plan = plan(WITH_VARIABLES).expect("planned");
    assert_eq!(plan.key.as_str(), "verdict");
    let point = serde_json::json!({ "timestamp": 1_700_000_000, "value": 1.5 });
    let good = request(serde_json::json!({ "id": "s1", "p": point }));
    let (series_id, read) = plan.arguments(&good).expect("arguments");
    assert_eq!(
        (series_id, read.timestamp, read.value),
        ("s1", 1_700_000_000, 1.5)
    );
    assert!(plan.arguments(&good.operation_name("Score")).is_some());
    // Each of these goes to the executor, which gives its own error (or answer).
    let refused = [
        serde_json::json!({ "id": "s1" }),
        serde_json::json!({ "id": "s1", "p": point, "extra": 1 }),
        serde_json::json!({ "id": 7, "p": point }),
        serde_json::json!({ "id": "s1", "p": null }),
        serde_json::json!({ "id": "s1", "p": { "timestamp": 1.5, "value": 1 } }),
        serde_json::json!({ "id": "s1", "p": { "timestamp": 1, "value": "1" } }),
        serde_json::json!({ "id": "s1", "p": { "timestamp": 1, "value": 1, "x": 0 } }),
        serde_json::json!({ "id": "s1", "p": { "timestamp": 1 } }),
    ];
    for variables in refused {
        assert!(
            plan.arguments(&request(variables.clone())).is_none(),
            "{variables}"
        );
    }
    let misnamed = request(serde_json::json!({ "id": "s1", "p": point })).operation_name("Other");
    assert!(plan.arguments(&misnamed).is_none());
    let anonymous = plan_of_anonymous();
    let named = Request::new("").operation_name("Score");
    assert!(anonymous.arguments(&named).is_none());
}

fn plan_of_anonymous() -> Plan {
    plan("mutation { predict(seriesId: \"s1\", point: { timestamp: 1, value: 1 }) { score } }")
        .expect("planned")
}

#[test]
fn anything_but_one_plain_predict_is_left_to_the_executor() {
    let unplanned = [
        // Other operations and fields.
        "query { health { seriesTrained } }",
        "mutation { predictBatch(seriesId: \"s\", points: []) { score } }",
        "mutation { a: predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) { score }
                    b: predict(seriesId: \"s\", point: { timestamp: 2, value: 1 }) { score } }",
        "mutation A { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) { score } }
         mutation B { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) { score } }",
        // Fragments and directives.
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) { ...F } }
         fragment F on Prediction { score }",
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) {
            ... on Prediction { score } } }",
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) {
            score @include(if: true) } }",
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) @skip(if: false) {
            score } }",
        // Fields it does not know, or selected twice under one key.
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) { score nope } }",
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1, value: 1 }) { score score } }",
        // Arguments and variables not as the executor checked them.
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1, value: 1, x: 2 }) { score } }",
        "mutation { predict(seriesId: \"s\", point: { timestamp: 1.5, value: 1 }) { score } }",
        "mutation { predict(seriesId: \"s\") { score } }",
        "mutation($t: Int!) { predict(seriesId: \"s\", point: { timestamp: $t, value: 1 }) { score } }",
        "mutation($id: String) { predict(seriesId: $id, point: { timestamp: 1, value: 1 }) { score } }",
        "mutation($id: String! = \"s\") { predict(seriesId: $id, point: { timestamp: 1, value: 1 }) {
            score } }",
        "mutation($id: String!, $unused: Int!) { predict(seriesId: $id,
            point: { timestamp: 1, value: 1 }) { score } }",
        "mutation($p: [PointInput!]!) { predict(seriesId: \"s\", point: $p) { score } }",
    ];
    for document in unplanned {
        assert!(plan(document).is_none(), "{document}");
    }
}
