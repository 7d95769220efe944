//! Faults of the distributed deployment, as an operator would cause them, every role its own
//! process on PostgreSQL, Redis and the tansu broker: a predictor of two SIGKILLed under predict
//! load (its series go to the other; nothing but 200, or 503 with `Retry-After`), a rolling
//! restart of both predictors, and the alert store's consumer SIGKILLed in the middle of a burst
//! of alerts (every alert a client was told of is stored, once, and reaches a webhook receiver).
//! The gateway is given no predictor URL: it learns the predictors, and which series each owns,
//! from their heartbeats; points written on `points` by a Kafka producer are scored and stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anomaly_workers::bus::{EventBus, KafkaBus, KafkaOptions};
use anomaly_workers::events::{Event, IngestedPoint};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::demo_scenario::T0;
use crate::distributed::{FreshDatabase, env_with, migrate, role_env, uuid_like};
use crate::processes::RoleProcess;
use crate::support::{Http, eventually_within, free_port};

const SERIES: usize = 40;
const CLIENTS: usize = 8;

/// A predictor process on `port` (fixed, so it is the same predictor after a restart).
async fn predictor(name: &str, env: &[(String, String)], port: u16) -> RoleProcess {
    let port = port.to_string();
    let mut process =
        RoleProcess::start(name, &["predictor"], &env_with(env, &[("APP_PORT", &port)]));
    process.base_url().await;
    process
}

/// What the predicts of a load run came to: (ms since the load started, status, whether a 503
/// said when to retry, the series' number).
type Outcomes = Arc<Mutex<Vec<(u128, u16, bool, usize)>>>;

/// `CLIENTS` clients predicting over every series until `stop`.
fn predict_load(
    gateway: Arc<Http>,
    outcomes: Outcomes,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let started = Instant::now();
    (0..CLIENTS)
        .map(|client| {
            let (gateway, outcomes, stop) = (gateway.clone(), outcomes.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = client;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let series = format!("fo_{}", n % SERIES);
                    let point =
                        json!({ "timestamp": T0 + 60 * (10_000 + n as i64), "value": 10.2 });
                    let sent = gateway
                        .client
                        .post(format!("{}/predict/{series}", gateway.base))
                        .json(&point)
                        .send()
                        .await
                        .expect("the gateway answers");
                    let status = sent.status().as_u16();
                    let retry_after = sent.headers().contains_key("retry-after");
                    let _ = sent.bytes().await;
                    outcomes.lock().await.push((
                        started.elapsed().as_millis(),
                        status,
                        retry_after,
                        n % SERIES,
                    ));
                    n += CLIENTS;
                }
            })
        })
        .collect()
}

/// Fails on any answer but 200 and 503-with-Retry-After; returns the share of 200s among the
/// answers from `from_ms` on.
async fn judge(outcomes: &Outcomes, from_ms: u128) -> f64 {
    let outcomes = outcomes.lock().await;
    for (at, status, retry_after, _) in outcomes.iter() {
        assert!(
            *status == 200 || (*status == 503 && *retry_after),
            "at {at} ms a predict answered {status} (Retry-After: {retry_after})"
        );
    }
    let unavailable = outcomes
        .iter()
        .filter(|(_, status, ..)| *status == 503)
        .count();
    eprintln!("{} predicts, {unavailable} answered 503", outcomes.len());
    let late: Vec<_> = outcomes.iter().filter(|(at, ..)| *at >= from_ms).collect();
    assert!(!late.is_empty(), "no predicts after {from_ms} ms");
    late.iter().filter(|(_, status, ..)| *status == 200).count() as f64 / late.len() as f64
}

/// The value of an unlabelled metric in a Prometheus text page (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Half the series learn online (their predicts are logged on `points`); fo_0 and fo_1, which
/// the alert and streaming steps spike, keep a fixed model.
fn learns_online(n: usize) -> bool {
    n % 2 == 1 && n != 1
}

#[tokio::test]
#[ignore = "needs PostgreSQL, Redis and a Kafka broker: run bash .ci/run"]
async fn predictors_fail_over_and_acknowledged_alerts_are_all_stored() {
    let database = FreshDatabase::create().await;
    let run = uuid_like();
    let redis_url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let env = role_env(&database, &run, &redis_url, &format!("faults:{run}:"));
    migrate(&env).await;
    let mut trainer = RoleProcess::start("trainer", &["trainer"], &env);
    let trainer_url = trainer.base_url().await;
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = predictor("predictor-a", &env, port_a).await;
    let mut b = predictor("predictor-b", &env, port_b).await;
    let mut alerts = RoleProcess::start("alert-store", &["training-data-consumer"], &env);
    // No PREDICTOR_URL: the gateway knows the predictors, and which series each owns, from
    // their heartbeats (the partitions of `points` their group members hold).
    let mut gateway = RoleProcess::start(
        "gateway",
        &["gateway"],
        &env_with(&env, &[("TRAINER_URL", &trainer_url)]),
    );
    let gateway = Arc::new(Http::new(gateway.base_url().await));
    let (url_a, url_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    eventually_within(
        Duration::from_secs(60),
        "the two predictors share the 3 partitions",
        || async {
            let held = owned_partitions(&gateway).await;
            held.get(&url_a).copied().unwrap_or(0) > 0
                && held.get(&url_b).copied().unwrap_or(0) > 0
                && held.values().sum::<u32>() == 3
        },
    )
    .await;
    for n in 0..SERIES {
        let values: Vec<f64> = (0..100).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
        let timestamps: Vec<i64> = (0..100).map(|i| T0 + 60 * i).collect();
        let kind = if learns_online(n) { "ewma" } else { "zscore" };
        let body = json!({ "timestamps": timestamps, "values": values,
            "detector": { "kind": kind }, "alerts": { "rising_edge": false } });
        assert_eq!(gateway.fit(&format!("fo_{n}"), &body).await.status, 200);
    }

    // 1. SIGKILL of predictor b under load: from 15 s on, at least 99% answer 200.
    let outcomes = Outcomes::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = predict_load(gateway.clone(), outcomes.clone(), stop.clone());
    eventually_within(Duration::from_secs(30), "the load is under way", || async {
        outcomes.lock().await.len() > 200
    })
    .await;
    let killed_ms = outcomes.lock().await.last().map_or(0, |o| o.0);
    b.kill();
    let kill_time = Instant::now();
    eventually_within(
        Duration::from_secs(60),
        "16 s of load after the kill",
        || async {
            outcomes
                .lock()
                .await
                .last()
                .is_some_and(|o| o.0 > killed_ms + 16_000)
        },
    )
    .await;
    let share = judge(&outcomes, killed_ms + 15_000).await;
    assert!(
        share >= 0.99,
        "{share} of the predicts answered 200 from 15 s after the kill"
    );
    // The group gave the dead member's partitions to the survivor, which claimed them (on tansu
    // only once the survivor rejoined: see roles/points_member.rs).
    eventually_within(
        Duration::from_secs(30),
        "the survivor holds every partition",
        || async { owned_partitions(&gateway).await.get(&url_a) == Some(&3) },
    )
    .await;
    eprintln!(
        "the survivor held every partition {:.1} s after the kill",
        (kill_time.elapsed().as_millis() as f64) / 1000.0
    );
    // Nothing acknowledged is lost: once the survivor has flushed (every second while it holds
    // partitions), the saved state of every online series has learnt at least every point a
    // predict answered 200 for, b's included (b's points after its last commit are replayed from
    // `points` by the survivor, from the committed offset).
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    judge(&outcomes, 0).await;
    let mut acknowledged = vec![0_i64; SERIES];
    for (_, status, _, series) in outcomes.lock().await.iter() {
        if *status == 200 {
            acknowledged[*series] += 1;
        }
    }
    let last_short = std::sync::Mutex::new(Vec::new());
    eventually_within(
        Duration::from_secs(30),
        "the saved states hold every acknowledged point",
        || async {
            let short = unsaved_learning(&database, &acknowledged).await;
            let mut last = last_short.lock().unwrap();
            if *last != short {
                eprintln!("saved states short of the acknowledged points: {short:?}");
                *last = short;
            }
            last.is_empty()
        },
    )
    .await;
    let replayed = reqwest::get(format!("{url_a}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    eprintln!(
        "every acknowledged point of the online series is saved; the survivor replayed {} b had learnt",
        metric(&replayed, "anomaly_points_replayed_total"),
    );

    // b is back: its series return to it, and every predict still answers.
    let outcomes = Outcomes::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = predict_load(gateway.clone(), outcomes.clone(), stop.clone());
    b = predictor("predictor-b2", &env, port_b).await;
    // 2. A rolling restart of both predictors (SIGTERM, start again), one at a time, under load.
    a.terminate().await;
    a = predictor("predictor-a2", &env, port_a).await;
    b.terminate().await;
    b = predictor("predictor-b3", &env, port_b).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    judge(&outcomes, 0).await;

    // 3. 120 alerts; the alert store's consumer (which also makes the webhook deliveries) is
    // SIGKILLed after the 60th and started again.
    let received = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let keep = received.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                if let Ok(message) = serde_json::from_slice(&body) {
                    keep.lock().unwrap().push(message);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let registered = gateway.post("/webhooks", &json!({ "url": hook_url })).await;
    assert_eq!(
        registered.status,
        201,
        "{}",
        String::from_utf8_lossy(&registered.bytes)
    );
    let mut told = 0;
    let mut killed_at = Instant::now();
    for i in 0..120 {
        if i == 60 {
            alerts.kill();
            killed_at = Instant::now();
        }
        let point = json!({ "timestamp": T0 + 60 * (100_000 + i), "value": 1000.0 + i as f64 });
        let answer = gateway.post("/predict/fo_0", &point).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.bytes)
        );
        if answer.json()["alert"] == true {
            told += 1;
        }
    }
    assert_eq!(told, 120, "every point was an alert");
    // tansu 0.6 leaves a member that joins while the dead one's session is open without
    // partitions (Kafka would rebalance): start the replacement once it has expired.
    tokio::time::sleep(
        (KafkaBus::SESSION_TIMEOUT + Duration::from_secs(1)).saturating_sub(killed_at.elapsed()),
    )
    .await;
    alerts = RoleProcess::start("alert-store-2", &["training-data-consumer"], &env);
    let stored = "SELECT COUNT(*) AS n FROM alert WHERE series_id = 'fo_0'";
    eventually_within(
        Duration::from_secs(60),
        "the 120 alerts are stored",
        || async { database.count(stored).await >= 120 },
    )
    .await;
    assert_eq!(database.count(stored).await, 120, "each alert once");
    // Every one reached the webhook receiver (at least once), each with one delivery.
    let distinct = || {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["data"]["series_id"] == "fo_0")
            .filter_map(|m| m["data"]["event_id"].as_str().map(str::to_owned))
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    eventually_within(
        Duration::from_secs(60),
        "the 120 alerts reach the webhook receiver",
        || async { distinct() >= 120 },
    )
    .await;
    assert_eq!(distinct(), 120);
    let deliveries = "SELECT COUNT(*) AS n FROM webhook_delivery";
    assert_eq!(
        database.count(deliveries).await,
        120,
        "one delivery per alert"
    );

    // 4. Streaming ingestion: points any Kafka producer writes on `points` (bare JSON, keyed by
    // series) are scored by the series' owner, and their alerts stored as a predict's are.
    let producer = KafkaBus::connect(KafkaOptions {
        brokers: std::env::var("TEST_KAFKA_BROKERS").unwrap(),
        prefix: format!("e2e-{run}-"),
        partitions: 3,
        replication: 1,
        linger: Duration::from_millis(2),
        create_topics: false,
    })
    .await
    .unwrap();
    for i in 0..20 {
        let point = IngestedPoint {
            series_id: "fo_1".into(),
            timestamp: T0 + 60 * (200_000 + i),
            value: 5000.0 + i as f64,
            scored: None,
        };
        producer.publish(Event::Point(point)).await.unwrap();
    }
    // fo_1's predicts so far (10.2, its training mean) raised none.
    let streamed = "SELECT COUNT(*) AS n FROM alert WHERE series_id = 'fo_1'";
    eventually_within(
        Duration::from_secs(60),
        "the 20 streamed points' alerts are stored",
        || async { database.count(streamed).await >= 20 },
    )
    .await;
    assert_eq!(database.count(streamed).await, 20, "each once");
    producer.close();

    alerts.terminate().await;
    drop((a, b, trainer));
    database.drop_now().await;
}

/// The online series whose saved state has learnt fewer points than predicts of it answered 200
/// (its training points aside), as "fo_n: saved of acknowledged".
async fn unsaved_learning(database: &FreshDatabase, acknowledged: &[i64]) -> Vec<String> {
    let rows = sea_orm::Database::connect(&database.url)
        .await
        .unwrap()
        .query_all_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT series_id, MAX(seen) AS seen FROM model_state GROUP BY series_id",
        ))
        .await
        .unwrap();
    let saved: std::collections::HashMap<String, i64> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "series_id").unwrap(),
                r.try_get("", "seen").unwrap(),
            )
        })
        .collect();
    (0..acknowledged.len())
        .filter(|&n| learns_online(n))
        .map(|n| (n, saved.get(&format!("fo_{n}")).copied().unwrap_or(0)))
        .filter(|&(n, seen)| seen < acknowledged[n])
        .map(|(n, seen)| format!("fo_{n}: {seen} of {}", acknowledged[n]))
        .collect()
}

/// The partitions of `points` each predictor holds, as the gateway's `/metrics` says.
async fn owned_partitions(gateway: &Http) -> std::collections::HashMap<String, u32> {
    let answer = gateway.get("/metrics").await;
    let text = String::from_utf8_lossy(&answer.bytes);
    text.lines()
        .filter_map(|line| line.strip_prefix("anomaly_predictor_partitions{predictor=\""))
        .filter_map(|rest| {
            let (url, value) = rest.split_once("\"} ")?;
            Some((url.to_owned(), value.trim().parse::<f64>().ok()? as u32))
        })
        .collect()
}
