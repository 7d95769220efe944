//! The distributed scenarios' processes: a trainer, `predictors` predictors and a gateway that
//! calls them over HTTP, on the given PostgreSQL, Kafka and Redis (fresh topic and key prefixes
//! per deployment). The gateway is given no predictor URL: it routes each series to the
//! predictor whose group member holds its partition of `points`, as the predictors announce.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Process, free_port};
use crate::wait_ready;

pub struct Roles {
    pub gateway_port: u16,
    gateway: Process,
    predictors: Vec<Process>,
    _trainer: Process,
}

impl Roles {
    pub async fn start(
        binary: &str,
        database: &str,
        kafka: &str,
        redis: &str,
        predictors: usize,
    ) -> Self {
        let run = format!("bench-{}-{predictors}-", std::process::id());
        let start = |role: &str, port: u16, extra: &[(&str, String)]| {
            let mut command = Command::new(binary);
            command
                .arg(role)
                .env("DATABASE_URL", database)
                .env("KAFKA_BROKERS", kafka)
                .env("KAFKA_TOPIC_PREFIX", &run)
                .env("REDIS_URL", redis)
                .env("REDIS_PREFIX", &run)
                .env("APP_HOST", "127.0.0.1")
                .env("APP_PORT", port.to_string())
                .env("HEARTBEAT_INTERVAL_SECS", "1")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null());
            for (name, value) in extra {
                command.env(name, value);
            }
            Process(command.spawn().expect("starting a role"))
        };
        let trainer_port = free_port();
        let trainer = start("trainer", trainer_port, &[]);
        wait_ready(trainer_port, "/readyz").await;
        let mut started = Vec::new();
        for _ in 0..predictors {
            let port = free_port();
            started.push(start("predictor", port, &[]));
            wait_ready(port, "/readyz").await;
        }
        let gateway_port = free_port();
        let gateway = start(
            "gateway",
            gateway_port,
            &[("TRAINER_URL", format!("http://127.0.0.1:{trainer_port}"))],
        );
        wait_ready(gateway_port, "/readyz").await;
        owners_settle(gateway_port, predictors).await;
        Self {
            gateway_port,
            gateway,
            predictors: started,
            _trainer: trainer,
        }
    }

    /// The processes on the predict path: the gateway and the predictors.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(&self.gateway)
            .chain(&self.predictors)
            .map(|p| p.0.id())
            .collect()
    }
}

/// Waits until the gateway routes every partition of `points` and each of the `predictors`
/// holds some (its `anomaly_predictor_partitions` gauges).
async fn owners_settle(gateway_port: u16, predictors: usize) {
    let started = Instant::now();
    loop {
        let text = match reqwest::get(format!("http://127.0.0.1:{gateway_port}/metrics")).await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let held: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("anomaly_predictor_partitions{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .filter(|n| *n > 0.0)
            .collect();
        if held.len() == predictors {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the {predictors} predictors never all held partitions: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
