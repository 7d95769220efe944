//! The consumer roles and the loop they share: take an event, do the write, and only then ack
//! it, so a crash redelivers instead of losing (the writes themselves are idempotent). Events
//! that can never be processed are logged and skipped; a failing store is retried with capped
//! backoff.

mod alerts;
mod metrics;
mod points;
mod training_data;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{BusError, Delivery, Subscription};
use crate::events::Event;

pub use alerts::AlertWriter;
pub use metrics::StatsWriter;
pub use points::{PointScorer, score_points};
pub use training_data::TrainingDataWriter;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event can never be processed (wrong type for this topic, say): skip it.
    #[error("unprocessable event: {0}")]
    Poison(String),
    /// The write failed but may succeed later (a backend is down): try again.
    #[error("{0}")]
    Transient(#[source] crate::cause::Cause),
}

/// One consumer's write for one event; must be idempotent.
#[async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, event: &Event) -> Result<(), HandleError>;
}

/// Runs `handler` over `subscription` until the subscription ends (the bus closed and drained)
/// or `stop` fires. An event being written when `stop` fires is finished first, unless its
/// backend is down: then it is left unacknowledged, to be delivered again.
pub async fn consume(
    name: &'static str,
    subscription: Box<dyn Subscription>,
    handler: &dyn Handler,
    stop: CancellationToken,
) {
    run(name, subscription, handler, None, stop).await
}

/// What must be durable before a consumer's offsets move past the events it handled, when
/// handling an event changes state that is saved apart from it (a predictor's learning).
#[async_trait]
pub trait Commit: Send + Sync {
    /// How long a consumer goes between commits while events flow.
    fn every(&self) -> Duration;
    /// Makes durable what the events handled so far changed.
    async fn prepare(&self) -> Result<(), String>;
}

/// `consume`, acknowledging in steps: at most every `commit.every()`, and when it stops, it
/// runs `commit.prepare()` and only then acknowledges what it handled since the last step.
pub async fn consume_committing(
    name: &'static str,
    subscription: Box<dyn Subscription>,
    handler: &dyn Handler,
    commit: &dyn Commit,
    stop: CancellationToken,
) {
    run(name, subscription, handler, Some(commit), stop).await
}

/// Handled deliveries waiting for a commit: the newest of each partition (acknowledging it
/// acknowledges everything before it).
#[derive(Default)]
struct Uncommitted {
    newest: HashMap<i32, Delivery>,
    since: Option<Instant>,
}

impl Uncommitted {
    /// Prepares and acknowledges what waits once `commit.every()` has passed since the first
    /// of it was handled, or at once when `force` (stopping).
    async fn commit(
        &mut self,
        subscription: &mut dyn Subscription,
        commit: &dyn Commit,
        force: bool,
    ) {
        let Some(since) = self.since else { return };
        if !force && since.elapsed() < commit.every() {
            return;
        }
        if let Err(reason) = commit.prepare().await {
            // Nothing is acknowledged: a crash redelivers, and the next step tries again.
            tracing::warn!(%reason, "could not make the handled events durable; not committing");
            self.since = Some(Instant::now());
            return;
        }
        for (_, delivery) in self.newest.drain() {
            if let Err(err) = subscription.ack(&delivery).await {
                tracing::warn!(error = %err, "could not acknowledge; the event may be delivered again");
            }
        }
        self.since = None;
    }
}

#[tracing::instrument(skip_all, fields(consumer = name))]
async fn run(
    name: &'static str,
    mut subscription: Box<dyn Subscription>,
    handler: &dyn Handler,
    commit: Option<&dyn Commit>,
    stop: CancellationToken,
) {
    let mut uncommitted = Uncommitted::default();
    let mut backoff = FIRST_BACKOFF;
    let mut handled: u64 = 0;
    // Registered once: a labelled counter looked up per event allocates its key every time.
    let events = ::metrics::counter!("anomaly_consumer_events_total", "consumer" => name);
    let missed_events = ::metrics::counter!("anomaly_consumer_missed_total", "consumer" => name);
    loop {
        // A commit falls due even while no event arrives (`next` is cancellation safe).
        let due = commit
            .zip(uncommitted.since)
            .map(|(c, since)| since + c.every());
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            () = sleep_until(due) => None,
            next = subscription.next() => Some(next),
        };
        let Some(next) = next else {
            if let Some(commit) = commit {
                uncommitted.commit(&mut *subscription, commit, false).await;
            }
            continue;
        };
        let delivery = match next {
            Ok(Some(delivery)) => delivery,
            Ok(None) => break,
            Err(BusError::Lagged(missed)) => {
                missed_events.increment(missed);
                tracing::error!(missed, "consumer fell behind and missed events");
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not receive; retrying");
                if !pause(&stop, &mut backoff).await {
                    break;
                }
                continue;
            }
        };
        if !handle_until_done(handler, &delivery, &stop, &mut backoff, handled).await {
            break;
        }
        backoff = FIRST_BACKOFF;
        handled += 1;
        events.increment(1);
        match (commit, delivery.position) {
            (Some(commit), Some(position)) => {
                uncommitted.newest.insert(position.partition, delivery);
                uncommitted.since.get_or_insert_with(Instant::now);
                uncommitted.commit(&mut *subscription, commit, false).await;
            }
            _ => {
                if let Err(err) = subscription.ack(&delivery).await {
                    tracing::warn!(error = %err, "could not acknowledge; the event may be delivered again");
                }
            }
        }
    }
    if let Some(commit) = commit {
        uncommitted.commit(&mut *subscription, commit, true).await;
    }
    tracing::info!(handled, "consumer stopped");
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Handles one delivery, retrying transient failures with backoff and skipping poison; false
/// when `stop` fired while its backend was down (the delivery is left unacknowledged).
async fn handle_until_done(
    handler: &dyn Handler,
    delivery: &Delivery,
    stop: &CancellationToken,
    backoff: &mut Duration,
    handled: u64,
) -> bool {
    let span = tracing::info_span!("handle", topic = %delivery.event.topic());
    crate::trace_context::continue_in(&span, &delivery.trace);
    loop {
        match handler
            .handle(&delivery.event)
            .instrument(span.clone())
            .await
        {
            Ok(()) => return true,
            Err(HandleError::Poison(reason)) => {
                tracing::error!(%reason, topic = %delivery.event.topic(), "skipping an unprocessable event");
                return true;
            }
            Err(HandleError::Transient(reason)) => {
                tracing::warn!(%reason, "write failed; retrying");
                if !pause(stop, backoff).await {
                    tracing::info!(
                        handled,
                        "consumer stopped with an event left unacknowledged"
                    );
                    return false;
                }
            }
        }
    }
}

/// Waits out the current backoff and doubles it (capped); false if `stop` fired meanwhile.
async fn pause(stop: &CancellationToken, backoff: &mut Duration) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}
