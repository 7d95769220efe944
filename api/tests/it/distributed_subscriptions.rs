//! Subscriptions in the distributed deployment: two gateway processes follow the Kafka
//! `anomalies` topic (a tansu broker), so an anomaly scored by the predictor process reaches the
//! subscribers of its series on both gateways, and not the subscriber of another series.

use serde_json::json;

use crate::distributed::{FreshDatabase, env_with, migrate, role_env, uuid_like};
use crate::processes::RoleProcess;
use crate::subscriptions::{ANOMALIES, alert_until_received, assert_anomaly_of, fit_steady};
use crate::support::Http;
use crate::ws_client::{GraphqlWs, Protocol};

/// A trainer and a predictor on a fresh database and unique topics, and the environment of a
/// gateway that reaches them.
struct Roles {
    database: FreshDatabase,
    env: Vec<(String, String)>,
    gateway_env: Vec<(String, String)>,
    _trainer: RoleProcess,
    _predictor: RoleProcess,
}

impl Roles {
    async fn start() -> Self {
        let database = FreshDatabase::create().await;
        let run = uuid_like();
        let redis_url = std::env::var("TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
        let env = role_env(&database, &run, &redis_url, &format!("e2e:{run}:"));
        migrate(&env).await;
        let mut trainer = RoleProcess::start("trainer", &["trainer"], &env);
        let mut predictor = RoleProcess::start("predictor", &["predictor"], &env);
        let (trainer_url, predictor_url) = (trainer.base_url().await, predictor.base_url().await);
        let gateway_env = env_with(
            &env,
            &[
                ("TRAINER_URL", &trainer_url),
                ("PREDICTOR_URL", &predictor_url),
            ],
        );
        Self {
            database,
            env,
            gateway_env,
            _trainer: trainer,
            _predictor: predictor,
        }
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL, Redis and a Kafka broker: run bash .ci/run"]
async fn every_gateway_delivers_an_anomaly_to_its_subscribers() {
    let roles = Roles::start().await;
    let gateway_env = &roles.gateway_env;
    let mut first = RoleProcess::start("gateway-1", &["gateway"], gateway_env);
    let mut second = RoleProcess::start("gateway-2", &["gateway"], gateway_env);
    let first = Http::new(first.base_url().await);
    let second = Http::new(second.base_url().await);
    fit_steady(&first, "pump_a").await;
    fit_steady(&second, "pump_b").await;

    // The pump_b subscriber proves it is live before pump_a's anomalies are scored.
    let mut other = GraphqlWs::connect(&second.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    other
        .subscribe("b", ANOMALIES, json!({ "id": "pump_b" }))
        .await;
    let live = alert_until_received(&second, "pump_b", &mut [&mut other]).await;
    assert_anomaly_of(&live[0], "pump_b");

    let mut on_first = GraphqlWs::connect(&first.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    let mut on_second = GraphqlWs::connect(&second.base, Protocol::Legacy, json!({}))
        .await
        .expect("connected");
    on_first
        .subscribe("a1", ANOMALIES, json!({ "id": "pump_a" }))
        .await;
    on_second
        .subscribe("a2", ANOMALIES, json!({ "id": "pump_a" }))
        .await;
    // Each gateway's follower starts at the topic's end when its subscription starts: keep
    // raising alerts until the second subscriber is live too.
    let received = alert_until_received(&first, "pump_a", &mut [&mut on_second]).await;
    assert_anomaly_of(&received[0], "pump_a");
    let received =
        alert_until_received(&first, "pump_a", &mut [&mut on_first, &mut on_second]).await;
    for result in &received {
        assert_anomaly_of(result, "pump_a");
    }

    let after = alert_until_received(&second, "pump_b", &mut [&mut other]).await;
    assert_anomaly_of(&after[0], "pump_b");
    roles.database.drop_now().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL, Redis and a Kafka broker: run bash .ci/run"]
async fn alerts_are_stored_and_replayed_in_the_distributed_deployment() {
    let roles = Roles::start().await;
    // The training-data consumer also stores alerts.
    let _store = RoleProcess::start(
        "training-data-consumer",
        &["training-data-consumer"],
        &roles.env,
    );
    let gateway_env = &roles.gateway_env;
    let mut gateway = RoleProcess::start("gateway", &["gateway"], gateway_env);
    let http = Http::new(gateway.base_url().await);
    crate::alert_history::alerts_raised_while_away_are_replayed_once(&http, "pump_kafka").await;

    // The alerts are in PostgreSQL: a new gateway process pages them.
    gateway.terminate().await;
    let mut restarted = RoleProcess::start("gateway-2", &["gateway"], gateway_env);
    let http = Http::new(restarted.base_url().await);
    crate::support::eventually("all 6 alerts are stored", || async {
        let page = http
            .graphql(
                "{ anomalies(seriesId: \"pump_kafka\", first: 100) { nodes { timestamp } } }",
                json!({}),
            )
            .await;
        page["data"]["anomalies"]["nodes"].as_array().map(Vec::len) == Some(6)
    })
    .await;
    roles.database.drop_now().await;
}
