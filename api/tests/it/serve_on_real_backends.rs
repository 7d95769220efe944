//! `anomaly serve` is one process running every role on whatever backends are configured: here
//! PostgreSQL, Kafka (the tansu broker `bash .ci/run` starts) and Redis. A fit, a predict, a live
//! subscription and the training rows in PostgreSQL all work that way.

use anomaly_workers::domain::{SeriesId, Version};
use anomaly_workers::store::{SqlStore, TrainingPoints};
use serde_json::json;

use crate::distributed::{FreshDatabase, uuid_like};
use crate::subscriptions::{ANOMALIES, alert_until_received, assert_anomaly_of, fit_steady};
use crate::support::{eventually, spawn_app_with};
use crate::ws_client::{GraphqlWs, Protocol};

#[tokio::test]
#[ignore = "needs PostgreSQL, Redis and a Kafka broker: run bash .ci/run"]
async fn serve_runs_every_role_on_postgres_kafka_and_redis() {
    let database = FreshDatabase::create().await;
    let run = uuid_like();
    let brokers = std::env::var("TEST_KAFKA_BROKERS")
        .expect("TEST_KAFKA_BROKERS names a running broker (bash .ci/run starts tansu)");
    let redis_url = std::env::var("TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    let app = spawn_app_with(&[
        ("DATABASE_URL", &database.url),
        ("KAFKA_BROKERS", &brokers),
        ("KAFKA_TOPIC_PREFIX", &format!("serve-{run}-")),
        ("REDIS_URL", &redis_url),
        ("REDIS_PREFIX", &format!("serve:{run}:")),
    ])
    .await;

    fit_steady(&app, "pump_real").await;
    let mut subscriber = GraphqlWs::connect(&app.base, Protocol::TransportWs, json!({}))
        .await
        .expect("connected");
    subscriber
        .subscribe("a", ANOMALIES, json!({ "id": "pump_real" }))
        .await;
    let received = alert_until_received(&app, "pump_real", &mut [&mut subscriber]).await;
    assert_anomaly_of(&received[0], "pump_real");

    // The training points went through Kafka to the in-process training-data consumer.
    let store = SqlStore::connect(&database.url).await.expect("PostgreSQL");
    let series = SeriesId::parse("pump_real").unwrap();
    eventually("the 60 training rows are in PostgreSQL", || async {
        store
            .training_points(&series, Version::FIRST)
            .await
            .is_ok_and(|points| points.len() == 60)
    })
    .await;
    // And the metrics went through Kafka to Redis.
    eventually("the predictions are counted in Redis", || async {
        app.health().await["model_usage"]["pump_real"]
            .as_u64()
            .is_some_and(|n| n > 0)
    })
    .await;
    assert_eq!(app.health().await["series_trained"], 1);
    drop(app);
    drop(store);
    database.drop_now().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL, Redis and a Kafka broker: run bash .ci/run"]
async fn a_subscriber_resumes_from_its_cursor_on_kafka() {
    let database = FreshDatabase::create().await;
    let run = uuid_like();
    let brokers = std::env::var("TEST_KAFKA_BROKERS")
        .expect("TEST_KAFKA_BROKERS names a running broker (bash .ci/run starts tansu)");
    let app = spawn_app_with(&[
        ("DATABASE_URL", &database.url),
        ("KAFKA_BROKERS", &brokers),
        ("KAFKA_TOPIC_PREFIX", &format!("resume-{run}-")),
    ])
    .await;
    crate::alert_history::alerts_raised_while_away_are_replayed_once(&app, "pump_resume").await;
    // Stored in PostgreSQL, they outlive the process.
    let app = app.restart().await;
    eventually("all 6 alerts are stored after the restart", || async {
        let stored = app
            .get("/anomalies?series_id=pump_resume&limit=100")
            .await
            .json();
        stored["anomalies"].as_array().map(Vec::len) == Some(6)
    })
    .await;
    drop(app);
    database.drop_now().await;
}
