//! Alerts are stored and replayable: a subscriber that comes back with its last cursor gets what
//! was raised while it was away, once, then live alerts; stored alerts survive a restart and page
//! through the `anomalies` query and `GET /anomalies`; subscriptions also run over HTTP streams
//! (GraphQL over SSE, multipart/mixed) for clients without WebSockets.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::demo_scenario::T0;
use crate::subscriptions::fit_steady;
use crate::support::{DEADLINE, Http, eventually_some, spawn_app};
use crate::ws_client::{GraphqlWs, Protocol};

const RESUMABLE: &str = "subscription($id: String, $after: String) {
    anomalies(seriesId: $id, after: $after) { cursor seriesId timestamp value } }";

const STORED: &str = "query($id: String, $first: Int!, $after: String) {
    anomalies(seriesId: $id, first: $first, after: $after) {
        nodes { cursor timestamp value } pageInfo { hasNextPage endCursor } } }";

/// Raises one alert on `series` (a normal point, then a spike) at `timestamp`; returns the
/// spike's cursor.
async fn raise_alert(http: &Http, series: &str, timestamp: i64) -> String {
    let normal = http.predict(series, timestamp - 30, 10.2).await;
    assert_eq!(normal.status, 200);
    let spike = http.predict(series, timestamp, 1_000.0).await.json();
    assert_eq!(spike["alert"], true, "{spike}");
    stored_cursor_of(http, series, timestamp).await
}

/// The cursor of `series`' stored alert at `timestamp`, once it is stored.
async fn stored_cursor_of(http: &Http, series: &str, timestamp: i64) -> String {
    eventually_some(DEADLINE, || async {
        let page = http
            .graphql(STORED, json!({ "id": series, "first": 100 }))
            .await;
        page["data"]["anomalies"]["nodes"]
            .as_array()
            .expect("a page of alerts")
            .iter()
            .find(|a| a["timestamp"] == timestamp)
            .map(|a| a["cursor"].as_str().expect("a cursor").to_owned())
    })
    .await
    .unwrap_or_else(|| panic!("the alert at {timestamp} was never stored"))
}

/// The next `anomalies` result's timestamp.
async fn next_timestamp(client: &mut GraphqlWs) -> i64 {
    let (_, payload) = client
        .next_result(DEADLINE)
        .await
        .expect("an alert within the deadline");
    assert!(payload.get("errors").is_none(), "{payload}");
    payload["data"]["anomalies"]["timestamp"]
        .as_i64()
        .unwrap_or_else(|| panic!("an alert: {payload}"))
}

/// The whole resume story on `http`'s gateway: alerts raised while a subscriber is away come
/// once, in order, after it resubscribes with its last cursor; then live ones follow.
pub async fn alerts_raised_while_away_are_replayed_once(http: &Http, series: &str) {
    fit_steady(http, series).await;
    let day = T0 + 86_400;
    let seen = raise_alert(http, series, day).await;
    // Away: these two are raised with nobody listening.
    raise_alert(http, series, day + 60).await;
    raise_alert(http, series, day + 120).await;

    let mut client = GraphqlWs::connect(&http.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    client
        .subscribe("resumed", RESUMABLE, json!({ "id": series, "after": seen }))
        .await;
    assert_eq!(next_timestamp(&mut client).await, day + 60);
    assert_eq!(next_timestamp(&mut client).await, day + 120);
    // Then live, with nothing replayed a second time.
    for minute in 3..6 {
        let timestamp = day + 60 * minute;
        let normal = http.predict(series, timestamp - 30, 10.2).await;
        assert_eq!(normal.status, 200);
        let spike = http.predict(series, timestamp, 1_000.0).await.json();
        assert_eq!(spike["alert"], true, "{spike}");
        assert_eq!(next_timestamp(&mut client).await, timestamp);
    }
}

#[tokio::test]
async fn a_subscriber_resuming_from_its_cursor_gets_what_it_missed_once() {
    let app = spawn_app().await;
    alerts_raised_while_away_are_replayed_once(&app, "resume_me").await;
}

#[tokio::test]
async fn stored_alerts_survive_a_restart_and_page_newest_first() {
    let app = spawn_app().await;
    fit_steady(&app, "history").await;
    fit_steady(&app, "elsewhere").await;
    let day = T0 + 86_400;
    let mut cursors = Vec::new();
    for minute in 0..3 {
        cursors.push(raise_alert(&app, "history", day + 60 * minute).await);
    }
    raise_alert(&app, "elsewhere", day + 600).await;
    let app = app.restart().await;

    let first = app
        .graphql(STORED, json!({ "id": "history", "first": 2 }))
        .await;
    let page = &first["data"]["anomalies"];
    let timestamps = |page: &Value| -> Vec<i64> {
        page["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["timestamp"].as_i64().expect("a timestamp"))
            .collect()
    };
    assert_eq!(timestamps(page), vec![day + 120, day + 60], "{first}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let rest = app
        .graphql(
            STORED,
            json!({ "id": "history", "first": 2, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(timestamps(&rest["data"]["anomalies"]), vec![day], "{rest}");
    assert_eq!(rest["data"]["anomalies"]["pageInfo"]["hasNextPage"], false);

    // Every series, newest first.
    let all = app.graphql(STORED, json!({ "first": 10 })).await;
    assert_eq!(
        timestamps(&all["data"]["anomalies"]),
        vec![day + 600, day + 120, day + 60, day]
    );

    // The same over REST, for curl users.
    let rest = app.get("/anomalies?series_id=history&limit=2").await;
    assert_eq!(rest.status, 200);
    let body = rest.json();
    assert_eq!(
        body["anomalies"][0]["cursor"],
        cursors[2].as_str(),
        "{body}"
    );
    assert_eq!(body["anomalies"][1]["cursor"], cursors[1].as_str());
    assert_eq!(body["anomalies"][0]["value"], 1_000.0);
    let next = body["next"].as_str().expect("a next cursor");
    let older = app
        .get(&format!(
            "/anomalies?series_id=history&limit=2&before={next}"
        ))
        .await
        .json();
    assert_eq!(older["anomalies"][0]["cursor"], cursors[0].as_str());
    assert_eq!(older["next"], Value::Null);
    let bad = app.get("/anomalies?before=not-a-cursor").await;
    assert_eq!(bad.status, 400, "{}", bad.detail());
    assert_eq!(app.get("/anomalies?limit=0").await.status, 400);
    let none = app.get("/anomalies?since=4102444800").await.json();
    assert_eq!(none["anomalies"], json!([]), "nothing raised after 2100");
}

#[tokio::test]
async fn a_bad_cursor_is_a_coded_error() {
    let app = spawn_app().await;
    let answer = app
        .graphql(STORED, json!({ "first": 1, "after": "yesterday" }))
        .await;
    assert_eq!(crate::graphql::code(&answer), "BAD_USER_INPUT", "{answer}");
}

/// Reads `response`'s body until `found` says it holds what is wanted (or the deadline passes),
/// raising an alert on `series` every 200 ms meanwhile: a stream's subscription starts
/// asynchronously. Returns the text read.
async fn read_stream_until(
    http: &Http,
    series: &str,
    mut response: reqwest::Response,
    found: impl Fn(&str) -> bool,
) -> String {
    let mut text = String::new();
    let mut timestamp = T0 + 2 * 86_400;
    let started = Instant::now();
    while !found(&text) {
        assert!(started.elapsed() < DEADLINE, "nothing wanted in: {text}");
        match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Ok(chunk) => {
                let chunk = chunk.expect("the stream").expect("the stream goes on");
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            Err(_) => {
                timestamp += 60;
                http.predict(series, timestamp - 30, 10.2).await;
                http.predict(series, timestamp, 1_000.0).await;
            }
        }
    }
    text
}

/// POSTs `query` to `/graphql` asking for `accept`.
async fn post_streaming(http: &Http, accept: &str, query: &str) -> reqwest::Response {
    http.client
        .post(format!("{}/graphql", http.base))
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(json!({ "query": query }).to_string())
        .send()
        .await
        .expect("the request")
}

/// `post_streaming`, answered 200.
async fn stream_request(http: &Http, accept: &str, query: &str) -> reqwest::Response {
    let response = post_streaming(http, accept, query).await;
    assert_eq!(response.status(), 200);
    response
}

/// The answer's media type, which starts with `expected`.
fn assert_content_type(response: &reqwest::Response, expected: &str) -> String {
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with(expected), "{content_type}");
    content_type.to_owned()
}

/// The first result of `subscription` streamed over SSE, raising alerts on `series` until it
/// comes.
async fn first_sse_result(http: &Http, series: &str, subscription: &str) -> Value {
    let response = stream_request(http, "text/event-stream", subscription).await;
    assert_content_type(&response, "text/event-stream");
    let text = read_stream_until(http, series, response, |t| {
        t.find("event: next")
            .is_some_and(|at| t[at..].contains("\n\n"))
    })
    .await;
    let data = text
        .lines()
        .skip_while(|l| *l != "event: next")
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    serde_json::from_str(data).expect("JSON data")
}

const SUBSCRIPTION: &str =
    "subscription { anomalies(seriesId: \"streamed\") { seriesId value cursor } }";

#[tokio::test]
async fn a_subscription_streams_over_server_sent_events() {
    let app = spawn_app().await;
    fit_steady(&app, "streamed").await;
    let event = first_sse_result(&app, "streamed", SUBSCRIPTION).await;
    assert_eq!(
        event["data"]["anomalies"]["seriesId"], "streamed",
        "{event}"
    );
    assert_eq!(event["data"]["anomalies"]["value"], 1_000.0);

    // A query over SSE is one `next`, then `complete`.
    let query = stream_request(&app, "text/event-stream", "{ health { seriesTrained } }").await;
    let text = query.text().await.expect("the whole stream");
    assert!(
        text.contains("event: next\ndata: {\"data\":{\"health\":{\"seriesTrained\":1}}}"),
        "{text}"
    );
    assert!(text.ends_with("event: complete\ndata:\n\n"), "{text}");
}

#[tokio::test]
async fn a_subscription_streams_as_multipart_parts() {
    let app = spawn_app().await;
    fit_steady(&app, "streamed").await;

    // Apollo's protocol: each part `{"payload": result}`.
    let apollo = stream_request(
        &app,
        "multipart/mixed;subscriptionSpec=\"1.0\", application/json",
        SUBSCRIPTION,
    )
    .await;
    let content_type = assert_content_type(&apollo, "multipart/mixed");
    assert!(
        content_type.contains("boundary=\"graphql\""),
        "{content_type}"
    );
    let text = read_stream_until(&app, "streamed", apollo, |t| {
        t.contains("{\"payload\":{\"data\":{\"anomalies\"")
    })
    .await;
    assert!(
        text.contains("--graphql\r\ncontent-type: application/json"),
        "{text}"
    );

    // Incremental delivery: each part the result with `hasNext`.
    let incremental = stream_request(&app, "multipart/mixed", SUBSCRIPTION).await;
    let text = read_stream_until(&app, "streamed", incremental, |t| {
        t.contains("\"hasNext\":true}")
    })
    .await;
    let part = text
        .split("\r\n\r\n")
        .find(|p| p.contains("hasNext"))
        .expect("a part");
    let part: Value = serde_json::from_str(part.split("\r\n").next().unwrap()).expect("JSON part");
    assert_eq!(part["data"]["anomalies"]["seriesId"], "streamed", "{part}");
    assert_eq!(part["hasNext"], true);

    // A query as multipart ends with hasNext false and the closing boundary.
    let query = stream_request(&app, "multipart/mixed", "{ health { seriesTrained } }").await;
    let text = query.text().await.expect("the whole stream");
    assert!(text.contains("{\"hasNext\":false}"), "{text}");
    assert!(text.ends_with("--graphql--\r\n"), "{text}");
}

#[tokio::test]
async fn a_read_only_token_may_stream_a_subscription_but_not_a_mutation() {
    let app =
        crate::support::spawn_app_with(&[("API_TOKEN", "full"), ("API_READ_TOKEN", "reader")])
            .await;
    let send = |query: &'static str, token: &'static str| {
        app.client
            .post(format!("{}/graphql", app.base))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .body(json!({ "query": query }).to_string())
            .send()
    };
    let refused = send(SUBSCRIPTION, "guess").await.expect("answer");
    assert_eq!(refused.status(), 401);
    let mutation = send(
        "mutation { fit(seriesId: \"x\", points: [{timestamp: 1, value: 1}, {timestamp: 2, value: 2}, {timestamp: 3, value: 4}]) { version } }",
        "reader",
    )
    .await
    .expect("answer")
    .text()
    .await
    .expect("body");
    assert!(mutation.contains("FORBIDDEN"), "{mutation}");
    let subscribed = send(SUBSCRIPTION, "reader").await.expect("answer");
    assert_eq!(subscribed.status(), 200);
    assert_content_type(&subscribed, "text/event-stream");
}

#[tokio::test]
async fn a_stream_past_the_gateway_subscription_cap_is_refused_with_429() {
    let app = crate::support::spawn_app_with(&[("GRAPHQL_MAX_SUBSCRIPTIONS", "1")]).await;
    let open = stream_request(&app, "text/event-stream", SUBSCRIPTION).await;
    let refused = post_streaming(&app, "text/event-stream", SUBSCRIPTION).await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.expect("a JSON error");
    assert_eq!(
        crate::graphql::code(&body),
        "TOO_MANY_SUBSCRIPTIONS",
        "{body}"
    );
    // Closing the first stream gives its place back.
    drop(open);
    crate::support::eventually("the place is given back", || async {
        post_streaming(&app, "text/event-stream", SUBSCRIPTION)
            .await
            .status()
            == 200
    })
    .await;
}

#[tokio::test]
async fn a_negative_page_size_is_a_coded_error() {
    let app = spawn_app().await;
    for query in [
        "{ anomalies(first: -1) { nodes { cursor } } }",
        "{ seriesList(first: -1) { nodes { id } } }",
        "{ recentPredictions(seriesId: \"s\", first: -1) { cursor } }",
    ] {
        let answer = app.graphql(query, json!({})).await;
        assert_eq!(crate::graphql::code(&answer), "BAD_USER_INPUT", "{answer}");
    }
}

#[tokio::test]
async fn a_query_over_a_stream_keeps_the_answer_size_limit() {
    let app = crate::support::spawn_app_with(&[("GRAPHQL_MAX_RESPONSE_BYTES", "10")]).await;
    let response = stream_request(&app, "text/event-stream", "{ health { seriesTrained } }").await;
    let text = response.text().await.expect("the whole stream");
    assert!(text.contains("RESPONSE_TOO_LARGE"), "{text}");
    assert!(text.ends_with("event: complete\ndata:\n\n"), "{text}");
}

/// A live result the gateway writes to a WebSocket itself (rendered once for every subscriber
/// of the same request) is exactly what async-graphql answers the same subscription over SSE:
/// aliases, fragments, directives and `__typename` included.
#[tokio::test]
async fn a_live_result_on_a_websocket_equals_the_same_subscription_over_sse() {
    const SHAPED: &str = "subscription {
        alert: anomalies(seriesId: \"shaped\", minScore: 0.5) {
            __typename at: timestamp ...Evidence value @skip(if: true) cursor
            detector @include(if: false) } }
        fragment Evidence on Prediction { score lower upper seriesId }";
    let app = spawn_app().await;
    fit_steady(&app, "shaped").await;
    let mut client = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    client.subscribe("shaped", SHAPED, json!({})).await;
    // The WebSocket subscription is live once it has received an alert.
    crate::subscriptions::alert_until_received(&app, "shaped", &mut [&mut client]).await;

    let over_sse = first_sse_result(&app, "shaped", SHAPED).await;
    let at = &over_sse["data"]["alert"]["at"];
    assert!(at.is_i64(), "{over_sse}");
    let over_ws = loop {
        let (id, payload) = client
            .next_result(DEADLINE)
            .await
            .expect("the alert the SSE stream got");
        assert_eq!(id, "shaped");
        if payload["data"]["alert"]["at"] == *at {
            break payload;
        }
    };
    assert_eq!(over_ws, over_sse);
    let alert = &over_ws["data"]["alert"];
    assert_eq!(alert["__typename"], "Prediction");
    assert!(alert.get("value").is_none() && alert.get("detector").is_none());
}
