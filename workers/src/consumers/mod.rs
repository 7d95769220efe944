//! The consumer roles and the loop they share: take an event, do the write, and only then ack
//! it, so a crash redelivers instead of losing (the writes themselves are idempotent). Events
//! that can never be processed are logged and skipped; a failing store is retried with capped
//! backoff.

mod alerts;
mod metrics;
mod points;
mod training_data;

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{BusError, Subscription};
use crate::events::Event;

pub use alerts::AlertWriter;
pub use metrics::MetricsWriter;
pub use points::PointScorer;
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
    Transient(String),
}

/// One consumer's write for one event; must be idempotent.
#[async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, event: &Event) -> Result<(), HandleError>;
}

/// Runs `handler` over `subscription` until the subscription ends (the bus closed and drained)
/// or `stop` fires. An event being written when `stop` fires is finished first, unless its
/// backend is down: then it is left unacknowledged, to be delivered again.
#[tracing::instrument(skip_all, fields(consumer = name))]
pub async fn consume(
    name: &'static str,
    mut subscription: Box<dyn Subscription>,
    handler: &dyn Handler,
    stop: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut handled: u64 = 0;
    // Registered once: a labelled counter looked up per event allocates its key every time.
    let events = ::metrics::counter!("anomaly_consumer_events_total", "consumer" => name);
    let missed_events = ::metrics::counter!("anomaly_consumer_missed_total", "consumer" => name);
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            next = subscription.next() => next,
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
        let span = tracing::info_span!("handle", topic = %delivery.event.topic());
        crate::trace_context::continue_in(&span, &delivery.trace);
        loop {
            match handler
                .handle(&delivery.event)
                .instrument(span.clone())
                .await
            {
                Ok(()) => break,
                Err(HandleError::Poison(reason)) => {
                    tracing::error!(%reason, topic = %delivery.event.topic(), "skipping an unprocessable event");
                    break;
                }
                Err(HandleError::Transient(reason)) => {
                    tracing::warn!(%reason, "write failed; retrying");
                    if !pause(&stop, &mut backoff).await {
                        tracing::info!(
                            handled,
                            "consumer stopped with an event left unacknowledged"
                        );
                        return;
                    }
                }
            }
        }
        backoff = FIRST_BACKOFF;
        handled += 1;
        events.increment(1);
        if let Err(err) = subscription.ack(&delivery).await {
            tracing::warn!(error = %err, "could not acknowledge; the event may be delivered again");
        }
    }
    tracing::info!(handled, "consumer stopped");
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
