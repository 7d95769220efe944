//! The subscription benchmark (a benchmark, not a test): starts `anomaly serve` (embedded, or on
//! a Kafka broker with `--kafka`), opens N GraphQL WebSocket subscribers (default 10,000) to one
//! series' anomalies, scores a background load of normal points, raises alerts one at a time and
//! measures, for every subscriber, the time from the predict answer to the alert's delivery.
//! Prints the delivered fraction, p50/p99/max latency, and the gateway's threads and RSS before
//! and after the subscribers connected. First, alone on the machine, the same subscribers and
//! alerts run against a reference (`reference.rs`: two threads writing a ready frame to every
//! socket, the hardware's floor), and the gateway's latencies are printed as ratios of it.
//!
//!   cargo build --release --bin anomaly --example subscription_bench
//!   target/release/examples/subscription_bench [--subscribers N] [--alerts N] \
//!       [--load-rate PER_SEC] [--kafka 127.0.0.1:9092] [--database-url postgres://...] [--binary target/release/anomaly]
//!
//! The subscribers run on one thread of their own (`subscribers.rs`). Each side needs a file
//! descriptor per subscriber: raise `ulimit -n` past N.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

mod reference;
mod subscribers;
#[path = "../support/mod.rs"]
mod support;

use support::{Process, cpu_time, default_binary, free_port, threads_and_rss};

const SERIES: &str = "bench_alerts";
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

struct Options {
    subscribers: usize,
    alerts: usize,
    /// Background predictions per second (on another series).
    load_rate: u64,
    kafka: Option<String>,
    database_url: Option<String>,
    binary: String,
}

fn options() -> Options {
    let mut options = Options {
        subscribers: 10_000,
        alerts: 30,
        load_rate: 1_000,
        kafka: None,
        database_url: None,
        binary: default_binary(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--subscribers" => options.subscribers = value().parse().expect("a number"),
            "--alerts" => options.alerts = value().parse().expect("a number"),
            "--load-rate" => options.load_rate = value().parse().expect("a number"),
            "--kafka" => options.kafka = Some(value()),
            "--database-url" => options.database_url = Some(value()),
            "--binary" => options.binary = value(),
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

fn start_server(options: &Options, dir: &std::path::Path, port: u16) -> Process {
    let database = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let mut command = Command::new(&options.binary);
    command
        .arg("serve")
        .current_dir(dir)
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", port.to_string())
        .env("DATABASE_URL", database)
        .env(
            "GRAPHQL_MAX_SUBSCRIPTIONS",
            (options.subscribers + 100).to_string(),
        )
        .env(
            "HTTP_MAX_CONNECTIONS",
            (options.subscribers + 1_000).to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(brokers) = &options.kafka {
        command.env("KAFKA_BROKERS", brokers).env(
            "KAFKA_TOPIC_PREFIX",
            format!("bench-{}-", std::process::id()),
        );
    }
    Process(command.spawn().expect("starting anomaly serve"))
}

/// Scores one point of `series`.
async fn predict(
    http: &reqwest::Client,
    base: &str,
    series: &str,
    timestamp: i64,
    value: f64,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/predict/{series}"))
        .json(&json!({ "timestamp": timestamp, "value": value }))
        .send()
        .await
}

/// Each delivery's latency from its alert's send time, sorted; a late one counts as lost.
fn latencies(received: Vec<(i64, Instant)>, sent: &HashMap<i64, Instant>) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = received
        .into_iter()
        .filter_map(|(ts, at)| Some(at.saturating_duration_since(*sent.get(&ts)?)))
        .filter(|latency| *latency <= DELIVERY_TIMEOUT)
        .collect();
    latencies.sort();
    latencies
}

/// The reference broadcaster's run: the same subscribers and alerts, no gateway.
async fn measure_reference(options: &Options, query: &str) -> Vec<Duration> {
    let mut reference = reference::Reference::start();
    let live = Arc::new(AtomicUsize::new(0));
    let clients =
        subscribers::Subscribers::start(reference.addr, query, options.subscribers, live.clone());
    let mut ts = 0;
    while live.load(Ordering::Relaxed) < options.subscribers {
        ts += 1;
        reference.raise(ts);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut sent = HashMap::new();
    for _ in 0..options.alerts {
        ts += 1;
        sent.insert(ts, reference.raise(ts));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    latencies(clients.stop(), &sent)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(reference::FLAG) {
        return reference::serve();
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(benchmark());
}

async fn benchmark() {
    let options = options();
    let query = format!("subscription {{ anomalies(seriesId: \"{SERIES}\") {{ timestamp }} }}");
    // The reference first, alone on the machine.
    let floor = measure_reference(&options, &query).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = free_port();
    let server = start_server(&options, dir.path(), port);
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server never got ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t0 = 1_700_000_000i64;
    let points: Vec<Value> = (0..60)
        .map(|i| json!({ "timestamp": t0 + 60 * i, "value": 10.0 + (i % 5) as f64 * 0.1 }))
        .collect();
    for series in [SERIES, "bench_load"] {
        let fit = http
            .post(format!("{base}/fit/{series}"))
            .json(&json!({ "data": points, "detector": { "kind": "zscore" } }))
            .send()
            .await
            .expect("fit");
        assert!(fit.status().is_success(), "fit answered {}", fit.status());
    }
    let (threads_before, rss_before) = threads_and_rss(pid);

    let live = Arc::new(AtomicUsize::new(0));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let clients = subscribers::Subscribers::start(addr, &query, options.subscribers, live.clone());
    // Subscriptions start asynchronously on the server: warm up with alerts until one has
    // reached every subscriber.
    let mut ts = t0 + 1_000_000;
    let warming = Instant::now();
    while live.load(Ordering::Relaxed) < options.subscribers {
        assert!(
            warming.elapsed() < Duration::from_secs(120),
            "only {} of {} subscribers became live",
            live.load(Ordering::Relaxed),
            options.subscribers
        );
        for value in [10.2, 1000.0] {
            ts += 60;
            let _ = predict(&http, &base, SERIES, ts, value).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (threads_after, rss_after) = threads_and_rss(pid);

    // Background load: normal points on another series, `load_rate` a second over 4 connections.
    let load_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    let per_worker = Duration::from_secs_f64(4.0 / options.load_rate.max(1) as f64);
    for worker in 0..4i64 {
        let (http, base, stop) = (http.clone(), base.clone(), load_stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut ts = t0 + 10_000_000 * (worker + 1);
            let mut ticks = tokio::time::interval(per_worker);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ticks.tick().await;
                ts += 60;
                let _ = predict(&http, &base, "bench_load", ts, 10.2).await;
                n += 1;
            }
            n
        }));
    }

    let load_started = Instant::now();
    let server_cpu = cpu_time(&pid.to_string());
    let client_cpu = cpu_time("self");
    let mut sent: HashMap<i64, Instant> = HashMap::new();
    for _ in 0..options.alerts {
        ts += 60;
        let _ = predict(&http, &base, SERIES, ts, 10.2).await;
        ts += 60;
        let answer: Value = predict(&http, &base, SERIES, ts, 1000.0)
            .await
            .expect("predict")
            .json()
            .await
            .expect("JSON");
        sent.insert(ts, Instant::now());
        assert_eq!(answer["alert"], true, "{answer}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(DELIVERY_TIMEOUT).await;
    let server_cpu = cpu_time(&pid.to_string()).saturating_sub(server_cpu);
    let client_cpu = cpu_time("self").saturating_sub(client_cpu);
    load_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut predictions = 0;
    for worker in load {
        predictions += worker.await.unwrap_or(0);
    }
    let load_secs = load_started.elapsed().as_secs_f64();

    let latencies = latencies(clients.stop(), &sent);
    let expected = options.subscribers * options.alerts;
    let mode = if options.kafka.is_some() {
        "Kafka (tansu)"
    } else {
        "embedded"
    };
    println!(
        "alert phase ({load_secs:.1} s): gateway CPU {:.2} s, benchmark client CPU {:.2} s",
        server_cpu.as_secs_f64(),
        client_cpu.as_secs_f64()
    );
    println!(
        "| mode | subscribers | alerts | delivered | p50 | p99 | max | gateway threads (before → with subscribers) | gateway RSS (before → with) | RSS per subscriber | background predictions/s |"
    );
    println!(
        "| {mode} | {} | {} | {:.2}% ({}/{}) | {:.1} ms | {:.1} ms | {:.1} ms | {threads_before} → {threads_after} | {} MB → {} MB | {:.1} KB | {:.0} |",
        options.subscribers,
        options.alerts,
        100.0 * latencies.len() as f64 / expected.max(1) as f64,
        latencies.len(),
        expected,
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        rss_before / 1024,
        rss_after / 1024,
        rss_after.saturating_sub(rss_before) as f64 / options.subscribers.max(1) as f64,
        predictions as f64 / load_secs,
    );
    let ms = |sorted: &[Duration], p| percentile(sorted, p).as_secs_f64() * 1000.0;
    println!(
        "| reference (two threads writing a ready frame to every socket) | {} | {} | {:.2}% ({}/{}) | {:.1} ms | {:.1} ms | {:.1} ms | | | | |",
        options.subscribers,
        options.alerts,
        100.0 * floor.len() as f64 / expected.max(1) as f64,
        floor.len(),
        expected,
        ms(&floor, 0.5),
        ms(&floor, 0.99),
        ms(&floor, 1.0),
    );
    println!(
        "gateway / reference: p50 {:.2}×, p99 {:.2}×",
        ms(&latencies, 0.5) / ms(&floor, 0.5).max(0.001),
        ms(&latencies, 0.99) / ms(&floor, 0.99).max(0.001),
    );
    drop(server);
}
