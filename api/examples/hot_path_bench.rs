//! The hot-path benchmark (a benchmark, not a test): a bare axum handler that parses the same JSON
//! point and answers a small JSON verdict (the ceiling for an HTTP JSON endpoint on this machine)
//! runs beside `anomaly serve`, and a keep-alive load generator drives each in turn, interleaved,
//! so every figure is a ratio to the reference measured minutes apart on the same (noisy) box.
//! Prints requests/s, the ratio, p50/p99 latency and the server's CPU per request for: REST
//! predict on one hot series (default detector) and the GraphQL `predict` mutation. Then fit
//! ingest: points/s from `fit` to rows in the database (SQLite, or `--database-url`).
//!
//!   cargo build --release --bin anomaly -p anomaly-api --example hot_path_bench
//!   target/release/examples/hot_path_bench [--seconds 8] [--connections 50] [--rounds 2] \
//!       [--database-url postgres://...]
//!
//! With `--reference PORT` the binary is the reference server itself.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

use support::{Process, cpu_time, default_binary, free_port};

const SERIES: &str = "hot_series";

struct Options {
    seconds: u64,
    connections: usize,
    rounds: usize,
    binary: String,
    /// The product's database (a fresh SQLite file by default).
    database_url: Option<String>,
}

fn options() -> Result<Options, u16> {
    let mut options = Options {
        seconds: 8,
        connections: 50,
        rounds: 2,
        binary: default_binary(),
        database_url: None,
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

/// What one run measured.
struct Run {
    requests: u64,
    errors: u64,
    seconds: f64,
    latencies_us: Vec<u32>,
    cpu: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let at = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[at]) / 1000.0
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

/// Sends `request` over and over on one keep-alive connection until `stop`; returns the
/// latencies (µs) and how many answers were not 200.
async fn connection(port: u16, request: Arc<Vec<u8>>, stop: Arc<AtomicBool>) -> (Vec<u32>, u64) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut latencies = Vec::new();
    let mut errors = 0;
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        stream.write_all(&request).await.expect("write");
        // Read one answer: headers, then Content-Length bytes.
        let mut filled = 0;
        let (head_end, length) = loop {
            let n = stream.read(&mut buffer[filled..]).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            filled += n;
            if let Some(end) = find(&buffer[..filled], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buffer[..end]).unwrap_or_default();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .expect("a content-length");
                if !head.starts_with("HTTP/1.1 200") {
                    errors += 1;
                }
                break (end + 4, length);
            }
        };
        while filled < head_end + length {
            let n = stream.read(&mut buffer[filled..]).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            filled += n;
        }
        latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    (latencies, errors)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn drive(options: &Options, port: u16, pid: u32, request: Vec<u8>) -> Run {
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let cpu = cpu_time(&pid.to_string());
    let started = Instant::now();
    let tasks: Vec<_> = (0..options.connections)
        .map(|_| tokio::spawn(connection(port, request.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task.await.expect("a connection");
        latencies.append(&mut l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Run {
        requests: latencies.len() as u64,
        errors,
        seconds,
        latencies_us: latencies,
        cpu: cpu_time(&pid.to_string()).saturating_sub(cpu),
    }
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

#[tokio::main]
async fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(port) => return reference(port).await,
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let (reference_port, product_port) = (free_port(), free_port());
    let reference_process = Process(
        Command::new(std::env::current_exe().expect("this binary"))
            .args(["--reference", &reference_port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the reference"),
    );
    let product = Process(
        Command::new(&options.binary)
            .arg("serve")
            .current_dir(dir.path())
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", product_port.to_string())
            .env(
                "DATABASE_URL",
                options.database_url.clone().unwrap_or_else(|| {
                    format!(
                        "sqlite://{}?mode=rwc",
                        dir.path().join("bench.db").display()
                    )
                }),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting anomaly serve"),
    );
    wait_ready(reference_port, "/").await;
    wait_ready(product_port, "/readyz").await;

    // One hot series on the default detector, fitted on a daily-looking signal.
    let points: Vec<Value> = (0..2_000)
        .map(|i| {
            let phase = f64::from(i) / 288.0 * std::f64::consts::TAU;
            json!({ "timestamp": 1_700_000_000 + 300 * i64::from(i), "value": 50.0 + 10.0 * phase.sin() })
        })
        .collect();
    let fit = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{product_port}/fit/{SERIES}"))
        .json(&json!({ "data": points }))
        .send()
        .await
        .expect("fit");
    assert!(fit.status().is_success(), "fit answered {}", fit.status());

    let point = r#"{"timestamp":1700600000,"value":52.5}"#;
    let rest = post(&format!("/predict/{SERIES}"), point);
    let graphql = post(
        "/graphql",
        &json!({ "query": format!(
            "mutation {{ predict(seriesId: \"{SERIES}\", point: {{timestamp: 1700600000, value: 52.5}}) {{ modelVersion anomaly score }} }}"
        ) })
        .to_string(),
    );
    let scenarios = [
        ("REST predict, one hot series", &rest),
        ("GraphQL predict", &graphql),
    ];
    let (reference_pid, product_pid) = (reference_process.0.id(), product.0.id());
    println!(
        "{} connections, {} s a run, {} rounds; each figure beside the reference run just before it",
        options.connections, options.seconds, options.rounds
    );
    println!(
        "| round | scenario | requests/s | ratio to reference | p50 | p99 | server CPU per request | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for round in 1..=options.rounds {
        for (name, request) in scenarios {
            let baseline = drive(
                &options,
                reference_port,
                reference_pid,
                post(&format!("/predict/{SERIES}"), point),
            )
            .await;
            println!(
                "| {round} | reference axum handler | {:.0} | 1.00 | {:.2} ms | {:.2} ms | {:.1} µs | {} |",
                baseline.rate(),
                baseline.percentile_ms(0.5),
                baseline.percentile_ms(0.99),
                baseline.cpu_us_per_request(),
                baseline.errors
            );
            let run = drive(&options, product_port, product_pid, request.clone()).await;
            println!(
                "| {round} | {name} | {:.0} | {:.2} | {:.2} ms | {:.2} ms | {:.1} µs | {} |",
                run.rate(),
                run.rate() / baseline.rate(),
                run.percentile_ms(0.5),
                run.percentile_ms(0.99),
                run.cpu_us_per_request(),
                run.errors
            );
        }
    }
    let database = if options.database_url.is_some() {
        "the given database"
    } else {
        "SQLite"
    };
    let (rate, cpu_per_point) = fit_ingest(product_port, product_pid).await;
    println!(
        "fit ingest into {database}: {FITS} fits of {FIT_POINTS} points, {FITS_AT_ONCE} at a time: \
         {rate:.0} points/s from fit to rows, {cpu_per_point:.2} µs server CPU per point"
    );
}
