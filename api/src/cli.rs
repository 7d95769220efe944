//! The `anomaly` command line: one subcommand per role (README, "Distributed deployment").

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use anomaly_workers::events::Role;

use crate::config::Config;
use crate::process::Roles;

#[derive(Debug, Parser)]
#[command(
    name = "anomaly",
    version,
    about = "Time-series anomaly detection platform"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Default, Subcommand)]
pub enum Command {
    /// Every role in one process, on the configured backends (the embedded ones by default).
    #[default]
    Serve,
    /// The HTTP edge (REST routes); calls the trainer and predictors over HTTP.
    Gateway,
    /// Fits models, stores them and announces them on Kafka.
    Trainer,
    /// Scores points against cached models and publishes predictions and anomalies.
    Predictor,
    /// Consumes metrics and heartbeats from Kafka into Redis.
    MetricsConsumer,
    /// Consumes training data from Kafka into the database.
    TrainingDataConsumer,
    /// Runs the database migrations and exits.
    Migrate,
    /// Prints the GraphQL schema (SDL, sorted): what `schema.graphql` holds.
    Schema,
    /// Runs a detector over a NAB corpus and prints its NAB scores.
    Nab(crate::nab::NabArgs),
}

impl Command {
    /// The command's name, as typed (`serve`, `trainer`, ...): traces name the service by it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Serve => "serve",
            Command::Gateway => "gateway",
            Command::Trainer => "trainer",
            Command::Predictor => "predictor",
            Command::MetricsConsumer => "metrics-consumer",
            Command::TrainingDataConsumer => "training-data-consumer",
            Command::Migrate => "migrate",
            Command::Schema => "schema",
            Command::Nab(_) => "nab",
        }
    }
}

pub async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let listener = bind(&config, "serve").await?;
            crate::process::run(config, Roles::All, Some(listener), shutdown_on_signal()).await
        }
        Command::Gateway => distributed(Role::Gateway, config).await,
        Command::Trainer => distributed(Role::Trainer, config).await,
        Command::Predictor => distributed(Role::Predictor, config).await,
        Command::MetricsConsumer => distributed(Role::MetricsConsumer, config).await,
        Command::TrainingDataConsumer => distributed(Role::TrainingDataConsumer, config).await,
        Command::Nab(args) => crate::nab::run(&args),
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            crate::backends::connect_store(&config).await?;
            tracing::info!("migrations are up to date");
            Ok(())
        }
    }
}

/// The listener of `command` (a subcommand's name), on `APP_HOST` and its port.
async fn bind(config: &Config, command: &str) -> anyhow::Result<TcpListener> {
    let port = config.port_for(command);
    TcpListener::bind((config.host.as_str(), port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{port}: {e}", config.host))
}

/// Every role answers HTTP: the gateway, trainer and predictor their routes, the consumers
/// their probes and `/metrics`.
async fn distributed(role: Role, config: Config) -> anyhow::Result<()> {
    let listener = bind(&config, role.name()).await?;
    crate::process::run(
        config,
        Roles::One(role),
        Some(listener),
        shutdown_on_signal(),
    )
    .await
}

/// A token cancelled on ctrl-c or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut sigterm) => {
                    sigterm.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate => {}
        }
        tracing::info!("shutdown requested");
        fired.cancel();
    });
    token
}
