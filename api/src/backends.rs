//! The one composition root of backends: which store, event bus and metrics store a process
//! runs on is chosen here from configuration, for `serve` and every role command alike.
//! `DATABASE_URL` picks SQLite or PostgreSQL, `KAFKA_BROKERS` Kafka (else the in-process bus),
//! `REDIS_URL` Redis (else the in-process metrics store). A role that must share the bus or the
//! metrics with other processes refuses the in-process ones, saying what to set.

use std::sync::Arc;

use anyhow::{Context, bail};

use anomaly_workers::bus::{EventBus, KafkaBus, KafkaOptions, MemoryBus};
use anomaly_workers::events::{Role, Topic};
use anomaly_workers::fanout::LiveFeed;
use anomaly_workers::stats::{MemoryStats, RedisStats, StatsStore};
use anomaly_workers::store::{ModelStore, SqlStore};

use crate::config::Config;

/// The event bus of a process and whether it keeps what it acknowledged.
#[derive(Clone)]
pub struct Bus {
    pub events: Arc<dyn EventBus>,
    /// Kafka: an acknowledged event survives a crash of this process. The in-process bus
    /// keeps events only in memory.
    pub durable: bool,
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

/// The configured database, as the store port.
pub async fn store(config: &Config) -> anyhow::Result<Arc<dyn ModelStore>> {
    Ok(Arc::new(connect_store(config).await?))
}

/// Kafka when `KAFKA_BROKERS` is set, else the in-process bus.
pub async fn bus(config: &Config) -> anyhow::Result<Bus> {
    let Some(brokers) = config.kafka_brokers.clone() else {
        return Ok(Bus {
            events: Arc::new(MemoryBus::new(config.bus_capacity)),
            durable: false,
        });
    };
    let kafka = KafkaBus::connect(KafkaOptions {
        brokers: brokers.clone(),
        prefix: config.kafka_topic_prefix.clone(),
        partitions: config.kafka_partitions,
        replication: config.kafka_replication,
        linger: std::time::Duration::from_millis(config.kafka_linger_ms.into()),
        create_topics: config.kafka_create_topics,
    })
    .await
    .with_context(|| format!("connecting to Kafka at {brokers}"))?;
    Ok(Bus {
        events: Arc::new(kafka),
        durable: true,
    })
}

/// The bus of a role that talks to the other roles through it: Kafka, or a refusal.
pub async fn shared_bus(config: &Config, role: Role) -> anyhow::Result<Bus> {
    if config.kafka_brokers.is_none() {
        bail!(
            "the {} role talks to the other roles through Kafka: set KAFKA_BROKERS \
             (the in-process bus exists only inside `anomaly serve`)",
            role.name()
        );
    }
    bus(config).await
}

/// The gateway's live feeds, with `anomalies` followed from the start.
pub async fn live_feed(events: Arc<dyn EventBus>, config: &Config) -> anyhow::Result<LiveFeed> {
    let feed = LiveFeed::new(events, config.feed);
    feed.start(Topic::Anomalies)
        .await
        .context("following the anomalies topic")?;
    Ok(feed)
}

/// Redis when `REDIS_URL` (or the seed's `REDIS_HOST`) is set, else the in-process store.
pub async fn metrics(config: &Config) -> anyhow::Result<Arc<dyn StatsStore>> {
    match config.redis_url.as_deref() {
        None => Ok(Arc::new(MemoryStats::new())),
        Some(url) => Ok(Arc::new(
            RedisStats::connect(url, &config.redis_prefix)
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?,
        )),
    }
}

/// The metrics store of a role that shares it with other instances: Redis, or a refusal.
pub async fn shared_metrics(config: &Config, role: Role) -> anyhow::Result<Arc<dyn StatsStore>> {
    if config.redis_url.is_none() {
        bail!(
            "the {} role shares metrics with the other instances through Redis: set REDIS_URL \
             or REDIS_HOST (the in-process metrics store exists only inside `anomaly serve`)",
            role.name()
        );
    }
    metrics(config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_role_refuses_the_in_process_backends_saying_what_to_set() {
        let config = Config::from_lookup(|_| None).unwrap();
        let err = shared_bus(&config, Role::Trainer)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("trainer") && err.contains("set KAFKA_BROKERS"),
            "{err}"
        );
        let err = shared_metrics(&config, Role::MetricsConsumer)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("set REDIS_URL"), "{err}");
        // `serve` takes them.
        assert!(!bus(&config).await.unwrap().durable);
        assert!(metrics(&config).await.is_ok());
    }
}
