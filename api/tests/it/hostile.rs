//! A hostile or careless client against the embedded platform: queries built to expand, lists
//! built to amplify, connections that never finish, more connections than the server holds,
//! whole-series requests priced past their budget, the read-only token trying to write, and
//! concurrent fits of one series. Every one gets a clear refusal and the server keeps serving.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::demo_scenario::T0;
use crate::graphql::code;
use crate::support::{Http, TestApp, spawn_app, spawn_app_with};
use crate::ws_client::{GraphqlWs, Protocol};

/// Generous bound for a server-side timeout of a fraction of a second to show (not a timing
/// assertion: only that the connection is closed at all).
const CLOSES_WITHIN: Duration = Duration::from_secs(10);

impl Http {
    /// A GraphQL request answered with any status, as JSON.
    async fn graphql_any(&self, query: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = self.answer(request).await;
        (answer.status, answer.json())
    }
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Fragment `F0` spreads `F1` twice, ..., the last selects `__typename`.
fn fragment_bomb(levels: usize) -> String {
    let mut query = String::from("query { ...F0 }\n");
    for level in 0..levels {
        let next = level + 1;
        query.push_str(&format!(
            "fragment F{level} on QueryRoot {{ ...F{next} ...F{next} }}\n"
        ));
    }
    query.push_str(&format!(
        "fragment F{levels} on QueryRoot {{ __typename }}\n"
    ));
    query
}

#[tokio::test]
async fn fragment_bombs_are_refused_before_they_expand() {
    let app = spawn_app().await;
    let before = resident_bytes();
    for levels in [24, 30] {
        let (status, answer) = app.graphql_any(&fragment_bomb(levels), None).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(code(&answer), "QUERY_TOO_COSTLY", "{answer}");
        assert!(answer["data"].is_null(), "{answer}");
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "RSS grew by {grown} bytes");
    let (_, health) = app.graphql_any("{ health { seriesTrained } }", None).await;
    assert_eq!(
        health["data"]["health"]["seriesTrained"], 0,
        "still serving"
    );
}

async fn fit_points(app: &TestApp, series: &str, n: usize) -> Value {
    let data: Vec<Value> = (0..n)
        .map(|i| json!({ "timestamp": T0 + 60 * i as i64, "value": 10.0 + (i % 7) as f64 }))
        .collect();
    let answer = app.fit(series, &json!({ "data": data })).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    let answer = answer.json();
    let version = answer["version"].as_str().expect("a version");
    app.training_points_stored(series, version, n).await;
    answer
}

#[tokio::test]
async fn lists_are_weighed_by_their_pages_and_answers_are_capped() {
    let app = spawn_app_with(&[("GRAPHQL_MAX_RESPONSE_BYTES", "20000")]).await;
    fit_points(&app, "amp", 1000).await;
    let amplified = "{ seriesList(first: 100) { nodes { models { trainingData { value } } } } }";
    let (_, answer) = app.graphql_any(amplified, None).await;
    assert_eq!(code(&answer), "QUERY_TOO_COSTLY", "{answer}");

    // Within the cost budget but over the (here small) answer limit.
    let (_, answer) = app
        .graphql_any(
            r#"{ series(id: "amp") { latest { trainingData(first: 1000) { timestamp value } } } }"#,
            None,
        )
        .await;
    assert_eq!(code(&answer), "RESPONSE_TOO_LARGE", "{answer}");

    // A page of it is fine, and pages tile the data.
    let page = |offset: usize| {
        format!(
            r#"{{ series(id: "amp") {{ latest {{ trainingData(first: 100, offset: {offset}) {{ timestamp }} }} }} }}"#
        )
    };
    let (_, first) = app.graphql_any(&page(0), None).await;
    let (_, last) = app.graphql_any(&page(950), None).await;
    let points = |v: &Value| {
        v["data"]["series"]["latest"]["trainingData"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(points(&first).len(), 100, "{first}");
    assert_eq!(points(&first)[0]["timestamp"], T0);
    assert_eq!(points(&last).len(), 50);
    assert_eq!(points(&last)[0]["timestamp"], T0 + 60 * 950);
    let (_, refused) = app
        .graphql_any(
            r#"{ series(id: "amp") { latest { trainingData(first: 20000) { value } } } }"#,
            None,
        )
        .await;
    assert!(refused["errors"].is_array(), "{refused}");
}

#[tokio::test]
async fn parse_and_validation_errors_carry_a_code() {
    let app = spawn_app().await;
    let (status, answer) = app.graphql_any("{ health { ", None).await;
    assert_eq!(
        (status, code(&answer)),
        (200, "GRAPHQL_PARSE_FAILED"),
        "{answer}"
    );
    let (_, answer) = app.graphql_any("{ noSuchField }", None).await;
    assert_eq!(code(&answer), "GRAPHQL_VALIDATION_FAILED", "{answer}");
    let deep =
        "{ seriesList { nodes { latest { trainingData { value } } } pageInfo { endCursor } } }";
    let (_, answer) = app.graphql_any(deep, None).await;
    assert!(
        answer["errors"].is_null(),
        "a normal query passes: {answer}"
    );
}

#[tokio::test]
async fn introspection_is_answered_unless_disabled() {
    let app = spawn_app().await;
    // Deeper than GRAPHQL_MAX_DEPTH, as graphql-js's standard query is.
    let query = "{ __schema { types { name fields { name type { name ofType { name ofType { name
        ofType { name ofType { name ofType { name ofType { name } } } } } } } } } } }";
    let (_, answer) = app.graphql_any(query, None).await;
    assert!(answer["errors"].is_null(), "{answer}");
    assert!(
        answer["data"]["__schema"]["types"]
            .as_array()
            .unwrap()
            .len()
            > 10
    );

    let closed = spawn_app_with(&[("GRAPHQL_INTROSPECTION", "false")]).await;
    let (_, answer) = closed.graphql_any(query, None).await;
    assert_eq!(code(&answer), "INTROSPECTION_DISABLED", "{answer}");
    let (_, answer) = closed.graphql_any("{ __typename }", None).await;
    assert_eq!(answer["data"]["__typename"], "QueryRoot", "{answer}");
}

/// Introspection is bounded however it is asked: deep nesting is priced out, and the whole
/// schema spread under many aliases is refused for its answer's size (the standard query's
/// answer is a small part of the bound).
#[tokio::test]
async fn introspection_answers_stay_small() {
    let app = spawn_app().await;
    let full = "name kind description fields(includeDeprecated: true) { name description \
        args { name description type { name kind } defaultValue } type { name kind ofType { name \
        kind } } isDeprecated deprecationReason } inputFields { name type { name } } \
        interfaces { name } enumValues(includeDeprecated: true) { name description } \
        possibleTypes { name }";
    let (_, one) = app
        .graphql_any(&format!("{{ __schema {{ types {{ {full} }} }} }}"), None)
        .await;
    assert!(one["errors"].is_null(), "{one}");
    let one_bytes = one.to_string().len();
    assert!(one_bytes < 100_000, "the schema answers {one_bytes} bytes");
    let aliases: String = (0..50)
        .map(|n| format!("a{n}: __schema {{ types {{ {full} }} }} "))
        .collect();
    let (_, many) = app.graphql_any(&format!("{{ {aliases} }}"), None).await;
    assert_eq!(code(&many), "RESPONSE_TOO_LARGE", "{many}");
    let mut deep = "name".to_owned();
    for _ in 0..6 {
        deep = format!("name fields {{ name type {{ {deep} }} }}");
    }
    let (_, deep) = app
        .graphql_any(&format!("{{ __schema {{ types {{ {deep} }} }} }}"), None)
        .await;
    assert_eq!(code(&deep), "QUERY_TOO_COSTLY", "{deep}");
}

#[tokio::test]
async fn the_read_only_token_reads_and_cannot_write() {
    let app = spawn_app_with(&[("API_TOKEN", "full-token"), ("API_READ_TOKEN", "viewer")]).await;
    let fit = r#"mutation { fit(seriesId: "ro", points: [{timestamp: 1, value: 1}, {timestamp: 2, value: 2}, {timestamp: 3, value: 4}]) { version } }"#;
    let (status, answer) = app.graphql_any(fit, Some("viewer")).await;
    assert_eq!((status, code(&answer)), (200, "FORBIDDEN"), "{answer}");
    let (_, answer) = app.graphql_any(fit, Some("full-token")).await;
    assert_eq!(answer["data"]["fit"]["version"], "v1", "{answer}");
    let (_, answer) = app
        .graphql_any(
            r#"{ series(id: "ro") { latest { version } } }"#,
            Some("viewer"),
        )
        .await;
    assert_eq!(
        answer["data"]["series"]["latest"]["version"], "v1",
        "{answer}"
    );

    let rest = |path: &str, token: &str| {
        app.client
            .post(format!("{}{path}", app.base))
            .bearer_auth(token)
            .json(&json!({ "timestamp": T0, "value": 1.0 }))
    };
    let answer = app.answer(rest("/predict/ro", "viewer")).await;
    assert_eq!(answer.status, 403);
    assert!(answer.detail().contains("read-only"), "{}", answer.detail());
    let answer = app.answer(rest("/predict/ro", "full-token")).await;
    assert_eq!(answer.status, 200);
    let answer = app.answer(rest("/predict/ro", "nobody")).await;
    assert_eq!(answer.status, 401);

    // Over a WebSocket authorised in connection_init, a mutation is refused too.
    let mut ws = GraphqlWs::connect(
        &app.base,
        Protocol::TransportWs,
        json!({ "token": "viewer" }),
    )
    .await
    .expect("the read-only token may subscribe");
    ws.subscribe("m", fit, json!({})).await;
    let message = ws
        .next_message(Duration::from_secs(10))
        .await
        .expect("an answer");
    // Refused before it runs: an `error` message, or a result with only errors.
    let errors = match message["type"].as_str() {
        Some("error") => message["payload"].clone(),
        _ => message["payload"]["errors"].clone(),
    };
    assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{message}");
    assert!(message["payload"]["data"].is_null(), "{message}");
}

#[tokio::test]
async fn whole_series_requests_are_priced_before_they_run() {
    let app = spawn_app_with(&[("DETECT_MAX_COST", "100000")]).await;
    let data: Vec<Value> = (0..2000)
        .map(|i| json!({ "timestamp": T0 + i, "value": (i % 10) as f64 }))
        .collect();
    let costly = json!({ "data": data, "detector": { "kind": "robust", "window": 1000 } });
    let answer = app.post("/detect", &costly).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.detail().contains("DETECT_MAX_COST"),
        "{}",
        answer.detail()
    );
    let cheap = json!({ "data": data, "detector": { "kind": "robust", "window": 20 } });
    assert_eq!(app.post("/detect", &cheap).await.status, 200);
}

#[tokio::test]
async fn concurrent_fits_of_one_series_get_consecutive_versions() {
    let app = spawn_app().await;
    let fits = (0..16).map(|_| fit_points(&app, "contended", 1000));
    let answers = futures_join_all(fits).await;
    let mut versions: Vec<u32> = answers
        .iter()
        .map(|a| a["version"].as_str().unwrap()[1..].parse().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=16).collect::<Vec<_>>());
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    async_graphql::futures_util::future::join_all(futures).await
}

#[tokio::test]
async fn series_trained_counts_what_the_database_holds() {
    let app = spawn_app().await;
    fit_points(&app, "kept-a", 10).await;
    fit_points(&app, "kept-b", 10).await;
    let app = app.restart().await;
    assert_eq!(app.health().await["series_trained"], 2);
}

/// The server's raw bytes until it closes the connection (or `CLOSES_WITHIN` passes: `None`).
async fn until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(CLOSES_WITHIN, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let app = spawn_app_with(&[
        ("HTTP_HEADER_TIMEOUT_SECS", "0.3"),
        ("HTTP_REQUEST_TIMEOUT_SECS", "0.5"),
    ])
    .await;
    // Connected, then silent.
    let mut idle = TcpStream::connect(address(&app)).await.unwrap();
    assert!(
        until_closed(&mut idle).await.is_some(),
        "an idle connection stays open"
    );

    // Half the headers.
    let mut half = TcpStream::connect(address(&app)).await.unwrap();
    half.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        until_closed(&mut half).await.is_some(),
        "half headers stay open"
    );

    // A body promised and never sent.
    let mut unfinished = TcpStream::connect(address(&app)).await.unwrap();
    unfinished
        .write_all(
            b"POST /predict/s HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"timestamp\":",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut unfinished).await.expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A kept-alive connection idle after its request is closed too.
    let mut kept = TcpStream::connect(address(&app)).await.unwrap();
    kept.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut kept).await.expect("closed once idle");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_are_refused_and_open_ones_work() {
    let app = spawn_app_with(&[("HTTP_MAX_CONNECTIONS", "8")]).await;
    let mut first = TcpStream::connect(address(&app)).await.unwrap();
    let ask = b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n";
    first.write_all(ask).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = first.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    // Hold connections until one is refused (the test client may hold some of the 8 too).
    let mut held = Vec::new();
    let refusal = loop {
        assert!(held.len() <= 8, "the cap of 8 was never reached");
        let mut next = TcpStream::connect(address(&app)).await.unwrap();
        next.write_all(ask).await.unwrap();
        let n = next.read(&mut buf).await.unwrap_or(0);
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        if answer.starts_with("HTTP/1.1 503") {
            break answer;
        }
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(next);
    };
    assert!(refusal.contains("Too many open connections"), "{refusal}");

    // The first connection still answers.
    first.write_all(ask).await.unwrap();
    let n = first.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // And a place frees up when a connection closes.
    drop(held);
    crate::support::eventually("a place frees up", || async {
        let Ok(mut next) = TcpStream::connect(address(&app)).await else {
            return false;
        };
        let mut buf = vec![0u8; 4096];
        next.write_all(ask).await.is_ok()
            && next
                .read(&mut buf)
                .await
                .is_ok_and(|n| buf[..n].starts_with(b"HTTP/1.1 200"))
    })
    .await;
}

#[tokio::test]
async fn graphiql_loads_nothing_from_outside_the_gateway() {
    let app = spawn_app_with(&[("API_TOKEN", "t")]).await;
    let page = app
        .answer(
            app.client
                .get(format!("{}/graphql", app.base))
                .header("accept", "text/html"),
        )
        .await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.bytes.clone()).unwrap();
    assert!(html.contains("graphiql"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let assets: Vec<&str> = html
        .split("src=\"")
        .chain(html.split("href=\""))
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|url| url.starts_with('/'))
        .collect();
    assert!(assets.len() >= 4, "{assets:?}");
    for asset in assets {
        assert_eq!(app.get(asset).await.status, 200, "{asset}");
    }
}
