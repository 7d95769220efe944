//! The GraphQL WebSocket's rules, as a careless or hostile client meets them: no
//! `connection_init` in time (4408), a subscription id used twice (4409), more subscriptions than
//! a connection may hold (4429, naming the limit), and a server shutting down (1001, so clients
//! reconnect elsewhere).

use std::time::Duration;

use async_graphql::futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::subscriptions::ANOMALIES;
use crate::support::{spawn_app, spawn_app_with};
use crate::ws_client::{GraphqlWs, Protocol};

const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_client_that_never_initialises_is_closed_with_4408() {
    let app = spawn_app_with(&[("GRAPHQL_WS_INIT_TIMEOUT_SECS", "0.3")]).await;
    let url = format!("{}/graphql/ws", app.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let closed = tokio::time::timeout(WITHIN, async {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Close(Some(frame)) = message {
                return Some((u16::from(frame.code), frame.reason.to_string()));
            }
        }
        None
    })
    .await
    .expect("closed in time");
    let (code, reason) = closed.expect("a close frame");
    assert_eq!(code, 4408, "{reason}");
}

#[tokio::test]
async fn a_subscription_id_used_twice_closes_with_4409() {
    let app = spawn_app().await;
    let mut ws = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    ws.subscribe("a", ANOMALIES, json!({ "id": "twice" })).await;
    ws.subscribe("a", ANOMALIES, json!({ "id": "twice" })).await;
    let (code, reason) = ws.closed(WITHIN).await.expect("closed");
    assert_eq!(code, 4409, "{reason}");
    assert!(reason.contains("already exists"), "{reason}");
}

#[tokio::test]
async fn subscriptions_past_the_connection_cap_close_with_4429() {
    let app = spawn_app_with(&[("GRAPHQL_WS_MAX_SUBSCRIPTIONS", "2")]).await;
    let mut ws = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    for id in ["a", "b", "c"] {
        ws.subscribe(id, ANOMALIES, json!({ "id": "capped" })).await;
    }
    let (code, reason) = ws.closed(WITHIN).await.expect("closed");
    assert_eq!(code, 4429, "{reason}");
    assert!(reason.contains("GRAPHQL_WS_MAX_SUBSCRIPTIONS"), "{reason}");
    // Another connection still gets its own.
    let mut other = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    other
        .subscribe("a", ANOMALIES, json!({ "id": "capped" }))
        .await;
    assert!(other.closed(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_server_shutting_down_closes_its_websockets_with_1001() {
    let app = spawn_app().await;
    let mut ws = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    ws.subscribe("a", ANOMALIES, json!({ "id": "leaving" }))
        .await;
    let _restarted = app.restart().await;
    let (code, reason) = ws.closed(WITHIN).await.expect("closed");
    assert_eq!(code, 1001, "{reason}");
}
