//! The distributed deployment: each role (README, "Distributed deployment") as its own process on the real backends
//! (Kafka, Redis, PostgreSQL). The gateway reaches the trainer and predictors over HTTP through
//! the same traits `serve` calls in process; everything else flows through Kafka exactly as in
//! `serve`. A role refuses to start on a backend that only exists inside one process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use anomaly_workers::bus::EventBus;
use anomaly_workers::consumers::PointScorer;
use anomaly_workers::events::{Role, Topic};
use anomaly_workers::heartbeat::{Claim, instance_name, send_heartbeats};
use anomaly_workers::predictor::Predictor;
use anomaly_workers::trainer::Trainer;

use super::parts;
use crate::backends;
use crate::config::Config;
use crate::roles::{internal, observed, points_member, remote};

/// How long a stopping role waits for its background tasks.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one distributed role until `shutdown` fires. `listener` is where it answers HTTP: the
/// gateway, trainer and predictor their routes, the consumers their probes and `/metrics` (a
/// consumer given none serves no HTTP).
pub async fn run(
    role: Role,
    config: Arc<Config>,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bus = backends::shared_bus(&config, role).await?.events;
    let background = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // A predictor sends its own, carrying its claim on series.
    if role != Role::Predictor {
        tasks.spawn(send_heartbeats(
            vec![role],
            instance_name(),
            bus.clone(),
            config.heartbeat_interval,
            None,
            background.clone(),
        ));
    }
    let outcome = match role {
        Role::Gateway => gateway(&config, bus.clone(), listener, shutdown).await,
        Role::Trainer => trainer(&config, bus.clone(), listener, shutdown).await,
        Role::Predictor => predictor(&config, bus.clone(), listener, shutdown).await,
        Role::MetricsConsumer => metrics_consumer(&config, bus.clone(), listener, shutdown).await,
        Role::TrainingDataConsumer => {
            training_data_consumer(&config, bus.clone(), listener, shutdown).await
        }
    };
    background.cancel();
    let _ = tokio::time::timeout(STOP_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    bus.close();
    tracing::info!(role = role.name(), "stopped");
    outcome
}

async fn serve_http(
    role: Role,
    limits: &crate::listen::ServerLimits,
    listener: Option<TcpListener>,
    router: impl crate::listen::HttpService,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = listener.context("this role answers HTTP and needs a listener")?;
    tracing::info!(role = role.name(), address = %listener.local_addr()?, "listening");
    crate::listen::serve(listener, router, limits, shutdown)
        .await
        .context("serving HTTP")
}

async fn gateway(
    config: &Arc<Config>,
    bus: Arc<dyn EventBus>,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(trainer_url) = config.trainer_url.as_deref() else {
        bail!("the gateway calls the trainer over HTTP: set TRAINER_URL");
    };
    let metrics = backends::shared_metrics(config, Role::Gateway).await?;
    let store = backends::store(config).await?;
    // Which predictor owns which series: what the predictors announce in their heartbeats.
    let predictors = Arc::new(remote::RemotePredictors::with_claim_ttl(
        &config.predictor_urls,
        config.heartbeat_interval * 3,
    ));
    let heartbeats = bus.follow(Topic::Heartbeats).await?;
    let stop_following = CancellationToken::new();
    let following = tokio::spawn(
        predictors
            .clone()
            .follow_claims(heartbeats, stop_following.clone()),
    );
    let _stop_following = stop_following.drop_guard();
    let gateway = parts::Gateway {
        training: Arc::new(remote::RemoteTrainer::new(trainer_url)),
        scoring: crate::alertmanager::notifying(predictors, config.alertmanager.as_ref()),
        store,
        stats: metrics,
        bus,
    };
    let router = parts::gateway(config.clone(), gateway, shutdown.clone()).await?;
    let served = serve_http(Role::Gateway, &config.server, listener, router, shutdown).await;
    drop(_stop_following);
    let _ = following.await;
    served
}

async fn trainer(
    config: &Config,
    bus: Arc<dyn EventBus>,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = backends::store(config).await?;
    let trainer = Arc::new(Trainer::new(store.clone(), bus));
    let router = observed(
        internal::trainer_routes(trainer, config.max_body_bytes).merge(crate::probes::routes(
            vec![crate::probes::Check::database(store)],
        )),
    );
    serve_http(Role::Trainer, &config.server, listener, router, shutdown).await
}

async fn predictor(
    config: &Config,
    bus: Arc<dyn EventBus>,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = backends::store(config).await?;
    let stop_following = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // What a predict teaches is logged on `points` before it is answered: the series' next
    // owner replays it if this process dies before checkpointing it. Every predictor instance
    // follows every model announcement.
    let predictor = parts::predictor(
        config,
        &bus,
        store.clone(),
        config.log_learnt_points,
        &mut tasks,
        &stop_following,
    )
    .await?;
    // The series it owns are those of its partitions of `points`, whose points it scores.
    let assignment = anomaly_workers::bus::Assignment::default();
    let claims = bus.follow(Topic::Heartbeats).await?;
    tasks.spawn(points_member::run(
        bus.clone(),
        PointScorer::new(predictor.clone(), predictor.clone()),
        assignment.clone(),
        claims,
        stop_following.clone(),
    ));
    let listener = listener.context("this role answers HTTP and needs a listener")?;
    let address = listener.local_addr()?;
    let url = match &config.advertised_url {
        Some(url) => url.clone(),
        // Listening on every interface: the host's name; on one address: that address.
        None if address.ip().is_unspecified() => format!(
            "http://{}:{}",
            anomaly_workers::heartbeat::host_name(),
            address.port()
        ),
        None => format!("http://{address}"),
    };
    tracing::info!(role = "predictor", %url, "announcing itself at");
    tasks.spawn(send_heartbeats(
        vec![Role::Predictor],
        instance_name(),
        bus.clone(),
        config.heartbeat_interval,
        Some(Claim {
            url,
            assignment: assignment.clone(),
        }),
        stop_following.clone(),
    ));
    tasks.spawn(release_on_rebalance(
        predictor.clone(),
        assignment,
        stop_following.clone(),
    ));
    let router = observed(
        internal::predictor_routes(predictor.clone(), config.max_body_bytes).merge(
            crate::probes::routes(vec![crate::probes::Check::database(store)]),
        ),
    );
    // On shutdown the port stays open until the last checkpoints are saved: predicts meanwhile
    // answer 503 (`stop_scoring`), so the gateway sends this predictor's series elsewhere only
    // once their state is in the database for the next owner to load.
    let closing = CancellationToken::new();
    // Fires on shutdown, or when serving ended by itself (a failed listener).
    let stop_now = shutdown.child_token();
    let stopped = {
        let (predictor, closing, stop_now) = (predictor.clone(), closing.clone(), stop_now.clone());
        async move {
            stop_now.cancelled().await;
            predictor.stop_scoring().await;
            predictor.checkpoint_all().await;
            // Saved: the port may close, and the slower goodbyes (leaving the group, whose
            // member commits what it replayed meanwhile) follow.
            closing.cancel();
            stop_following.cancel();
            while tasks.join_next().await.is_some() {}
            predictor.publish_metrics();
            predictor.checkpoint_all().await;
        }
    };
    let serving = serve_http(
        Role::Predictor,
        &config.server,
        Some(listener),
        router,
        closing,
    );
    tokio::pin!(stopped, serving);
    tokio::select! {
        served = &mut serving => {
            stop_now.cancel();
            stopped.await;
            served
        }
        () = &mut stopped => serving.await,
    }
}

/// How long a predictor lets a rebalance settle (a revocation is followed by an assignment)
/// before it lets go of the series it no longer owns.
const REBALANCE_SETTLE: Duration = Duration::from_millis(500);

/// After every rebalance, lets go of the cached series whose partitions went to another
/// predictor, saving their state first, so their new owner goes on from it.
async fn release_on_rebalance(
    predictor: Arc<Predictor>,
    assignment: anomaly_workers::bus::Assignment,
    stop: CancellationToken,
) {
    let mut rebalances = assignment.watch();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = rebalances.changed() => if changed.is_err() { return },
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(REBALANCE_SETTLE) => {}
        }
        let held = rebalances.borrow_and_update().clone();
        if held.partition_count > 0 {
            predictor.release(|series| held.holds(series.as_str()));
        }
    }
}

async fn metrics_consumer(
    config: &Config,
    bus: Arc<dyn EventBus>,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = backends::shared_metrics(config, Role::MetricsConsumer).await?;
    let group = Role::MetricsConsumer.name();
    let probes = crate::probes::routes(vec![crate::probes::Check::metrics(metrics.clone())]);
    let http = serve_observability(Role::MetricsConsumer, config, listener, probes, &shutdown);
    let mut consumers = JoinSet::new();
    parts::metrics_consumer(&bus, metrics, &mut consumers, &shutdown).await?;
    tracing::info!(role = group, "consuming");
    while consumers.join_next().await.is_some() {}
    http.await
}

async fn training_data_consumer(
    config: &Config,
    bus: Arc<dyn EventBus>,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let group = Role::TrainingDataConsumer.name();
    let store = backends::store(config).await?;
    let probes = crate::probes::routes(vec![crate::probes::Check::database(store.clone())]);
    let http = serve_observability(
        Role::TrainingDataConsumer,
        config,
        listener,
        probes,
        &shutdown,
    );
    // The same role stores alerts and makes their webhook deliveries: all Kafka → database.
    let mut consumers = JoinSet::new();
    parts::database_consumer(
        config,
        &bus,
        store,
        true,
        &mut consumers,
        &shutdown,
        shutdown.clone(),
    )
    .await?;
    tracing::info!(role = group, "consuming");
    while consumers.join_next().await.is_some() {}
    http.await
}

/// A consumer's HTTP side: its probes and `/metrics`, served until `shutdown` (nothing when it
/// was given no listener).
fn serve_observability(
    role: Role,
    config: &Config,
    listener: Option<TcpListener>,
    probes: Router,
    shutdown: &CancellationToken,
) -> impl std::future::Future<Output = anyhow::Result<()>> + use<> {
    let limits = config.server.clone();
    let shutdown = shutdown.clone();
    let task = listener.map(|listener| {
        tokio::spawn(async move {
            serve_http(role, &limits, Some(listener), observed(probes), shutdown).await
        })
    });
    async move {
        match task {
            Some(task) => task.await.context("the HTTP task")?,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_distributed_role_refuses_the_in_process_bus_saying_what_to_set() {
        let config = Arc::new(Config::from_lookup(|_| None).unwrap());
        let shutdown = CancellationToken::new();
        let err = run(Role::Gateway, config, None, shutdown)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("KAFKA_BROKERS"), "{err}");
    }
}
