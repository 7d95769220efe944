//! The distributed deployment end to end: every role its own OS process of the built binary
//! (a gateway, a trainer, a predictor, two metrics consumers, a training-data consumer) on
//! PostgreSQL, Redis and a Kafka broker (the tansu process `bash .ci/run` starts). The seed demo
//! runs through the gateway; then a run of fits during which the training-data consumer is
//! SIGKILLed and restarted must leave exactly the rows that were sent, and 16 clients' fits
//! interrupted by SIGKILLs of the trainer and the consumer lose no acknowledged fit.

use std::time::Duration;

use anomaly_workers::bus::KafkaBus;
use anomaly_workers::stats::{RedisStats, StatsStore};
use anomaly_workers::store::SqlStore;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

use crate::demo_scenario::{T0, replay};
use crate::processes::{RoleProcess, message};
use crate::support::{Http, eventually, eventually_explained};

const BULK_FITS: usize = 240;
const KILL_AT: usize = 60;
const RESTART_AT: usize = 140;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A fresh PostgreSQL database for this run, dropped at the end.
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl FreshDatabase {
    pub async fn create() -> Self {
        let admin_url = env_or(
            "TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        );
        let name = format!("e2e_{}", uuid_like());
        let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        let base = admin_url.rsplit_once('/').expect("a database path").0;
        let url = format!("{base}/{name}");
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// The `n` of a `SELECT COUNT(*) AS n ...` on this database.
    pub async fn count(&self, sql: &str) -> i64 {
        let db = Database::connect(&self.url).await.expect("PostgreSQL");
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("count")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("n")
    }

    pub async fn drop_now(self) {
        let admin = Database::connect(&self.admin_url)
            .await
            .expect("PostgreSQL");
        let _ = admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

pub fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn row_count(store: &SqlStore) -> i64 {
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT COUNT(*) AS n FROM training_point",
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n")
}

/// How many events a consumer process handled on `topic`, from its final log line.
fn handled(process: &RoleProcess, topic: &str) -> u64 {
    process
        .lines()
        .iter()
        .filter(|l| message(l) == Some("consumer stopped"))
        .filter(|l| l["span"]["consumer"] == topic)
        .map(|l| l["fields"]["handled"].as_u64().unwrap_or(0))
        .sum()
}

/// What every role process of one run is started with: its own database, topic prefix and Redis
/// prefix, port 0, and fast heartbeats.
pub fn role_env(
    database: &FreshDatabase,
    run: &str,
    redis_url: &str,
    redis_prefix: &str,
) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database.url.as_str()),
        (
            "KAFKA_BROKERS",
            &std::env::var("TEST_KAFKA_BROKERS")
                .expect("TEST_KAFKA_BROKERS names a running broker (bash .ci/run starts tansu)"),
        ),
        ("KAFKA_TOPIC_PREFIX", &format!("e2e-{run}-")),
        ("REDIS_URL", redis_url),
        ("REDIS_PREFIX", redis_prefix),
        ("APP_HOST", "127.0.0.1"),
        ("APP_PORT", "0"),
        ("HEARTBEAT_INTERVAL_SECS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Runs `anomaly migrate` to completion.
pub async fn migrate(env: &[(String, String)]) {
    let mut migrate = RoleProcess::start("migrate", &["migrate"], env);
    migrate
        .wait_for_log("migrations done", |l| {
            message(l) == Some("migrations are up to date")
        })
        .await;
}

pub fn env_with(env: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = env.to_vec();
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all
}

#[tokio::test]
#[ignore = "needs PostgreSQL, Redis and a Kafka broker: run bash .ci/run"]
async fn every_role_as_a_process_on_real_backends_loses_and_doubles_nothing() {
    let database = FreshDatabase::create().await;
    let run = uuid_like();
    let redis_url = env_or("TEST_REDIS_URL", "redis://127.0.0.1:6379");
    let redis_prefix = format!("e2e:{run}:");
    let env = role_env(&database, &run, &redis_url, &redis_prefix);
    migrate(&env).await;

    let mut trainer = RoleProcess::start("trainer", &["trainer"], &env);
    let mut predictor = RoleProcess::start("predictor", &["predictor"], &env);
    let trainer_url = trainer.base_url().await;
    let predictor_url = predictor.base_url().await;
    let mut metrics_a = RoleProcess::start("metrics-a", &["metrics-consumer"], &env);
    let mut metrics_b = RoleProcess::start("metrics-b", &["metrics-consumer"], &env);
    let mut training_data = RoleProcess::start("training-data", &["training-data-consumer"], &env);
    let gateway_env = env_with(
        &env,
        &[
            ("TRAINER_URL", &trainer_url),
            ("PREDICTOR_URL", &predictor_url),
        ],
    );
    let mut gateway = RoleProcess::start("gateway", &["gateway"], &gateway_env);
    let gateway = Http::new(gateway.base_url().await);

    let store = SqlStore::connect(&database.url).await.expect("database");
    replay(&gateway, &store).await;

    // Metrics reached Redis (the gateway's health reads them; check the store directly too).
    let metrics = RedisStats::connect(&redis_url, &redis_prefix)
        .await
        .expect("Redis");
    // The metrics consumers (two members of a group) may still be consuming or settling their
    // partitions when the replay returns: wait for the five series, then check they stay five.
    let snapshot = || async {
        metrics
            .snapshot(anomaly_workers::events::now_ms(), usize::MAX)
            .await
            .unwrap()
    };
    eventually(
        "Redis counts the five trained series and sensor_01's use",
        || async {
            let now = snapshot().await;
            now.series_trained >= 5 && now.model_usage.get("sensor_01").is_some_and(|&n| n > 0)
        },
    )
    .await;
    let snapshot = snapshot().await;
    assert_eq!(snapshot.series_trained, 5);
    assert!(snapshot.model_usage["sensor_01"] > 0);

    // Every role serves its probes and Prometheus metrics. The two metrics consumers share the
    // topic's three partitions, and the events so far (keyed by five series and one predictor)
    // may all lie in the partitions one of them holds: the group's counter shows on one of them.
    let metrics_urls = [metrics_a.base_url().await, metrics_b.base_url().await];
    let training_data_url = training_data.base_url().await;
    for (urls, counter) in [
        (&[trainer_url.clone()][..], "anomaly_fits_total"),
        (&[predictor_url.clone()][..], "anomaly_predictions_total"),
        (&metrics_urls[..], "anomaly_consumer_events_total"),
        (
            &[training_data_url.clone()][..],
            "anomaly_training_points_written_total",
        ),
    ] {
        let roles: Vec<Http> = urls.iter().cloned().map(Http::new).collect();
        for (role, url) in roles.iter().zip(urls) {
            assert_eq!(role.get("/readyz").await.status, 200, "{url}");
        }
        // A consumer role answers its probes before its group members have joined (and counted
        // anything): its counters appear once they have.
        eventually(&format!("{urls:?} /metrics shows {counter}"), || async {
            for role in &roles {
                let metrics = role.get("/metrics").await;
                if String::from_utf8_lossy(&metrics.bytes).contains(counter) {
                    return true;
                }
            }
            false
        })
        .await;
    }

    // A run of fits; the training-data consumer dies without warning in the middle.
    let demo_rows = row_count(&store).await;
    let mut killed_at = std::time::Instant::now();
    for n in 0..BULK_FITS {
        if n == KILL_AT {
            training_data.kill();
            killed_at = std::time::Instant::now();
        }
        if n == RESTART_AT {
            // The replacement starts once the dead member's session has expired, as a
            // supervisor's restart delay would have it. Kafka would also rebalance a replacement
            // that joins earlier; tansu 0.6 leaves it with no partitions for good when the dead
            // member was the group's leader.
            let expired = KafkaBus::SESSION_TIMEOUT + Duration::from_secs(1);
            tokio::time::sleep(expired.saturating_sub(killed_at.elapsed())).await;
            training_data =
                RoleProcess::start("training-data-2", &["training-data-consumer"], &env);
        }
        let values = [n as f64, n as f64 + 0.5, n as f64 + 2.0];
        let body = json!({ "timestamps": [T0, T0 + 60, T0 + 120], "values": values });
        let answer = gateway.fit(&format!("bulk_{n:03}"), &body).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.bytes)
        );
    }
    let expected = demo_rows + 3 * BULK_FITS as i64;
    let started = std::time::Instant::now();
    eventually_explained(
        Duration::from_secs(60),
        "every training row is in PostgreSQL",
        || async { row_count(&store).await >= expected },
        || async {
            format!(
                "{} of {expected} training rows are there; the training-data consumer logged \
                 last:\n{}",
                row_count(&store).await,
                training_data.log_tail()
            )
        },
    )
    .await;
    eprintln!("rows complete {:?} after the last fit", started.elapsed());
    assert_eq!(
        row_count(&store).await,
        expected,
        "no row missing, none doubled"
    );

    // 16 clients fit 1,000-point series; the trainer and the training-data consumer are
    // SIGKILLed after 100 acknowledgements. Every acknowledged fit reaches PostgreSQL whole: its
    // points were acknowledged by Kafka before the fit was, and a new consumer picks them up.
    let acknowledged = crate::crash_safety::fits_interrupted_by(gateway, || {
        trainer.kill();
        training_data.kill();
    })
    .await;
    let killed_at = std::time::Instant::now();
    tokio::time::sleep(
        (KafkaBus::SESSION_TIMEOUT + Duration::from_secs(1)).saturating_sub(killed_at.elapsed()),
    )
    .await;
    training_data = RoleProcess::start("training-data-3", &["training-data-consumer"], &env);
    eventually_explained(
        Duration::from_secs(60),
        "every acknowledged fit is complete in PostgreSQL",
        || async {
            crate::crash_safety::incomplete(&store, &acknowledged)
                .await
                .is_empty()
        },
        || async {
            let missing = crate::crash_safety::incomplete(&store, &acknowledged).await;
            format!(
                "{} of {} acknowledged fits are incomplete: {:?}; the consumer logged:\n{}",
                missing.len(),
                acknowledged.len(),
                &missing[..missing.len().min(5)],
                training_data.log_tail()
            )
        },
    )
    .await;

    // Both metrics consumers took part: each reports what it handled when it stops.
    metrics_a.terminate().await;
    metrics_b.terminate().await;
    for consumer in [&metrics_a, &metrics_b] {
        assert!(
            handled(consumer, "metrics") > 0,
            "{} handled no metrics",
            consumer.name
        );
    }
    training_data.terminate().await;
    drop(store);
    database.drop_now().await;
}
