//! Signed webhooks: an endpoint registered over REST gets every alert POSTed with Standard
//! Webhooks headers whose signature a receiver checks with the secret it was given; a receiver
//! that fails is retried with backoff, every attempt is in the delivery log, and a delivery
//! can be replayed. Bad registrations get clear 4xx.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::demo_scenario::{T0, fit_body};
use crate::support::{eventually, serve, spawn_app_with};

/// What a receiver saw: the Standard Webhooks headers and the body.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Bytes,
}

/// A receiver on port 0 that answers 500 to the first `failures` messages, then 200.
async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut seen = keep.lock().unwrap();
                seen.push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body,
                });
                if seen.len() <= failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    (format!("{}/hook", serve(app).await), seen)
}

/// Whether `received` is signed with `secret`, checked as a receiver would (not with anomaly's
/// own code).
fn signed_with(secret: &str, received: &Received) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", received.id, received.timestamp).as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    received.signature.split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn alerts_reach_a_registered_endpoint_signed_retried_logged_and_replayable() {
    let app = spawn_app_with(&[("WEBHOOK_FIRST_BACKOFF_MS", "20")]).await;
    let (url, seen) = receiver(2).await;
    let registered = app.post("/webhooks", &json!({ "url": url })).await;
    assert_eq!(
        registered.status,
        201,
        "{}",
        String::from_utf8_lossy(&registered.bytes)
    );
    let registered = registered.json();
    let (webhook_id, secret) = (
        registered["id"].as_str().unwrap().to_owned(),
        registered["secret"].as_str().unwrap().to_owned(),
    );
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = app.get("/webhooks").await.json();
    assert_eq!(listed["webhooks"][0]["id"], webhook_id.as_str());
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "secrets are shown once"
    );

    assert_eq!(app.fit("hooked", &fit_body(1)).await.status, 200);
    let spike = app.predict("hooked", T0 + 600, 99.0).await.json();
    assert_eq!(spike["alert"], true, "{spike}");

    eventually("the third attempt is answered 200", || async {
        seen.lock().unwrap().len() >= 3
    })
    .await;
    let received = seen.lock().unwrap().clone();
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "one message id across attempts"
    );
    for attempt in &received {
        assert!(signed_with(&secret, attempt), "{attempt:?}");
    }
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["type"], "anomaly.alert");
    assert_eq!(body["data"]["series_id"], "hooked");
    assert_eq!(body["data"]["value"], 99.0);

    let log_path = format!("/webhooks/{webhook_id}/deliveries");
    eventually("the log shows the delivery", || async {
        let log = app.get(&log_path).await.json();
        log["deliveries"][0]["delivered"] == true
    })
    .await;
    let log = app.get(&log_path).await.json();
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["id"], received[0].id.as_str());
    let statuses: Vec<_> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(500), json!(500), json!(200)]);

    let replayed = app
        .post(&format!("{log_path}/{}/replay", received[0].id), &json!({}))
        .await;
    assert_eq!(
        replayed.status,
        200,
        "{}",
        String::from_utf8_lossy(&replayed.bytes)
    );
    assert_eq!(replayed.json()["attempts"].as_array().unwrap().len(), 4);
    let again = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(again.id, received[0].id);
    assert!(signed_with(&secret, &again));

    let remove = app
        .answer(
            app.client
                .delete(format!("{}/webhooks/{webhook_id}", app.base)),
        )
        .await;
    assert_eq!(remove.status, 204);
    assert_eq!(app.get(&log_path).await.status, 404);
}

#[tokio::test]
async fn bad_registrations_and_ids_get_clear_answers() {
    let app = spawn_app_with(&[
        ("WEBHOOK_MAX_ENDPOINTS", "1"),
        ("API_TOKEN", "full"),
        ("API_READ_TOKEN", "viewer"),
    ])
    .await;
    let post = |body: Value, token: &'static str| {
        app.answer(
            app.client
                .post(format!("{}/webhooks", app.base))
                .bearer_auth(token)
                .json(&body),
        )
    };
    for bad in [
        json!({ "url": "ftp://x/hook" }),
        json!({ "url": "http://" }),
        json!({ "url": format!("http://x/{}", "a".repeat(3000)) }),
        json!({ "url": "http://x/hook", "secret": "plain" }),
        json!({ "url": "http://x/hook", "secret": "whsec_c2hvcnQ=" }),
        json!({ "url": "http://x/hook", "extra": 1 }),
    ] {
        let answer = post(bad.clone(), "full").await;
        assert_eq!(
            answer.status,
            400,
            "{bad}: {}",
            String::from_utf8_lossy(&answer.bytes)
        );
    }
    assert_eq!(
        post(json!({ "url": "http://x/hook" }), "viewer")
            .await
            .status,
        403
    );
    let own = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let first = post(json!({ "url": "http://x/hook", "secret": own }), "full").await;
    assert_eq!(first.status, 201);
    assert_eq!(first.json()["secret"], own);
    let second = post(json!({ "url": "http://y/hook" }), "full").await;
    assert_eq!(second.status, 400);
    assert!(
        second.detail().contains("WEBHOOK_MAX_ENDPOINTS"),
        "{}",
        second.detail()
    );
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let delete = |path: String, token: &'static str| {
        app.answer(
            app.client
                .delete(format!("{}{path}", app.base))
                .bearer_auth(token),
        )
    };
    assert_eq!(
        delete(format!("/webhooks/{id}"), "viewer").await.status,
        403
    );
    assert_eq!(
        delete("/webhooks/not-a-uuid".into(), "full").await.status,
        400
    );
    let unknown = "/webhooks/00000000-0000-0000-0000-000000000000";
    assert_eq!(delete(unknown.into(), "full").await.status, 404);
    let read = |path: String| {
        app.answer(
            app.client
                .get(format!("{}{path}", app.base))
                .bearer_auth("viewer"),
        )
    };
    assert_eq!(
        read(format!("/webhooks/{id}/deliveries?limit=0"))
            .await
            .status,
        400
    );
    assert_eq!(read(format!("/webhooks/{id}/deliveries")).await.status, 200);
    let replay = app
        .answer(
            app.client
                .post(format!(
                    "{}/webhooks/{id}/deliveries/00000000-0000-0000-0000-000000000000/replay",
                    app.base
                ))
                .bearer_auth("full"),
        )
        .await;
    assert_eq!(replay.status, 404);
    assert_eq!(delete(format!("/webhooks/{id}"), "full").await.status, 204);
}

/// The same endpoints over GraphQL: register (the secret shown once), list, read the log,
/// remove; the read-only token may list but not register.
#[tokio::test]
async fn endpoints_are_managed_over_graphql_too() {
    let app = spawn_app_with(&[("API_TOKEN", "full"), ("API_READ_TOKEN", "viewer")]).await;
    let graphql = |query: String, token: &'static str| {
        app.answer(
            app.client
                .post(format!("{}/graphql", app.base))
                .bearer_auth(token)
                .json(&json!({ "query": query })),
        )
    };
    let registered = graphql(
        r#"mutation { registerWebhook(url: "http://127.0.0.1:9/hook") { id url secret createdAt } }"#.into(),
        "full",
    )
    .await
    .json();
    let hook = &registered["data"]["registerWebhook"];
    assert!(
        hook["secret"].as_str().unwrap().starts_with("whsec_"),
        "{registered}"
    );
    assert!(
        hook["createdAt"].as_str().unwrap().ends_with('Z'),
        "{registered}"
    );
    let id = hook["id"].as_str().unwrap().to_owned();
    let refused = graphql(
        r#"mutation { registerWebhook(url: "http://127.0.0.1:9/other") { id } }"#.into(),
        "viewer",
    )
    .await
    .json();
    assert!(refused["errors"].is_array(), "{refused}");
    let listed = graphql(
        format!(r#"{{ webhooks {{ id url }} webhookDeliveries(webhookId: "{id}") {{ id }} }}"#),
        "viewer",
    )
    .await
    .json();
    assert_eq!(listed["data"]["webhooks"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["data"]["webhookDeliveries"], json!([]), "{listed}");
    let bad = graphql(
        r#"mutation { registerWebhook(url: "nope") { id } }"#.into(),
        "full",
    )
    .await
    .json();
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{bad}"
    );
    let deleted = graphql(
        format!(r#"mutation {{ deleteWebhook(id: "{id}") }}"#),
        "full",
    )
    .await
    .json();
    assert_eq!(deleted["data"]["deleteWebhook"], true, "{deleted}");
    let again = graphql(
        format!(r#"mutation {{ deleteWebhook(id: "{id}") }}"#),
        "full",
    )
    .await
    .json();
    assert_eq!(
        again["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{again}"
    );
}

/// A delivery its process could not finish (the receiver was down, then the process stopped)
/// is resumed by the next start and reaches the receiver once it is up.
#[tokio::test]
async fn an_undelivered_message_is_resumed_after_a_restart() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Nothing listens on `port` yet: the first attempt is refused, the next one waits a while.
    let app = spawn_app_with(&[("WEBHOOK_FIRST_BACKOFF_MS", "1500")]).await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let registered = app.post("/webhooks", &json!({ "url": url })).await.json();
    let webhook_id = registered["id"].as_str().unwrap().to_owned();
    assert_eq!(app.fit("resumed", &fit_body(1)).await.status, 200);
    assert_eq!(
        app.predict("resumed", T0 + 600, 99.0).await.json()["alert"],
        true
    );
    let log_path = format!("/webhooks/{webhook_id}/deliveries");
    eventually("the refused attempt is logged", || async {
        let log = app.get(&log_path).await.json();
        log["deliveries"][0]["attempts"][0]["error"].is_string()
    })
    .await;
    let app = app.restart().await;

    let seen = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let keep = seen.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    eventually("the resumed delivery arrives", || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    let body: Value = serde_json::from_slice(&seen.lock().unwrap()[0]).unwrap();
    assert_eq!(body["data"]["series_id"], "resumed");
    eventually("the log shows it delivered", || async {
        app.get(&log_path).await.json()["deliveries"][0]["delivered"] == true
    })
    .await;
}
