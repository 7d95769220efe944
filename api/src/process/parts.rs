//! The parts a process is assembled from, written once: `serve` puts every one of them in one
//! process, a role command the ones of its role. Each part starts what it needs (joining its
//! consumer groups before anything can publish) and leaves its tasks in the caller's `JoinSet`.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use anomaly_workers::bus::EventBus;
use anomaly_workers::consumers::{AlertWriter, StatsWriter, TrainingDataWriter, consume};
use anomaly_workers::events::{Role, Topic};
use anomaly_workers::predictor::{Predictor, Scoring};
use anomaly_workers::stats::StatsStore;
use anomaly_workers::store::ModelStore;
use anomaly_workers::trainer::Training;

use crate::config::Config;
use crate::state::{AppState, Services};
use crate::webhooks::{Deliverer, WebhookOutbox};

/// The metrics consumer: `metrics` and `heartbeats` into the metrics store, one consumer group
/// shared by its instances.
pub async fn metrics_consumer(
    bus: &Arc<dyn EventBus>,
    metrics: Arc<dyn StatsStore>,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let group = Role::MetricsConsumer.name();
    let writer = Arc::new(StatsWriter::new(metrics));
    for (name, topic) in [
        ("metrics", Topic::Metrics),
        ("heartbeats", Topic::Heartbeats),
    ] {
        let subscription = bus.join_group(topic, group).await?;
        let (writer, stop) = (writer.clone(), stop.clone());
        tasks.spawn(async move { consume(name, subscription, &*writer, stop).await });
    }
    Ok(())
}

/// What the training-data consumer writes into the database: a fit's training points when
/// `training_data` (on Kafka the trainer publishes them; on the in-process bus it writes them
/// itself), alerts (idempotently, by event id) and their webhook deliveries, which it sends.
/// `deliveries` stops the deliverer's retries.
pub async fn database_consumer(
    config: &Config,
    bus: &Arc<dyn EventBus>,
    store: Arc<dyn ModelStore>,
    training_data: bool,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
    deliveries: CancellationToken,
) -> anyhow::Result<()> {
    if training_data {
        let points = bus
            .join_group(Topic::TrainingData, Role::TrainingDataConsumer.name())
            .await?;
        let writer = Arc::new(TrainingDataWriter::new(store.clone()));
        let stop = stop.clone();
        tasks.spawn(async move { consume("training-data", points, &*writer, stop).await });
    }
    let alerts = bus.join_group(Topic::Anomalies, AlertWriter::GROUP).await?;
    let writer = Arc::new(AlertWriter::new(store.clone()));
    let stop_alerts = stop.clone();
    tasks.spawn(async move { consume("alerts", alerts, &*writer, stop_alerts).await });
    let webhook_alerts = bus
        .join_group(Topic::Anomalies, WebhookOutbox::GROUP)
        .await?;
    let deliverer = Deliverer::new(store, &config.webhooks, deliveries);
    deliverer.resume().await;
    let outbox = Arc::new(WebhookOutbox::new(deliverer));
    let stop = stop.clone();
    tasks.spawn(async move { consume("webhooks", webhook_alerts, &*outbox, stop).await });
    Ok(())
}

/// A predictor with its model cache, following every model announcement until `stop`. With
/// `log_points` what a predict teaches is logged on `points` before it is answered, so the
/// series' next owner replays it after a crash.
pub async fn predictor(
    config: &Config,
    bus: &Arc<dyn EventBus>,
    store: Arc<dyn ModelStore>,
    log_points: bool,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<Arc<Predictor>> {
    let predictor = Arc::new(
        Predictor::with_cache(
            store,
            bus.clone(),
            config.checkpoints,
            config.model_cache_max,
        )
        .logging_points(log_points),
    );
    let announcements = bus.follow(Topic::Models).await?;
    let (follower, stop) = (predictor.clone(), stop.clone());
    tasks.spawn(async move { follower.follow_models(announcements, stop).await });
    Ok(predictor)
}

/// What the gateway serves from: the trainer and predictors (in process or remote), the store
/// it reads plots and alerts from, the statistics it reports health from, and the bus its live
/// feeds follow.
pub struct Gateway {
    pub training: Arc<dyn Training>,
    /// Already wrapped by whatever sees every prediction (`alertmanager::notifying`).
    pub scoring: Arc<dyn Scoring>,
    pub store: Arc<dyn ModelStore>,
    pub stats: Arc<dyn StatsStore>,
    pub bus: Arc<dyn EventBus>,
}

/// The gateway's HTTP surface over `parts`, within `config`'s limits; `shutdown` closes its
/// WebSockets.
pub async fn gateway(
    config: Arc<Config>,
    parts: Gateway,
    shutdown: CancellationToken,
) -> anyhow::Result<impl crate::listen::HttpService> {
    Ok(crate::app(gateway_state(config, parts).await?, shutdown))
}

/// What the gateway's handlers and resolvers share, its live feeds started.
pub async fn gateway_state(config: Arc<Config>, parts: Gateway) -> anyhow::Result<AppState> {
    let feed = crate::backends::live_feed(parts.bus, &config).await?;
    Ok(AppState::new(Services {
        config,
        training: parts.training,
        scoring: parts.scoring,
        store: parts.store,
        stats: parts.stats,
        feed,
    }))
}
