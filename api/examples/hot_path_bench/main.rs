//! The hot-path benchmark (a benchmark, not a test): a bare axum handler that parses the same JSON
//! point and answers a small JSON verdict (the ceiling for an HTTP JSON endpoint on this machine)
//! runs beside `anomaly serve`, and a keep-alive load generator drives each in turn, interleaved,
//! so every figure is a ratio to the reference runs just before and after it on the same (noisy)
//! box (`rounds.rs`).
//! Prints requests/s, the ratio, p50/p99 latency and the servers' CPU per request for:
//! - REST predict on one hot series (default detector);
//! - REST predict spread uniformly over `--series` trained series (1,000,000 by default, `zscore`,
//!   written straight into the database, each loaded once by a sweep first) with the product's RSS
//!   per cached series (`MODEL_CACHE_MAX` is set to the series count);
//! - the GraphQL `predict` mutation (prepared after its first run), and the same operation as a
//!   batch of one, which the executor always runs;
//! - with `--kafka` and `--redis` (and a PostgreSQL `--database-url`): REST predict spread over
//!   64 series through a distributed gateway with one predictor and with two (each series to its
//!   owner), beside the same load on the embedded `serve`; with `--predictor-cpus C` each
//!   predictor is held to C cores (a cgroup of its own), as if each had its own machine; then
//!   failover (a predictor SIGKILLed under load) and rebalance (one joining) as clients see them;
//!   `--kafka mock` runs librdkafka's in-memory mock cluster in this process as the broker;
//!
//! then fit ingest: points/s from `fit` to rows in the database (SQLite, or `--database-url`).
//! On PostgreSQL every run makes a database of its own on the `--database-url` server and drops
//! it at the end (`fresh_database.rs`).
//!
//!   cargo build --release --bin anomaly -p anomaly-api --example hot_path_bench
//!   target/release/examples/hot_path_bench [--seconds 8] [--connections 50] [--rounds 2] \
//!       [--series 1000000] [--database-url postgres://...] [--kafka HOST:PORT --redis URL] \
//!       [--predictor-cpus 0.25] [--predictor-env NAME=VALUE] [--generator wrk|builtin]
//!
//! The measured runs are driven by wrk (`apt-get install wrk`) unless `--generator builtin`;
//! `bench/run.sh` installs wrk and runs this three times.
//!
//! With `--reference PORT` the binary is the reference server itself.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod distributed;
mod failover;
mod fresh_database;
mod load;
mod many_series;
mod rounds;
#[path = "../support/mod.rs"]
mod support;
mod wrk;

use load::{Load, drive};
use rounds::{Driver, Scenario};
use support::{Process, cpu_time, default_binary, free_port, threads_and_rss};

const SERIES: &str = "hot_series";

struct Options {
    seconds: u64,
    connections: usize,
    rounds: usize,
    binary: String,
    /// The product's database (a fresh SQLite file by default).
    database_url: Option<String>,
    /// Trained series of the spread scenario (0 skips it).
    series: u64,
    /// A Kafka broker and a Redis for the distributed scenario (skipped without them).
    kafka: Option<String>,
    redis: Option<String>,
    /// What drives the measured runs: wrk (an independent generator, the default) or the
    /// built-in one.
    wrk: bool,
    /// Cores each predictor of the distributed scenarios may use.
    predictor_cpus: Option<f64>,
    /// Settings the distributed scenarios' predictors get (`--predictor-env NAME=VALUE`).
    predictor_env: Vec<(String, String)>,
}

fn options() -> Result<Options, u16> {
    let mut options = Options {
        seconds: 8,
        connections: 50,
        rounds: 2,
        binary: default_binary(),
        database_url: None,
        series: 1_000_000,
        kafka: None,
        redis: None,
        wrk: true,
        predictor_cpus: None,
        predictor_env: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--reference" => return Err(value().parse().expect("a port")),
            "--seconds" => options.seconds = value().parse().expect("a number"),
            "--connections" => options.connections = value().parse().expect("a number"),
            "--rounds" => options.rounds = value().parse().expect("a number"),
            "--binary" => options.binary = value(),
            "--database-url" => options.database_url = Some(value()),
            "--series" => options.series = value().parse().expect("a number"),
            "--kafka" => options.kafka = Some(value()),
            "--redis" => options.redis = Some(value()),
            "--predictor-cpus" => options.predictor_cpus = Some(value().parse().expect("cores")),
            "--predictor-env" => {
                let setting = value();
                let (name, value) = setting.split_once('=').expect("NAME=VALUE");
                options.predictor_env.push((name.into(), value.into()));
            }
            "--generator" => {
                options.wrk = match value().as_str() {
                    "wrk" => true,
                    "builtin" => false,
                    other => panic!("--generator is wrk or builtin, not {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    Ok(options)
}

/// The reference: parse a point, answer a verdict, nothing else.
async fn reference(port: u16) {
    use axum::Json;
    use axum::extract::Path;
    use axum::routing::post;

    #[derive(serde::Deserialize)]
    struct Point {
        timestamp: i64,
        value: f64,
    }
    async fn predict(Path(series): Path<String>, Json(point): Json<Point>) -> Json<Value> {
        Json(json!({
            "model_version": "v1", "anomaly": point.value > 100.0, "score": 0.1,
            "series_id": series, "timestamp": point.timestamp, "value": point.value
        }))
    }
    let app = axum::Router::new().route("/predict/{series}", post(predict));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the reference port");
    axum::serve(listener, app)
        .await
        .expect("the reference server");
}

async fn wait_ready(port: u16, path: &str) {
    let started = Instant::now();
    loop {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .is_ok_and(|r| r.status().as_u16() < 500);
        if ready {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "port {port} never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Points per fit in the ingest scenario (about 1.6 MB of JSON, inside `MAX_BODY_BYTES`).
const FIT_POINTS: usize = 40_000;
/// Fits in the ingest scenario, and how many are in flight at once.
const FITS: usize = 24;
const FITS_AT_ONCE: usize = 4;

/// Fit ingest: `FITS` fits of `FIT_POINTS` points to fresh series, `FITS_AT_ONCE` at a time. The
/// embedded server writes a fit's points with its model, so an answered fit is in the database:
/// returns points/s from the first fit sent to the last answered, and server CPU per point.
async fn fit_ingest(port: u16, pid: u32) -> (f64, f64) {
    let points: Vec<Value> = (0..FIT_POINTS)
        .map(|i| {
            let value = 50.0 + (i % 288) as f64 * 0.125;
            json!({ "timestamp": 1_600_000_000 + 60 * i as i64, "value": value })
        })
        .collect();
    let body = Arc::new(json!({ "data": points, "detector": { "kind": "zscore" } }).to_string());
    let client = reqwest::Client::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(FITS_AT_ONCE));
    let cpu = cpu_time(&pid.to_string());
    let started = Instant::now();
    let fits: Vec<_> = (0..FITS)
        .map(|n| {
            let (client, body, gate) = (client.clone(), body.clone(), gate.clone());
            tokio::spawn(async move {
                let _turn = gate.acquire().await.expect("the gate");
                let answer = client
                    .post(format!("http://127.0.0.1:{port}/fit/ingest_{n}"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("fit");
                assert!(
                    answer.status().is_success(),
                    "fit answered {}",
                    answer.status()
                );
            })
        })
        .collect();
    for fit in fits {
        fit.await.expect("a fit");
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_time(&pid.to_string()).saturating_sub(cpu);
    let total = (FITS * FIT_POINTS) as f64;
    (total / seconds, cpu.as_secs_f64() * 1e6 / total)
}

/// What one public `GET /healthcheck` costs, one call at a time: milliseconds to answer and of
/// server CPU, averaged over `HEALTH_CALLS` calls.
async fn healthcheck_cost(port: u16, pid: u32) -> (f64, f64) {
    const HEALTH_CALLS: u32 = 20;
    let client = reqwest::Client::new();
    let cpu = cpu_time(&pid.to_string());
    let started = Instant::now();
    for _ in 0..HEALTH_CALLS {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/healthcheck"))
            .send()
            .await
            .expect("healthcheck");
        assert!(
            answer.status().is_success(),
            "healthcheck answered {}",
            answer.status()
        );
        answer.bytes().await.expect("the healthcheck's body");
    }
    let per_call = started.elapsed().as_secs_f64() * 1000.0 / f64::from(HEALTH_CALLS);
    let cpu = cpu_time(&pid.to_string()).saturating_sub(cpu);
    (
        per_call,
        cpu.as_secs_f64() * 1000.0 / f64::from(HEALTH_CALLS),
    )
}

/// Fits `series` on `port` with the default detector on a daily-looking signal.
async fn fit_hot_series(port: u16, series: &str) {
    let points: Vec<Value> = (0..2_000)
        .map(|i| {
            let phase = f64::from(i) / 288.0 * std::f64::consts::TAU;
            json!({ "timestamp": 1_700_000_000 + 300 * i64::from(i), "value": 50.0 + 10.0 * phase.sin() })
        })
        .collect();
    let fit = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/fit/{series}"))
        .json(&json!({ "data": points }))
        .send()
        .await
        .expect("fit");
    assert!(fit.status().is_success(), "fit answered {}", fit.status());
}

const POINT: &str = r#"{"timestamp":1700600000,"value":52.5}"#;

/// The series the distributed scenarios spread their predicts over (`spread_0` ...).
const SPREAD_PREFIX: &str = "spread_";
const SPREAD_SERIES: u64 = 64;

/// Fits the spread scenarios' series on `port`.
async fn fit_spread_series(port: u16) {
    for n in 0..SPREAD_SERIES {
        fit_hot_series(port, &format!("{SPREAD_PREFIX}{n}")).await;
    }
}

#[tokio::main]
async fn main() {
    let mut options = match options() {
        Ok(options) => options,
        Err(port) => return reference(port).await,
    };
    let fresh = match &options.database_url {
        Some(url) if url.starts_with("postgres") => {
            Some(fresh_database::FreshDatabase::beside(url).await)
        }
        _ => None,
    };
    if let Some(fresh) = &fresh {
        options.database_url = Some(fresh.url.clone());
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (reference_port, product_port) = (free_port(), free_port());
    let reference_process = Process(
        Command::new(std::env::current_exe().expect("this binary"))
            .args(["--reference", &reference_port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the reference"),
    );
    let database_url = options.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let product = Process(
        Command::new(&options.binary)
            .arg("serve")
            .current_dir(dir.path())
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", product_port.to_string())
            .env("DATABASE_URL", &database_url)
            .env("MODEL_CACHE_MAX", options.series.max(100_000).to_string())
            // Logging as a user runs it: the product's default filter, unless RUST_LOG is set.
            .stdout(Stdio::null())
            .spawn()
            .expect("starting anomaly serve"),
    );
    wait_ready(reference_port, "/").await;
    wait_ready(product_port, "/readyz").await;
    fit_hot_series(product_port, SERIES).await;
    let (reference_pid, product_pid) = (reference_process.0.id(), product.0.id());

    let same = |path: &str, body: &str| Load::Same {
        path: Arc::from(path),
        body: Arc::from(body),
    };
    let hot = same(&format!("/predict/{SERIES}"), POINT);
    let graphql_operation = json!({ "query": format!(
        "mutation {{ predict(seriesId: \"{SERIES}\", point: {{timestamp: 1700600000, value: 52.5}}) {{ modelVersion anomaly score }} }}"
    ) });
    let graphql = same("/graphql", &graphql_operation.to_string());
    // The same operation as a batch of one, which async-graphql's executor always runs: what
    // every GraphQL operation but the prepared `predict` costs.
    let graphql_executor = same("/graphql", &json!([graphql_operation]).to_string());
    let driver = Driver {
        connections: options.connections,
        seconds: options.seconds,
        wrk: options.wrk,
        reference_port,
        reference_pid,
    };
    let on_product = |name: String, load: Load| Scenario {
        name,
        port: product_port,
        pids: vec![product_pid],
        load,
    };
    // Each group runs with only what it needs up: the million series are loaded after the hot
    // series' rounds, the distributed roles started after those of the million.
    let mut measured = Vec::new();
    let hot_group = [
        on_product("REST predict, one hot series".into(), hot.clone()),
        on_product("GraphQL predict".into(), graphql),
        on_product(
            "GraphQL predict, executor (batch of one)".into(),
            graphql_executor,
        ),
    ];
    rounds::header(&driver, options.rounds);
    measured.extend(driver.rounds(options.rounds, &hot, &hot_group).await);

    let mut memory_note = None;
    if options.series > 0 {
        let series = options.series;
        let rss_before = threads_and_rss(product_pid).1;
        let loaded = Instant::now();
        many_series::train(&database_url, product_port, series).await;
        let load_seconds = loaded.elapsed().as_secs_f64();
        let sweep = Load::Sweep {
            prefix: many_series::PREFIX,
            series,
            body: Arc::from(POINT),
            next: Default::default(),
        };
        let warm = drive(
            options.connections,
            3_600,
            product_port,
            &[product_pid],
            sweep,
        )
        .await;
        let rss_after = threads_and_rss(product_pid).1;
        let (health_ms, health_cpu_ms) = healthcheck_cost(product_port, product_pid).await;
        memory_note = Some(format!(
            "{series} zscore series written in {load_seconds:.1} s, each loaded once by a sweep \
             ({:.0}/s, {} errors): RSS {} → {} MiB, {:.0} bytes per cached series; \
             GET /healthcheck with every series used: {health_ms:.1} ms, \
             {health_cpu_ms:.1} ms of server CPU",
            warm.rate(),
            warm.errors,
            rss_before / 1024,
            rss_after / 1024,
            rss_after.saturating_sub(rss_before) as f64 * 1024.0 / series as f64
        ));
        let spread = Load::Spread {
            prefix: many_series::PREFIX,
            series,
            body: Arc::from(POINT),
        };
        let many_group = [on_product(
            format!("REST predict over {series} series"),
            spread.clone(),
        )];
        measured.extend(driver.rounds(options.rounds, &spread, &many_group).await);
    }

    // One deployment with one predictor, one with two (each series to its owner), beside the
    // embedded process, all over the same series.
    let mut deployments = Vec::new();
    match (&options.kafka, &options.redis, &options.database_url) {
        (Some(kafka), Some(redis), Some(database)) if database.starts_with("postgres") => {
            let mock = (kafka == "mock").then(distributed::mock_cluster);
            let backends = distributed::Backends {
                binary: options.binary.clone(),
                database: database.clone(),
                kafka: mock.map_or_else(|| kafka.clone(), |c| c.bootstrap_servers()),
                mock,
                redis: redis.clone(),
                predictor_cpus: options.predictor_cpus,
                predictor_env: options.predictor_env.clone(),
            };
            for predictors in [1, 2] {
                deployments.push(distributed::Roles::start(&backends, predictors).await);
            }
        }
        (None, None, _) => {}
        _ => panic!(
            "the distributed scenario needs --kafka, --redis and a PostgreSQL --database-url"
        ),
    }
    if !deployments.is_empty() {
        let spread = Load::Spread {
            prefix: SPREAD_PREFIX,
            series: SPREAD_SERIES,
            body: Arc::from(POINT),
        };
        fit_spread_series(product_port).await;
        let mut spread_group = vec![on_product(
            format!("REST predict over {SPREAD_SERIES} series, embedded (serve)"),
            spread.clone(),
        )];
        for roles in &deployments {
            println!(
                "distributed over {} predictor(s): the gateway routed every partition of points {:.1} s after it started",
                roles.predictors(),
                roles.settled_in.as_secs_f64()
            );
            fit_spread_series(roles.gateway_port).await;
            spread_group.push(Scenario {
                name: format!(
                    "REST predict over {SPREAD_SERIES} series, distributed over {} predictor(s){}",
                    roles.predictors(),
                    options
                        .predictor_cpus
                        .map_or(String::new(), |c| format!(", {c} core(s) each"))
                ),
                port: roles.gateway_port,
                pids: roles.pids(),
                load: spread.clone(),
            });
        }
        measured.extend(driver.rounds(options.rounds, &spread, &spread_group).await);
    }
    rounds::summarise(&measured);
    // Scaling: two predictors against one, and against the embedded process, round by round.
    for round in 1..=options.rounds {
        let rate = |needle: &str| {
            measured
                .iter()
                .find(|m| m.round == round && m.scenario.contains(needle))
                .map(|m| m.rate)
        };
        if let (Some(embedded), Some(one), Some(two)) = (
            rate("embedded (serve)"),
            rate("over 1 predictor"),
            rate("over 2 predictor"),
        ) {
            println!(
                "round {round}: 2 predictors / 1 predictor = {:.2}; 2 predictors / embedded = {:.2}; 1 predictor / embedded = {:.2}",
                two / one,
                two / embedded,
                one / embedded
            );
        }
    }
    if let Some(two) = deployments.iter_mut().find(|roles| roles.predictors() == 2) {
        failover::measure(two, SPREAD_PREFIX, SPREAD_SERIES).await;
    }
    // The ingest is the embedded server's alone: the deployments' consumers stop first.
    drop(deployments);
    if let Some(note) = memory_note {
        println!("{note}");
    }
    let database = if options.database_url.is_some() {
        "a fresh database on the given server"
    } else {
        "SQLite"
    };
    let (rate, cpu_per_point) = fit_ingest(product_port, product_pid).await;
    println!(
        "fit ingest into {database}: {FITS} fits of {FIT_POINTS} points, {FITS_AT_ONCE} at a time: \
         {rate:.0} points/s from fit to rows, {cpu_per_point:.2} µs server CPU per point"
    );
    drop(product);
    if let Some(fresh) = fresh {
        fresh.drop_now().await;
    }
}
