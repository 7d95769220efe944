//! The event bus port: how roles hand events to each other (the topics of `events::Topic`). One
//! trait, one file per backend: `memory` (bounded in-process queues, the embedded default) and
//! `kafka` (the distributed deployment). Every backend passes the contract suite in `contract.rs`.

mod closing;
mod kafka;
mod learning_log;
mod memory;

#[cfg(test)]
mod contract;

use std::sync::Arc;

use async_trait::async_trait;

use crate::events::{Event, Topic};

pub use closing::wait_for_closing_consumers;
/// A `KafkaBus` on librdkafka's in-process mock cluster, with fresh topics: for tests.
#[cfg(test)]
pub(crate) use kafka::tests::mock as mock_kafka;
pub use kafka::{KafkaBus, KafkaOptions};
pub use memory::MemoryBus;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the event bus is closed")]
    Closed,
    #[error("the event bus queue for topic {0} is full")]
    Full(Topic),
    #[error("this follower fell behind and missed {0} events")]
    Lagged(u64),
    #[error("the event bus is unavailable: {0}")]
    Unavailable(#[source] crate::cause::Cause),
}

/// Where a delivered event sits in its topic, so that `ack` can store the right offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Event,
    /// None on backends that keep no offsets (the in-process bus).
    pub position: Option<Position>,
    /// The trace context the publisher sent along (Kafka headers); empty when none.
    pub trace: crate::trace_context::Carrier,
}

/// Resolves once the bus holds an event as `publish` would have (Kafka: the brokers acknowledged
/// it).
pub type Acknowledgement =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BusError>> + Send>>;

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Returns once the bus has taken responsibility for the event (Kafka: acknowledged by the
    /// brokers). Waits while the bus is full: backpressure, never loss.
    async fn publish(&self, event: Event) -> Result<(), BusError>;

    /// Hands the event over without waiting on the bus: for metrics and live feeds on the hot
    /// path. A full bus refuses the event instead of blocking.
    fn emit(&self, event: Event) -> Result<(), BusError>;

    /// Hands the event over as `emit` does (in order with the events emitted around it, without
    /// waiting: callable under a lock), and returns what resolves once the bus holds it as
    /// `publish` would: for an event that must not be reported done before it is safe (an alert).
    /// The in-process bus holds an event once it is queued.
    fn emit_acknowledged(&self, event: Event) -> Result<Acknowledgement, BusError> {
        self.emit(event)?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }

    /// Joins consumer group `group` on `topic`: each event goes to exactly one member of each
    /// group. Events are delivered at least once; `ack` after the work is done.
    async fn join_group(
        &self,
        topic: Topic,
        group: &str,
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// Follows every event of `topic` published from now on; every follower sees all of them.
    /// A follower that falls too far behind is told so (`BusError::Lagged`) and carries on.
    async fn follow(&self, topic: Topic) -> Result<Box<dyn Subscription>, BusError>;

    /// Stops accepting events. Subscribers receive what was already accepted, then `None`.
    fn close(&self);
}

#[async_trait]
pub trait Subscription: Send {
    /// The next event, or `None` once the bus is closed and everything accepted was delivered.
    async fn next(&mut self) -> Result<Option<Delivery>, BusError>;

    /// Records that `delivery` was processed, so it is not delivered to the group again.
    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError>;

    /// The partitions this group member holds, kept current across rebalances; None on
    /// backends without partitions (the in-process bus) and for followers.
    fn assignment(&self) -> Option<Assignment> {
        None
    }
}

/// The partitions a group member holds, as its backend reports them after every rebalance:
/// shared between the member and whoever acts on it (the predictor's heartbeats, and its cache,
/// which lets go of the series it no longer owns).
#[derive(Clone)]
pub struct Assignment(Arc<tokio::sync::watch::Sender<Held>>);

impl Default for Assignment {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(Held::default())))
    }
}

/// A member's partitions of one topic, and how many the topic has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub partitions: Vec<i32>,
    pub partition_count: i32,
}

impl Held {
    /// Whether the series keyed `key` is in these partitions.
    pub fn holds(&self, key: &str) -> bool {
        self.partition_count > 0
            && self
                .partitions
                .binary_search(&crate::partitioner::partition_of(key, self.partition_count))
                .is_ok()
    }
}

impl Assignment {
    pub fn now(&self) -> Held {
        self.0.borrow().clone()
    }

    /// Records the partitions held now (in any order); watchers see a change only when they
    /// differ.
    pub fn hold(&self, mut partitions: Vec<i32>) {
        partitions.sort_unstable();
        partitions.dedup();
        self.0.send_if_modified(|held| {
            let changed = held.partitions != partitions;
            held.partitions = partitions;
            changed
        });
    }

    pub fn set_partition_count(&self, count: i32) {
        self.0.send_modify(|held| held.partition_count = count);
    }

    /// A receiver that wakes at every change of the partitions held.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<Held> {
        self.0.subscribe()
    }
}
