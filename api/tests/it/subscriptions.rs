//! GraphQL subscriptions over a real WebSocket on the embedded platform: an anomaly reaches the
//! subscriber of its series with its score and bounds, and nobody else; both subprotocols work;
//! the API token is checked at `connection_init`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::demo_scenario::T0;
use crate::support::{DEADLINE, Http, spawn_app, spawn_app_with};
use crate::ws_client::{GraphqlWs, Protocol, Refused};

pub const ANOMALIES: &str = "subscription($id: String) { anomalies(seriesId: $id) {
    seriesId anomaly score expected lower upper detector modelVersion timestamp value } }";

/// Fits `series` on a steady signal around 10 with a z-score detector, which does not learn
/// online: however many spikes a test scores, 10.2 stays normal and 1000 anomalous.
pub async fn fit_steady(http: &Http, series: &str) {
    let points: Vec<Value> = (0..60)
        .map(|i| json!({ "timestamp": T0 + 60 * i, "value": 10.0 + (i % 5) as f64 * 0.1 }))
        .collect();
    let answer = http
        .graphql(
            "mutation($id: String!, $points: [PointInput!]!) {
                fit(seriesId: $id, points: $points, detector: { kind: ZSCORE }) { version } }",
            json!({ "id": series, "points": points }),
        )
        .await;
    assert_eq!(answer["data"]["fit"]["version"], "v1", "{answer}");
}

/// Scores normal-then-anomalous pairs on `series` (each anomalous point a new alert) until every
/// one of `clients` has received a result; returns the first result of each, in order.
/// Subscriptions start asynchronously, so the first alerts may come before anyone listens.
pub async fn alert_until_received(
    http: &Http,
    series: &str,
    clients: &mut [&mut GraphqlWs],
) -> Vec<(String, Value)> {
    let started = Instant::now();
    let mut timestamp = T0 + 3_600 * 24;
    let mut results: Vec<Option<(String, Value)>> = vec![None; clients.len()];
    while results.iter().any(Option::is_none) {
        assert!(
            started.elapsed() < DEADLINE,
            "{} of {} subscribers received no anomaly of {series}",
            results.iter().filter(|r| r.is_none()).count(),
            clients.len()
        );
        for value in [10.2, 1_000.0] {
            timestamp += 60;
            let answer = http.predict(series, timestamp, value).await;
            assert_eq!(
                answer.status,
                200,
                "{}",
                String::from_utf8_lossy(&answer.bytes)
            );
        }
        for (client, result) in clients.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                *result = client.next_result(Duration::from_millis(300)).await;
            }
        }
    }
    results.into_iter().flatten().collect()
}

/// The anomaly carried by a subscription result, checked for its evidence.
pub fn assert_anomaly_of(result: &(String, Value), series: &str) {
    let anomaly = &result.1["data"]["anomalies"];
    assert_eq!(anomaly["seriesId"], series, "{anomaly}");
    assert_eq!(anomaly["anomaly"], true);
    assert!(anomaly["score"].as_f64().unwrap() > 1.0, "{anomaly}");
    let upper = anomaly["upper"].as_f64().expect("an upper bound");
    let lower = anomaly["lower"].as_f64().expect("a lower bound");
    let value = anomaly["value"].as_f64().expect("the value");
    assert!(
        lower <= upper && !(lower..=upper).contains(&value),
        "{anomaly}"
    );
    assert_eq!(anomaly["modelVersion"], "v1");
}

#[tokio::test]
async fn an_anomaly_reaches_the_subscribers_of_its_series_only() {
    let app = spawn_app().await;
    fit_steady(&app, "pump_a").await;
    fit_steady(&app, "pump_b").await;

    // B listens first (legacy protocol) and proves it is live with an anomaly of its own.
    let mut b = GraphqlWs::connect(&app.base, Protocol::Legacy, json!({}))
        .await
        .expect("connected");
    b.subscribe("b", ANOMALIES, json!({ "id": "pump_b" })).await;
    let live = alert_until_received(&app, "pump_b", &mut [&mut b]).await;
    assert_anomaly_of(&live[0], "pump_b");

    let mut a = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    a.subscribe("a", ANOMALIES, json!({ "id": "pump_a" })).await;
    let received = alert_until_received(&app, "pump_a", &mut [&mut a]).await;
    assert_eq!(received[0].0, "a");
    assert_anomaly_of(&received[0], "pump_a");

    // The in-process bus keeps order: had B been sent pump_a's anomalies, they would come first.
    let after = alert_until_received(&app, "pump_b", &mut [&mut b]).await;
    assert_eq!(after[0].0, "b");
    assert_anomaly_of(&after[0], "pump_b");
}

#[tokio::test]
async fn every_scored_point_reaches_a_predictions_subscriber() {
    let app = spawn_app().await;
    fit_steady(&app, "pump_c").await;
    let mut client = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    client
        .subscribe(
            "p",
            "subscription { predictions(seriesId: \"pump_c\") { seriesId anomaly value } }",
            json!({}),
        )
        .await;
    let received = alert_until_received(&app, "pump_c", &mut [&mut client]).await;
    let prediction = &received[0].1["data"]["predictions"];
    assert_eq!(prediction["seriesId"], "pump_c");
    assert!(prediction["value"] == 10.2 || prediction["value"] == 1_000.0);
}

#[tokio::test]
async fn a_websocket_without_the_api_token_is_refused() {
    let app = spawn_app_with(&[("API_TOKEN", "s3cret")]).await;
    for protocol in [Protocol::TransportWs, Protocol::Legacy] {
        let refused = GraphqlWs::connect(&app.base, protocol, json!({ "token": "guess" })).await;
        match refused {
            Ok(_) => panic!("{protocol:?} connected without the right token"),
            // graphql-transport-ws closes with 4403 Forbidden.
            Err(Refused::Closed(code, reason)) => {
                assert_eq!(protocol, Protocol::TransportWs);
                assert_eq!(code, 4403, "{reason}");
            }
            // The legacy protocol answers connection_error with the reason.
            Err(Refused::Error(message)) => {
                assert_eq!(protocol, Protocol::Legacy);
                assert_eq!(message["type"], "connection_error", "{message}");
            }
        }
        GraphqlWs::connect(
            &app.base,
            protocol,
            json!({ "Authorization": "Bearer s3cret" }),
        )
        .await
        .unwrap_or_else(|e| panic!("{protocol:?} refused with the token: {e:?}"));
    }
}

/// A message over `MAX_BODY_BYTES` is not read into memory: the connection closes with 1009.
#[tokio::test]
async fn an_oversized_websocket_message_closes_the_connection_with_1009() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "4096")]).await;
    let mut client = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    let padding = "x".repeat(20_000);
    client
        .send_text(
            json!({ "id": "1", "type": "subscribe",
                    "payload": { "query": "subscription { predictions(seriesId: \"s\") { value } }",
                                 "variables": { "pad": padding } } })
            .to_string(),
        )
        .await;
    let (code, reason) = client.closed(DEADLINE).await.expect("closed in time");
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("4096"), "{reason}");
    // The gateway still serves everyone else.
    assert!(
        GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
            .await
            .is_ok()
    );
}
