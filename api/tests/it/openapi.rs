//! `/openapi.json` describes the REST routes: every operation the gateway's routers register
//! (`openapi::operation`, so a new route without documentation fails here) is in it, every operation in it
//! exists, the detector schema lists every kind and option the detectors' registry has, and
//! `/docs` renders it from the gateway's own files.

use anomaly_workers::detector::DetectorSpec;
use serde_json::{Value, json};

use crate::support::{spawn_app, spawn_app_with};

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_exists() {
    let app = spawn_app_with(&[("API_TOKEN", "t")]).await;
    let answer = app.get("/openapi.json").await;
    assert_eq!(answer.status, 200, "public");
    let document = answer.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();

    // The app above built the gateway's router in this process: its operations are registered.
    let declared = anomaly_api::openapi::served_operations();
    assert!(declared.len() >= 9, "{declared:?}");
    assert!(declared.contains(&"/graphql"), "{declared:?}");
    for route in &declared {
        assert!(
            paths.contains_key(*route),
            "{route} is not in /openapi.json"
        );
    }

    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = format!(
                "{}{}",
                app.base,
                path.replace("{series_id}", "documented_series")
            );
            let request = match method.as_str() {
                "get" => app.client.get(&url),
                "post" => app.client.post(&url).json(&json!({})),
                "delete" => app.client.delete(&url),
                other => panic!("{other} {path}"),
            };
            let answer = app.answer(request.bearer_auth("t")).await;
            let unrouted = answer.status == 405
                || (answer.status == 404
                    && serde_json::from_slice::<Value>(&answer.bytes)
                        .is_ok_and(|b| b["detail"] == "Not Found"));
            assert!(!unrouted, "{method} {path}: {}", answer.status);
        }
    }
}

#[tokio::test]
async fn the_docs_page_renders_the_document_from_the_gateways_own_files() {
    let app = spawn_app().await;
    let page = app.get("/docs").await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.bytes).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for asset in [
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/start.js",
    ] {
        assert!(html.contains(asset), "{asset}");
        assert_eq!(app.get(asset).await.status, 200, "{asset}");
    }
    let start = String::from_utf8(app.get("/docs/assets/start.js").await.bytes).unwrap();
    assert!(start.contains("/openapi.json") && start.contains("validatorUrl: null"));
}

/// The `Detector` schema names every kind (the default first) and every option of every kind,
/// with a type its default value has.
#[tokio::test]
async fn the_detector_schema_has_every_kind_and_option() {
    let app = spawn_app().await;
    let document = app.get("/openapi.json").await.json();
    let detector = &document["components"]["schemas"]["Detector"];
    assert_eq!(detector["required"], json!(["kind"]));
    let properties = detector["properties"].as_object().unwrap();
    assert_eq!(properties["kind"]["type"], "string");
    assert_eq!(properties["kind"]["enum"], json!(DetectorSpec::NAMES));
    for name in DetectorSpec::NAMES {
        let spec = serde_json::to_value(DetectorSpec::named(name).unwrap()).unwrap();
        for (option, default) in spec.as_object().unwrap() {
            let schema = &properties[option];
            let fits = match schema["type"].as_str() {
                Some("number") => default.is_f64(),
                // `period`'s default is absent: found at fit time.
                Some("integer") => default.is_u64() || default.is_null(),
                Some("boolean") => default.is_boolean(),
                Some("string") => schema["enum"].as_array().unwrap().contains(default),
                _ => false,
            };
            assert!(fits, "{name}.{option} = {default} against {schema}");
        }
    }
}
