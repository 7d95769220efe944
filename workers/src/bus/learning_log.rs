//! A predictor's learning log on Kafka, written as a group commit. Every predict of an online
//! model is answered only once the point it taught is on `points` (`Predictor::logging_points`),
//! and a broker pays for every record it stores (tansu writes each to SQLite): one record per
//! predict made the broker's acknowledgement the bound of a distributed deployment. Here the
//! points appended while `ROUNDS_IN_FLIGHT` rounds of records are on their way wait together,
//! and the next round writes them as one record per partition (`LearntPoints`, at most
//! `MAX_POINTS_PER_RECORD` points): a busy predictor writes a few records per round whatever its
//! rate, an idle one each point at once. The log has its own producer, which sends a record as
//! soon as it is handed over (`linger.ms` 0: the rounds are the batching); rounds are sent in
//! turn and the idempotent producer keeps a partition's records in order, so a series' points
//! reach the log in the order they were learnt.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use super::kafka::{
    DELIVERY_TIMEOUT, METADATA_TIMEOUT, acknowledged, not_acknowledged, not_queued,
    partition_count, unavailable,
};
use super::{Acknowledgement, BusError};
use crate::events::{IngestedPoint, LearntPoints, Topic};
use crate::partitioner::partition_of;

/// Most points in one record: about 100 bytes each, well under a broker's default 1 MB limit on
/// a record even with long series ids.
pub const MAX_POINTS_PER_RECORD: usize = 1_000;
/// Rounds on their way at once: a round waits for a slot, and the points that arrive meanwhile
/// wait with it (the idempotent producer keeps a partition's records in order across them).
pub const ROUNDS_IN_FLIGHT: usize = 4;
/// How often the topic's partition count is read again.
const PARTITIONS_READ_EVERY: Duration = Duration::from_secs(60);
/// Most points waiting for their round: beyond, `append` refuses (the broker is away or slow,
/// and the predict answers 503 instead of queueing without end).
pub const MAX_WAITING: usize = 100_000;

struct Waiting {
    point: IngestedPoint,
    done: oneshot::Sender<Result<(), BusError>>,
}

/// The points waiting for the next round; None once the writer stopped.
pub struct LearningLog {
    waiting: Mutex<Option<Vec<Waiting>>>,
    wake: Notify,
}

impl LearningLog {
    /// A log, and the task that writes it on `topic` with a producer made of `config` until
    /// `stop` fires and nothing waits.
    pub fn start(config: ClientConfig, topic: String, stop: CancellationToken) -> Arc<Self> {
        let log = Arc::new(Self {
            waiting: Mutex::new(Some(Vec::new())),
            wake: Notify::new(),
        });
        let writer = Writer {
            log: log.clone(),
            config,
            producer: None,
            topic,
            partitions: None,
        };
        tokio::spawn(writer.run(stop));
        log
    }

    /// Queues `point` for the next round; what it returns resolves once the brokers hold it, or
    /// fails `DELIVERY_TIMEOUT` after the append (a point that waited for a round behind others
    /// stuck on an absent broker is not given longer).
    pub fn append(&self, point: IngestedPoint) -> Result<Acknowledgement, BusError> {
        let (done, acknowledged) = oneshot::channel();
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            let Some(waiting) = waiting.as_mut() else {
                return Err(BusError::Closed);
            };
            if waiting.len() >= MAX_WAITING {
                return Err(BusError::Full(Topic::Points));
            }
            waiting.push(Waiting { point, done });
        }
        self.wake.notify_one();
        Ok(Box::pin(async move {
            match tokio::time::timeout(DELIVERY_TIMEOUT, acknowledged).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(BusError::Unavailable(crate::cause::Cause::message(
                    "the learning log stopped before the brokers acknowledged the point",
                ))),
                // It stays queued: the producer delivers it once the brokers are back.
                Err(_) => Err(not_acknowledged()),
            }
        }))
    }

    /// What waits now; with `close`, the log takes nothing more.
    fn take(&self, close: bool) -> Vec<Waiting> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if close {
            waiting.take().unwrap_or_default()
        } else {
            waiting.as_mut().map(std::mem::take).unwrap_or_default()
        }
    }
}

struct Writer {
    log: Arc<LearningLog>,
    /// The log's own producer, made at the first round: it sends each record at once
    /// (`linger.ms` 0), the rounds being the batching.
    config: ClientConfig,
    producer: Option<FutureProducer>,
    topic: String,
    /// How many partitions the topic has, and when that was read (again after
    /// `PARTITIONS_READ_EVERY`: an operator may add partitions).
    partitions: Option<(i32, tokio::time::Instant)>,
}

impl Writer {
    async fn run(mut self, stop: CancellationToken) {
        let in_flight = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
        loop {
            // While every round is out, points wait and go together in the next.
            let Ok(slot) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let waiting = self.log.take(false);
            if waiting.is_empty() {
                tokio::select! {
                    () = self.log.wake.notified() => continue,
                    () = stop.cancelled() => break,
                }
            }
            let sent = self.send_round(waiting).await;
            tokio::spawn(async move {
                acknowledge(sent).await;
                drop(slot);
            });
        }
        // Stopping: what was appended before the bus closed is still written.
        let last = self.log.take(true);
        if !last.is_empty() {
            acknowledge(self.send_round(last).await).await;
        }
    }

    /// Sends `waiting` as one record per partition (or a few, for a big round); what failed to
    /// go is told at once.
    async fn send_round(&mut self, waiting: Vec<Waiting>) -> Vec<Sent> {
        let partitions = match self.partitions().await {
            Ok(partitions) => partitions,
            Err(err) => {
                fail(waiting, &err);
                return Vec::new();
            }
        };
        let mut by_partition: BTreeMap<i32, Vec<Waiting>> = BTreeMap::new();
        for one in waiting {
            let partition = partition_of(&one.point.series_id, partitions);
            by_partition.entry(partition).or_default().push(one);
        }
        let mut sent = Vec::new();
        for (partition, mut group) in by_partition {
            while !group.is_empty() {
                let rest = group.split_off(group.len().min(MAX_POINTS_PER_RECORD));
                let chunk = std::mem::replace(&mut group, rest);
                let (points, done): (Vec<_>, Vec<_>) =
                    chunk.into_iter().map(|w| (w.point, w.done)).unzip();
                let record = LearntPoints { learnt: points };
                match self.send(partition, &record) {
                    Ok(delivery) => sent.push((delivery, done)),
                    Err(err) => tell(done, Err(&err)),
                }
            }
        }
        sent
    }

    fn send(
        &mut self,
        partition: i32,
        record: &LearntPoints,
    ) -> Result<rdkafka::producer::DeliveryFuture, BusError> {
        let payload = serde_json::to_vec(record).map_err(|e| {
            BusError::Unavailable(crate::cause::Cause::context("encoding learnt points", e))
        })?;
        let topic = self.topic.clone();
        let record = FutureRecord::to(&topic)
            .partition(partition)
            .key(record.key())
            .payload(&payload);
        self.producer()?
            .send_result(record)
            .map_err(|(err, _)| not_queued(err, Topic::Points))
    }

    fn producer(&mut self) -> Result<&FutureProducer, BusError> {
        if self.producer.is_none() {
            let producer = self
                .config
                .clone()
                .set("linger.ms", "0")
                .create()
                .map_err(unavailable)?;
            self.producer = Some(producer);
        }
        Ok(self.producer.as_ref().expect("made above"))
    }

    /// The topic's partition count, as the brokers said at most `PARTITIONS_READ_EVERY` ago
    /// (or the last count read, while they cannot say).
    async fn partitions(&mut self) -> Result<i32, BusError> {
        match self.partitions {
            Some((partitions, read)) if read.elapsed() < PARTITIONS_READ_EVERY => Ok(partitions),
            known => {
                let read = self.read_partitions().await;
                match (read, known) {
                    (Ok(count), _) | (Err(_), Some((count, _))) => {
                        self.partitions = Some((count, tokio::time::Instant::now()));
                        Ok(count)
                    }
                    (Err(err), None) => Err(err),
                }
            }
        }
    }

    async fn read_partitions(&mut self) -> Result<i32, BusError> {
        let (producer, topic) = (self.producer()?.clone(), self.topic.clone());
        match partition_count(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
        })
        .await?
        {
            0 => Err(BusError::Unavailable(crate::cause::Cause::message(
                format!("topic {} has no partitions yet", self.topic),
            ))),
            count => Ok(count),
        }
    }
}

/// A record on its way and the predicts waiting for it.
type Sent = (
    rdkafka::producer::DeliveryFuture,
    Vec<oneshot::Sender<Result<(), BusError>>>,
);

/// Tells each predict of `sent` how its record fared, once the brokers say or
/// `DELIVERY_TIMEOUT` after the round was sent (its slot is then free for the next).
async fn acknowledge(sent: Vec<Sent>) {
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    for (delivery, done) in sent {
        tell(
            done,
            acknowledged(delivery, deadline).await.as_ref().copied(),
        );
    }
}

fn fail(waiting: Vec<Waiting>, err: &BusError) {
    tell(waiting.into_iter().map(|w| w.done).collect(), Err(err));
}

fn tell(done: Vec<oneshot::Sender<Result<(), BusError>>>, outcome: Result<(), &BusError>) {
    for done in done {
        let _ = done.send(outcome.map_err(clone_error));
    }
}

/// The same failure for every point of a record (`BusError` holds a source, so is not Clone).
fn clone_error(err: &BusError) -> BusError {
    match err {
        BusError::Closed => BusError::Closed,
        BusError::Full(topic) => BusError::Full(*topic),
        BusError::Lagged(missed) => BusError::Lagged(*missed),
        BusError::Unavailable(cause) => {
            BusError::Unavailable(crate::cause::Cause::message(cause.to_string()))
        }
    }
}
