//! The distributed scenario's processes: a trainer, a predictor and a gateway that calls them over
//! HTTP, on the given PostgreSQL, Kafka and Redis (fresh topic and key prefixes per run).

use std::process::{Command, Stdio};

use crate::support::{Process, free_port};
use crate::wait_ready;

pub struct Roles {
    pub gateway_port: u16,
    gateway: Process,
    predictor: Process,
    _trainer: Process,
}

impl Roles {
    pub async fn start(binary: &str, database: &str, kafka: &str, redis: &str) -> Self {
        let run = format!("bench-{}-", std::process::id());
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
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null());
            for (name, value) in extra {
                command.env(name, value);
            }
            Process(command.spawn().expect("starting a role"))
        };
        let (trainer_port, predictor_port, gateway_port) = (free_port(), free_port(), free_port());
        let trainer = start("trainer", trainer_port, &[]);
        let predictor = start("predictor", predictor_port, &[]);
        wait_ready(trainer_port, "/readyz").await;
        wait_ready(predictor_port, "/readyz").await;
        let gateway = start(
            "gateway",
            gateway_port,
            &[
                ("TRAINER_URL", format!("http://127.0.0.1:{trainer_port}")),
                (
                    "PREDICTOR_URL",
                    format!("http://127.0.0.1:{predictor_port}"),
                ),
            ],
        );
        wait_ready(gateway_port, "/readyz").await;
        Self {
            gateway_port,
            gateway,
            predictor,
            _trainer: trainer,
        }
    }

    /// The processes on the predict path: the gateway and the predictor.
    pub fn pids(&self) -> Vec<u32> {
        vec![self.gateway.0.id(), self.predictor.0.id()]
    }
}
