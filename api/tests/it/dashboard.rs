//! The dashboard's embedded files as the gateway serves them; the page's behaviour in a browser
//! is tested by `dashboard/test/browser.mjs` (run by `.ci/run`).

use crate::support::{spawn_app, spawn_app_with};

#[tokio::test]
async fn the_dashboard_and_its_assets_are_served_from_the_binary() {
    let app = spawn_app().await;
    for path in ["/dashboard", "/dashboard/"] {
        let page = app.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        let html = String::from_utf8_lossy(&page.bytes);
        assert!(html.contains(r#"src="/dashboard/assets/app.js""#), "{html}");
        assert!(
            html.contains(r#"href="/dashboard/assets/app.css""#),
            "{html}"
        );
    }
    let script = app.get("/dashboard/assets/app.js").await;
    assert_eq!(script.status, 200);
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");
    assert!(
        String::from_utf8_lossy(&script.bytes).contains("/graphql/ws"),
        "the script talks to the gateway's own subscription endpoint"
    );
    let style = app.get("/dashboard/assets/app.css").await;
    assert_eq!(style.status, 200);
    assert_eq!(style.content_type, "text/css; charset=utf-8");

    let missing = app.get("/dashboard/assets/nope.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.detail(), "Not Found");
}

#[tokio::test]
async fn browsers_revalidate_with_the_etag() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/dashboard/assets/app.js", app.base))
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("connect-src 'self'")
    );
    let etag = headers["etag"].clone();
    let again = app
        .answer(
            app.client
                .get(format!("{}/dashboard/assets/app.js", app.base))
                .header("if-none-match", etag),
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.bytes.is_empty());
}

#[tokio::test]
async fn the_page_is_public_but_its_data_needs_the_token() {
    let app = spawn_app_with(&[("API_TOKEN", "s3cret")]).await;
    assert_eq!(app.get("/dashboard").await.status, 200);
    assert_eq!(app.get("/dashboard/assets/app.js").await.status, 200);
    let data = app
        .post(
            "/graphql",
            &serde_json::json!({ "query": "{ health { seriesTrained } }" }),
        )
        .await;
    assert_eq!(data.status, 401);
}
