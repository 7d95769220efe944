//! `anomaly serve`: every role in one process on the embedded backends (SQLite, in-process bus
//! and metrics store), wired as the distributed deployment wires them (the consumers write, the
//! predictor follows model announcements) with one difference: the in-process bus keeps nothing
//! across a crash, so the trainer writes a fit's training points in the model's own transaction
//! instead of publishing them for the training-data consumer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use anomaly_workers::bus::{EventBus, MemoryBus};
use anomaly_workers::consumers::{MetricsWriter, consume};
use anomaly_workers::events::{Role, Topic};
use anomaly_workers::heartbeat::{instance_name, send_heartbeats};
use anomaly_workers::metrics::{MemoryMetrics, MetricsStore};
use anomaly_workers::predictor::Predictor;
use anomaly_workers::store::{ModelStore, SqlStore};
use anomaly_workers::trainer::Trainer;

use crate::config::Config;
use crate::state::AppState;

/// How long consumers may take to write what they already accepted once HTTP has drained.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Refuses configurations this process cannot honour, saying what to change.
fn check_embedded(config: &Config) -> anyhow::Result<()> {
    if config.kafka_brokers.is_some() {
        bail!(
            "KAFKA_BROKERS is set, but `serve` runs on the in-process event bus: \
             unset KAFKA_BROKERS to run the embedded platform, or run the distributed roles \
             (anomaly gateway|trainer|predictor|metrics-consumer|training-data-consumer)"
        );
    }
    if config.redis_url.is_some() {
        bail!(
            "REDIS_URL/REDIS_HOST is set, but `serve` keeps metrics in process: \
             unset them to run the embedded platform, or run the distributed roles"
        );
    }
    Ok(())
}

/// Creates the directory of a SQLite database file, so the default works on a fresh clone.
fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the database directory {}", dir.display()))?;
    }
    Ok(())
}

/// Connects to the configured database and runs the migrations.
pub async fn connect_store(config: &Config) -> anyhow::Result<SqlStore> {
    ensure_sqlite_dir(&config.database_url)?;
    SqlStore::connect(&config.database_url)
        .await
        .context("connecting to the database")
}

/// Runs every role until `shutdown` fires, then drains: HTTP first, then the consumers finish
/// what the bus already accepted.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    check_embedded(&config)?;
    let store: Arc<dyn ModelStore> = Arc::new(connect_store(&config).await?);
    let memory_bus = Arc::new(MemoryBus::new(config.bus_capacity));
    let bus: Arc<dyn EventBus> = memory_bus.clone();
    let metrics: Arc<dyn MetricsStore> = Arc::new(MemoryMetrics::new());

    let mut tasks = JoinSet::new();
    let background = CancellationToken::new();
    let consumers = CancellationToken::new();

    // Consumers join their groups before anything can publish.
    let metric_events = bus
        .join_group(Topic::Metrics, Role::MetricsConsumer.name())
        .await?;
    let heartbeats = bus
        .join_group(Topic::Heartbeats, Role::MetricsConsumer.name())
        .await?;
    let writer = Arc::new(MetricsWriter::new(metrics.clone()));
    for (name, subscription) in [("metrics", metric_events), ("heartbeats", heartbeats)] {
        let (writer, stop) = (writer.clone(), consumers.clone());
        tasks.spawn(async move { consume(name, subscription, &*writer, stop).await });
    }

    let predictor = Arc::new(Predictor::new(
        store.clone(),
        bus.clone(),
        config.checkpoint_every,
    ));
    let announcements = bus.follow(Topic::Models).await?;
    let (follower, stop) = (predictor.clone(), background.clone());
    tasks.spawn(async move { follower.follow_models(announcements, stop).await });
    tasks.spawn(send_heartbeats(
        Role::ALL.to_vec(),
        instance_name(),
        bus.clone(),
        config.heartbeat_interval,
        background.clone(),
    ));

    let state = AppState {
        training: Arc::new(Trainer::storing_points(store.clone(), bus.clone())),
        scoring: predictor.clone(),
        store,
        metrics,
        events: bus.clone(),
    };
    tracing::info!(address = %listener.local_addr()?, database = %redact(&config.database_url), "serving every role in one process");
    crate::listen::serve(
        listener,
        crate::app(state, &crate::EdgeLimits::from_config(&config)),
        &config.server,
        shutdown,
    )
    .await
    .context("serving HTTP")?;

    tracing::info!("HTTP drained; finishing accepted work");
    background.cancel();
    predictor.checkpoint_all().await;
    memory_bus.close();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::error!("consumers did not drain within {DRAIN_TIMEOUT:?}; stopping them");
        consumers.cancel();
        while tasks.join_next().await.is_some() {}
    }
    tracing::info!("stopped");
    Ok(())
}

/// The database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(
            redact("sqlite://./data/anomaly.db?mode=rwc"),
            "sqlite://./data/anomaly.db?mode=rwc"
        );
    }

    #[test]
    fn external_backends_are_refused_with_what_to_unset() {
        let mut config = Config::from_lookup(|_| None).unwrap();
        config.kafka_brokers = Some("kafka:9092".into());
        let err = check_embedded(&config).unwrap_err().to_string();
        assert!(err.contains("unset KAFKA_BROKERS"), "{err}");
    }
}
