//! The edge's HTTP conveniences: request ids, compression of larger answers, and CORS for the
//! configured origins only.

use crate::support::{spawn_app, spawn_app_with};

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/healthcheck", app.base))
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    let response = app
        .client
        .get(format!("{}/nowhere", app.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn larger_answers_are_compressed_for_clients_that_accept_it() {
    let app = spawn_app().await;
    let get = |path: &str, encoding: &str| {
        app.client
            .get(format!("{}{path}", app.base))
            .header("accept-encoding", encoding)
            .send()
    };
    let script = get("/graphql/assets/graphiql.min.js", "gzip")
        .await
        .unwrap();
    assert_eq!(script.headers()["content-encoding"], "gzip");
    let script = get("/graphql/assets/graphiql.min.js", "br").await.unwrap();
    assert_eq!(script.headers()["content-encoding"], "br");
    let compressed = script.bytes().await.unwrap().len();
    assert!(compressed < 2_000_000, "{compressed} bytes");
    let small = get("/livez", "gzip, br").await.unwrap();
    assert!(small.headers().get("content-encoding").is_none());
    let plain = get("/graphql/assets/graphiql.min.js", "identity")
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    // A client that accepts no encoding skips the compression layer and gets the whole file.
    let unasked = app
        .client
        .get(format!("{}/graphql/assets/graphiql.min.js", app.base))
        .send()
        .await
        .unwrap();
    assert!(unasked.headers().get("content-encoding").is_none());
    assert!(unasked.headers().get("x-request-id").is_some());
    let whole = unasked.bytes().await.unwrap().len();
    assert_eq!(whole, plain.bytes().await.unwrap().len());
    assert!(whole > compressed, "{whole} bytes");
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let app = spawn_app_with(&[("CORS_ORIGINS", "https://dash.example.com")]).await;
    let preflight = |origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let allowed = preflight("https://dash.example.com").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dash.example.com"
    );
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let closed = spawn_app().await;
    let answer = closed
        .client
        .get(format!("{}/healthcheck", closed.base))
        .header("origin", "https://dash.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
