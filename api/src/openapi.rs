//! The REST routes as an OpenAPI 3.1 document (`GET /openapi.json`) and the interactive page that
//! renders it (`GET /docs`: Swagger UI 5.31.0, pinned and embedded in `api/assets/openapi/` with
//! its licence, under a policy that lets it load nothing from elsewhere). The document is written
//! here beside the routes it describes; a test calls every operation in it and checks each route
//! of the router is described, and CI validates it with an OpenAPI 3.1 parser.

use std::sync::LazyLock;

use anomaly_workers::detector::DetectorSpec;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::assets::{Asset, embedded, respond_named};

/// Scripts and styles from the gateway only (Swagger UI sets inline styles and embeds its icons
/// as `data:` URLs); "Try it out" calls this origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

static PAGE: LazyLock<Asset> = LazyLock::new(|| {
    embedded!(
        "openapi",
        "index.html",
        "text/html; charset=utf-8",
        CONTENT_SECURITY_POLICY
    )
});

static FILES: LazyLock<[(&str, Asset); 3]> = LazyLock::new(|| {
    [
        (
            "swagger-ui-bundle.js",
            embedded!(
                "openapi",
                "swagger-ui-bundle.js",
                "text/javascript; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
        (
            "swagger-ui.css",
            embedded!(
                "openapi",
                "swagger-ui.css",
                "text/css; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
        (
            "start.js",
            embedded!(
                "openapi",
                "start.js",
                "text/javascript; charset=utf-8",
                CONTENT_SECURITY_POLICY
            ),
        ),
    ]
});

/// The REST operations the gateway serves, as their routers registered them (`operation`).
static SERVED: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// `path`, recorded as a REST operation the gateway serves: the router modules wrap every
/// operation's path in it (not pages, their files or the WebSocket), and the OpenAPI test checks
/// that this document describes each one (`served_operations`).
pub fn operation(path: &'static str) -> &'static str {
    SERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(path);
    path
}

/// Every path given to `operation` by the routers built in this process so far.
pub fn served_operations() -> Vec<&'static str> {
    SERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .copied()
        .collect()
}

/// `/openapi.json`, `/docs` and the page's files.
pub fn routes() -> Router {
    Router::new()
        .route(
            operation("/openapi.json"),
            get(|| async { Json(document()) }),
        )
        .route(
            "/docs",
            get(|headers: HeaderMap| async move { PAGE.respond(&headers) }),
        )
        .route("/docs/assets/{file}", get(file))
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    respond_named(&*FILES, &name, &headers)
}

/// Whether a request asks for the documentation (public even with `API_TOKEN`).
pub fn is_docs_path(path: &str) -> bool {
    path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/assets/")
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn uuid_parameter(name: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "schema": { "type": "string", "format": "uuid" }
    })
}

fn series_id_parameter() -> Value {
    json!({
        "name": "series_id", "in": "path", "required": true,
        "description": "The series, `[A-Za-z0-9_.:-]{1,128}`.",
        "schema": { "type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$" }
    })
}

/// The common refusals of a route that takes a JSON body.
fn body_errors() -> Value {
    json!({
        "400": error_response("Invalid input: the detail says what to fix."),
        "401": error_response("API_TOKEN is set and the request carries no valid token."),
        "403": error_response("The read-only token (API_READ_TOKEN) may not call this route."),
        "408": error_response("The request took longer than HTTP_REQUEST_TIMEOUT_SECS."),
        "413": error_response("The body is larger than MAX_BODY_BYTES."),
        "415": error_response("The body was sent as something other than application/json."),
        "503": error_response("A backend or role is down; the detail names it.")
    })
}

fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    base
}

/// The `Detector` schema: every kind and the union of their options, from the detectors'
/// registry, so a new kind or option is documented without a line here.
fn detector_schema() -> Value {
    macro_rules! option_schema {
        (f64) => { json!({ "type": "number" }) };
        (u32) => { json!({ "type": "integer" }) };
        (bool) => { json!({ "type": "boolean" }) };
        (Direction) => { json!({ "type": "string", "enum": ["above", "below", "both"] }) };
        ($other:ident) => {
            compile_error!(concat!("no OpenAPI form for the option type ", stringify!($other)))
        };
    }
    macro_rules! options {
        ($($option:ident: $ty:ident),* $(,)?) => {
            [$((stringify!($option), option_schema!($ty))),*]
        };
    }
    let kinds = DetectorSpec::NAMES;
    let mut properties = serde_json::Map::new();
    properties.insert("kind".into(), json!({ "type": "string", "enum": kinds }));
    for (name, schema) in anomaly_workers::for_each_detector_option!(options) {
        properties.insert(name.into(), schema);
    }
    json!({
        "type": "object", "required": ["kind"],
        "description": "The detector and its options; options left out take the documented defaults (README, Detection).",
        "properties": properties
    })
}

/// The OpenAPI 3.1 document of the REST routes.
pub fn document() -> Value {
    let points_shapes = json!({
        "data": {
            "type": "array", "description": "Points as objects (or send `timestamps` and `values`).",
            "items": { "$ref": "#/components/schemas/Point" }
        },
        "timestamps": { "type": "array", "items": { "type": "integer", "format": "int64" },
            "description": "Unix seconds, with `values` of the same length." },
        "values": { "type": "array", "items": { "type": "number" } },
        "detector": { "$ref": "#/components/schemas/Detector" },
        "alerts": { "$ref": "#/components/schemas/Alerts" }
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "anomaly",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Time-series anomaly detection: train a model per series, score points, plot training data, watch health. The seed's documented REST API; GraphQL is at /graphql (schema.graphql).",
            "license": { "name": "MIT", "identifier": "MIT" }
        },
        "components": {
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer",
                    "description": "API_TOKEN (everything) or API_READ_TOKEN (GET routes only); not needed when API_TOKEN is unset." }
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["detail"],
                    "properties": {
                        "detail": { "type": "string" },
                        "reason": { "type": "string", "description": "Where a malformed payload went wrong." }
                    }
                },
                "Point": {
                    "type": "object", "required": ["timestamp", "value"],
                    "properties": {
                        "timestamp": { "type": "integer", "format": "int64", "description": "Unix seconds." },
                        "value": { "type": "number", "description": "A finite value." }
                    }
                },
                "Detector": detector_schema(),
                "Alerts": {
                    "type": "object",
                    "description": "How anomalies become alerts.",
                    "properties": {
                        "rising_edge": { "type": "boolean", "default": true },
                        "cooldown_secs": { "type": "integer", "default": 0 },
                        "quiet_points": { "type": ["integer", "null"] }
                    }
                },
                "FitBody": {
                    "type": "object",
                    "description": "At least 3 points, not all equal, in either shape.",
                    "properties": points_shapes
                },
                "StoredAlert": {
                    "type": "object",
                    "required": ["cursor", "series_id", "model_version", "detector", "timestamp", "value", "score", "expected", "raised_at_ms"],
                    "properties": {
                        "cursor": { "type": "string", "description": "The alert's event id: pass it as `before` for older alerts, or as a subscription's `after`." },
                        "series_id": { "type": "string" },
                        "model_version": { "type": "string" },
                        "detector": { "type": "string" },
                        "timestamp": { "type": "integer", "format": "int64" },
                        "value": { "type": "number" },
                        "score": { "type": "number" },
                        "expected": { "type": "number" },
                        "lower": { "type": ["number", "null"] },
                        "upper": { "type": ["number", "null"] },
                        "raised_at_ms": { "type": "integer", "format": "int64", "description": "When the alert was raised (ms since the Unix epoch)." }
                    }
                },
                "AlertPage": {
                    "type": "object", "required": ["anomalies", "next"],
                    "properties": {
                        "anomalies": { "type": "array", "items": { "$ref": "#/components/schemas/StoredAlert" } },
                        "next": { "type": ["string", "null"], "description": "Pass as `before` for the next (older) page; null on the last." }
                    }
                },
                "FitAnswer": {
                    "type": "object", "required": ["series_id", "version", "points_used", "detector"],
                    "properties": {
                        "series_id": { "type": "string" },
                        "version": { "type": "string", "examples": ["v1"] },
                        "points_used": { "type": "integer" },
                        "detector": { "type": "string" }
                    }
                },
                "WebhookRegistration": {
                    "type": "object", "required": ["url"], "additionalProperties": false,
                    "properties": {
                        "url": { "type": "string", "maxLength": 2048, "description": "http:// or https://" },
                        "secret": { "type": "string", "description": "`whsec_` and the base64 of 24 to 64 bytes; made up when left out." }
                    }
                },
                "RegisteredWebhook": {
                    "type": "object", "required": ["id", "url", "secret", "created_at_ms"],
                    "properties": {
                        "id": { "type": "string", "format": "uuid" },
                        "url": { "type": "string" },
                        "secret": { "type": "string" },
                        "created_at_ms": { "type": "integer", "format": "int64" }
                    }
                },
                "PredictBatchBody": {
                    "type": "object", "required": ["points"], "additionalProperties": false,
                    "properties": {
                        "points": { "type": "array", "maxItems": 10000, "items": {
                            "type": "object", "required": ["series_id", "timestamp", "value"], "additionalProperties": false,
                            "properties": {
                                "series_id": { "type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$" },
                                "timestamp": { "type": "integer", "format": "int64", "description": "Unix seconds." },
                                "value": { "type": "number", "description": "A finite value." }
                            }
                        } }
                    }
                },
                "PredictBatchAnswer": {
                    "type": "object", "required": ["predictions"],
                    "properties": { "predictions": { "type": "array", "items": { "$ref": "#/components/schemas/Prediction" } } }
                },
                "Prediction": {
                    "type": "object",
                    "required": ["model_version", "anomaly", "score", "expected", "detector", "alert", "series_id", "timestamp", "value"],
                    "properties": {
                        "model_version": { "type": "string" },
                        "anomaly": { "type": "boolean", "description": "`score` > 1." },
                        "score": { "type": "number" },
                        "expected": { "type": "number" },
                        "lower": { "type": ["number", "null"] },
                        "upper": { "type": ["number", "null"] },
                        "detector": { "type": "string" },
                        "alert": { "type": "boolean", "description": "Whether the anomaly raised an alert." },
                        "series_id": { "type": "string" },
                        "timestamp": { "type": "integer", "format": "int64" },
                        "value": { "type": "number" }
                    }
                },
                "DetectBody": {
                    "type": "object",
                    "properties": merged(points_shapes.clone(), json!({
                        "training_points": { "type": "integer", "description": "Leading points that train the model; NAB's 15% (at most 750) when absent." }
                    }))
                },
                "DetectAnswer": {
                    "type": "object", "required": ["detector", "training_points", "anomalies", "points"],
                    "properties": {
                        "detector": { "type": "string" },
                        "training_points": { "type": "integer" },
                        "anomalies": { "type": "integer" },
                        "points": { "type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "timestamp": { "type": "integer" }, "value": { "type": "number" },
                                "anomaly": { "type": "boolean" }, "alert": { "type": "boolean" },
                                "score": { "type": "number" }, "expected": { "type": "number" },
                                "lower": { "type": ["number", "null"] }, "upper": { "type": ["number", "null"] }
                            }
                        } }
                    }
                },
                "Health": {
                    "type": "object",
                    "required": ["series_trained", "inference_latency_ms", "training_latency_ms", "throughput", "model_usage", "system_metrics", "instances"],
                    "properties": {
                        "series_trained": { "type": "integer" },
                        "inference_latency_ms": { "$ref": "#/components/schemas/Latency" },
                        "training_latency_ms": { "$ref": "#/components/schemas/Latency" },
                        "throughput": { "type": "object" },
                        "model_usage": { "type": "object", "additionalProperties": { "type": "integer" },
                            "description": "Predictions per series, the HEALTH_TOP_SERIES most used." },
                        "system_metrics": { "type": "object" },
                        "instances": { "type": "array", "items": { "type": "object" } }
                    }
                },
                "Latency": {
                    "type": "object", "required": ["avg", "p95"],
                    "properties": { "avg": { "type": "number" }, "p95": { "type": "number" } }
                },
                "Readiness": {
                    "type": "object", "required": ["status", "checks"],
                    "properties": {
                        "status": { "type": "string", "enum": ["ready", "unavailable"] },
                        "checks": { "type": "object", "additionalProperties": { "type": "string" } }
                    }
                }
            }
        },
        "security": [{ "token": [] }],
        "paths": {
            "/fit/{series_id}": { "post": {
                "operationId": "fit",
                "summary": "Train the series' next model version",
                "parameters": [series_id_parameter()],
                "requestBody": json_body("FitBody"),
                "responses": merged(json!({ "200": ok("The model is stored with all its training points.", "FitAnswer") }), body_errors())
            } },
            "/predict/{series_id}": { "post": {
                "operationId": "predict",
                "summary": "Score one point against the series' newest model (and learn from it)",
                "parameters": [series_id_parameter()],
                "requestBody": json_body("Point"),
                "responses": merged(json!({
                    "200": ok("The verdict and its evidence.", "Prediction"),
                    "404": error_response("The series has no model: `Model not found`.")
                }), body_errors())
            } },
            "/predict-batch": { "post": {
                "operationId": "predictBatch",
                "summary": "Score many points of any series, in the order given (at most 10,000)",
                "requestBody": json_body("PredictBatchBody"),
                "responses": merged(json!({
                    "200": ok("Each point's verdict, in the order sent.", "PredictBatchAnswer"),
                    "404": error_response("A point's series has no model: `Model not found` (the points before it were scored).")
                }), body_errors())
            } },
            "/api/v1/write": { "post": {
                "operationId": "remoteWrite",
                "summary": "Prometheus remote write 1.0: selected series warm up, are fitted, then scored",
                "requestBody": {
                    "required": true,
                    "description": "A snappy-compressed (block format) protobuf `prometheus.WriteRequest`, sent with `Content-Encoding: snappy` and `X-Prometheus-Remote-Write-Version: 0.1.0`.",
                    "content": { "application/x-protobuf": { "schema": { "type": "string", "contentMediaType": "application/x-protobuf" } } }
                },
                "responses": {
                    "204": { "description": "Taken (samples already taken, of unselected series or of series over the bounds are skipped)." },
                    "400": error_response("Not a remote write request, too many samples (REMOTE_WRITE_MAX_SAMPLES), a body decompressing past REMOTE_WRITE_MAX_DECODED_BYTES, or a series with bad labels (the others were taken). Prometheus does not retry it."),
                    "401": error_response("API_TOKEN is set and the request carries no valid token."),
                    "403": error_response("The read-only token (API_READ_TOKEN) may not call this route."),
                    "413": error_response("The body is larger than MAX_BODY_BYTES."),
                    "415": error_response("Not snappy-compressed protobuf, or remote write 2.0."),
                    "503": error_response("The trainer, predictor, database or bus is down: Prometheus sends the request again, and what was taken is skipped then.")
                }
            } },
            "/federate": { "get": {
                "operationId": "federate",
                "summary": "The newest results of every remote-written series, in the Prometheus text format",
                "responses": {
                    "200": { "description": "`anomaly_score`, `anomaly_expected`, `anomaly_lower`, `anomaly_upper` and `anomaly_alert`, with the source labels plus `for` and `series_id`, at each sample's own timestamp.", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "401": error_response("API_TOKEN is set and the request carries no valid token.")
                }
            } },
            "/webhooks": {
                "post": {
                    "operationId": "registerWebhook",
                    "summary": "Register a webhook endpoint: every alert is POSTed to it, signed (Standard Webhooks)",
                    "requestBody": json_body("WebhookRegistration"),
                    "responses": merged(json!({ "201": ok("Registered; the secret is shown this once.", "RegisteredWebhook") }), body_errors())
                },
                "get": {
                    "operationId": "webhooks",
                    "summary": "The registered webhook endpoints (without their secrets)",
                    "responses": {
                        "200": { "description": "Every endpoint, oldest first.", "content": { "application/json": { "schema": { "type": "object" } } } },
                        "401": error_response("API_TOKEN is set and the request carries no valid token.")
                    }
                }
            },
            "/webhooks/{webhook_id}": { "delete": {
                "operationId": "deleteWebhook",
                "summary": "Remove a webhook endpoint and its delivery log",
                "parameters": [uuid_parameter("webhook_id")],
                "responses": {
                    "204": { "description": "Removed." },
                    "400": error_response("Not a webhook id."),
                    "401": error_response("API_TOKEN is set and the request carries no valid token."),
                    "403": error_response("The read-only token (API_READ_TOKEN) may not call this route."),
                    "404": error_response("No such webhook: `Webhook not found`.")
                }
            } },
            "/webhooks/{webhook_id}/deliveries": { "get": {
                "operationId": "webhookDeliveries",
                "summary": "An endpoint's delivery log, newest first: each message and every attempt's status",
                "parameters": [
                    uuid_parameter("webhook_id"),
                    { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 20 } }
                ],
                "responses": {
                    "200": { "description": "The newest deliveries.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "400": error_response("A parameter is malformed."),
                    "401": error_response("API_TOKEN is set and the request carries no valid token."),
                    "404": error_response("No such webhook.")
                }
            } },
            "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": { "post": {
                "operationId": "replayWebhookDelivery",
                "summary": "Send a delivery again now (same webhook-id, a new signature); the attempt is logged and answered",
                "parameters": [uuid_parameter("webhook_id"), uuid_parameter("delivery_id")],
                "responses": {
                    "200": { "description": "The delivery with the new attempt.", "content": { "application/json": { "schema": { "type": "object" } } } },
                    "400": error_response("An id is malformed."),
                    "401": error_response("API_TOKEN is set and the request carries no valid token."),
                    "403": error_response("The read-only token (API_READ_TOKEN) may not call this route."),
                    "404": error_response("No such webhook or delivery.")
                }
            } },
            "/detect": { "post": {
                "operationId": "detect",
                "summary": "Whole-series mode: fit on the leading points, score the rest; stores nothing",
                "requestBody": json_body("DetectBody"),
                "responses": merged(json!({ "200": ok("Every scored point.", "DetectAnswer") }), body_errors())
            } },
            "/anomalies": { "get": {
                "operationId": "anomalies",
                "summary": "Stored alerts, newest first, a page at a time",
                "parameters": [
                    { "name": "series_id", "in": "query", "required": false, "schema": { "type": "string" }, "description": "One series; all when left out." },
                    { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 20 } },
                    { "name": "before", "in": "query", "required": false, "schema": { "type": "string" }, "description": "A cursor (`next` of the previous page): only older alerts." },
                    { "name": "since", "in": "query", "required": false, "schema": { "type": "integer", "format": "int64" }, "description": "Unix seconds: only alerts raised at or after it." }
                ],
                "responses": {
                    "200": ok("A page of stored alerts.", "AlertPage"),
                    "400": error_response("A parameter is malformed."),
                    "401": error_response("API_TOKEN is set and the request carries no valid token."),
                    "503": error_response("The database is down.")
                }
            } },
            "/plot": { "get": {
                "operationId": "plot",
                "summary": "The training points of a model version as a PNG",
                "parameters": [
                    { "name": "series_id", "in": "query", "required": true, "schema": { "type": "string" } },
                    { "name": "version", "in": "query", "required": true, "schema": { "type": "string", "examples": ["v1"] } }
                ],
                "responses": {
                    "200": { "description": "The plot.", "content": { "image/png": { "schema": { "type": "string", "contentMediaType": "image/png" } } } },
                    "400": error_response("A parameter is missing or malformed."),
                    "401": error_response("API_TOKEN is set and the request carries no valid token."),
                    "404": error_response("No training data for that series and version."),
                    "503": error_response("The database is down.")
                }
            } },
            "/healthcheck": { "get": {
                "operationId": "healthcheck",
                "summary": "Latencies, throughput, usage and system figures (public)",
                "security": [],
                "responses": {
                    "200": ok("The platform's figures.", "Health"),
                    "503": error_response("The metrics store is down.")
                }
            } },
            "/livez": { "get": {
                "operationId": "livez", "summary": "Liveness (public)", "security": [],
                "responses": { "200": { "description": "The process serves." } }
            } },
            "/readyz": { "get": {
                "operationId": "readyz", "summary": "Readiness: the backends answer (public)", "security": [],
                "responses": {
                    "200": ok("Ready.", "Readiness"),
                    "503": ok("A backend does not answer; `checks` names it.", "Readiness")
                }
            } },
            "/metrics": { "get": {
                "operationId": "metrics", "summary": "Prometheus metrics (public)", "security": [],
                "responses": { "200": { "description": "Prometheus text.", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            } },
            "/graphql": {
                "post": {
                    "operationId": "graphql",
                    "summary": "GraphQL (schema.graphql); GraphiQL when a browser opens it",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["query"],
                        "properties": { "query": { "type": "string" }, "variables": { "type": "object" }, "operationName": { "type": "string" } }
                    } } } },
                    "responses": { "200": { "description": "A GraphQL response: `data` and/or `errors` with `extensions.code`." } }
                },
                "get": {
                    "operationId": "graphqlQuery",
                    "summary": "GraphQL queries over GET (`?query=`)",
                    "parameters": [{ "name": "query", "in": "query", "required": true, "schema": { "type": "string" } }],
                    "responses": { "200": { "description": "A GraphQL response." } }
                }
            },
            "/openapi.json": { "get": {
                "operationId": "openapi", "summary": "This document (public)", "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1." } }
            } }
        }
    })
}
