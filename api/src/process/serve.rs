//! `anomaly serve`: every role in one process, on whatever backends are configured (by default
//! the embedded ones: SQLite, in-process bus and metrics store; or PostgreSQL, Kafka and Redis),
//! wired as the distributed deployment wires them: the consumers write, the predictor follows
//! model announcements. One difference on the in-process bus, which keeps nothing across a
//! crash: the trainer writes a fit's training points in the model's own transaction instead of
//! publishing them for the training-data consumer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use anomaly_workers::consumers::{PointScorer, score_points};
use anomaly_workers::events::{Role, Topic};
use anomaly_workers::heartbeat::{instance_name, send_heartbeats};
use anomaly_workers::trainer::Trainer;

use super::parts;
use crate::backends;
use crate::config::Config;

/// How long consumers may take to write what they already accepted once HTTP has drained.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs every role until `shutdown` fires, then drains: HTTP first, then the consumers finish
/// what the bus already accepted. The backends are whatever is configured (`backends`).
pub async fn run(
    config: Arc<Config>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = backends::store(&config).await?;
    let bus = backends::bus(&config).await?;
    let events = bus.events.clone();
    let metrics = backends::metrics(&config).await?;

    let mut tasks = JoinSet::new();
    let background = CancellationToken::new();
    let consumers = CancellationToken::new();

    // Consumers join their groups before anything can publish.
    parts::metrics_consumer(&events, metrics.clone(), &mut tasks, &consumers).await?;
    // A fit's training points are durable before it answers: on Kafka the trainer publishes them
    // and the training-data consumer writes them, as in the distributed deployment; the
    // in-process bus keeps nothing across a crash, so there the trainer writes them with the model.
    parts::database_consumer(
        &config,
        &events,
        store.clone(),
        bus.durable,
        &mut tasks,
        &consumers,
        background.clone(),
    )
    .await?;
    let trainer = if bus.durable {
        Trainer::new(store.clone(), events.clone())
    } else {
        Trainer::storing_points(store.clone(), events.clone())
    };

    // On Kafka, what a predict teaches is logged on `points` before it is answered, so a restart
    // after a crash replays it (`score_points`).
    let predictor = parts::predictor(
        &config,
        &events,
        store.clone(),
        bus.durable && config.log_learnt_points,
        &mut tasks,
        &background,
    )
    .await?;
    let scoring = crate::alertmanager::notifying(predictor.clone(), config.alertmanager.as_ref());
    // On Kafka, points any producer writes on `points` are scored as predicts are.
    if bus.durable {
        let points = events.join_group(Topic::Points, PointScorer::GROUP).await?;
        let scorer = PointScorer::new(scoring.clone(), predictor.clone());
        let stop = consumers.clone();
        tasks.spawn(async move { score_points(points, &scorer, stop).await });
    }
    tasks.spawn(send_heartbeats(
        Role::ALL.to_vec(),
        instance_name(),
        events.clone(),
        config.heartbeat_interval,
        None,
        background.clone(),
    ));

    let gateway = parts::Gateway {
        training: Arc::new(trainer),
        scoring,
        store,
        stats: metrics,
        bus: events.clone(),
    };
    tracing::info!(
        address = %listener.local_addr()?,
        database = %redact(&config.database_url),
        bus = if bus.durable { "kafka" } else { "in-process" },
        metrics = if config.redis_url.is_some() { "redis" } else { "in-process" },
        "serving every role in one process"
    );
    let router = parts::gateway(config.clone(), gateway, shutdown.clone()).await?;
    crate::listen::serve(listener, router, &config.server, shutdown)
        .await
        .context("serving HTTP")?;

    tracing::info!("HTTP drained; finishing accepted work");
    background.cancel();
    predictor.publish_metrics();
    predictor.checkpoint_all().await;
    events.close();
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
}
