//! The event bus on Kafka (rdkafka): JSON events keyed by series id, an idempotent producer, and
//! consumers that store an offset only when `ack` says the work is done (at-least-once; the
//! writes downstream are idempotent). Stored offsets are committed every second, on a rebalance
//! (librdkafka commits before giving partitions up) and when a subscription ends. Poison messages
//! are logged and skipped; a skipped one's offset is stored only once every event delivered
//! before it on its partition is acked, so a member that commits only what it made durable never
//! commits past events it has not (`PartitionProgress`). Followers read every partition from the
//! end, each on its own, so every
//! follower sees every new event. Records are partitioned as the Java client does (murmur2), so
//! a series lands where `partitioner::partition_of` says whoever produced it; `points` carries
//! bare `IngestedPoint`s, not the event envelope, so any producer can write it, and the records
//! of predictors' learning logs (`learning_log`: bare `LearntPoints`). A group member
//! keeps its `Assignment` current after every rebalance.
//!
//! Topic and group names get an optional prefix, so tests (and tenants) never share them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::learning_log::LearningLog;
use super::{BusError, Delivery, EventBus, Position, Subscription};
use crate::events::{Event, Topic};

/// How long a publish waits for the brokers' acknowledgement before it fails (the event stays
/// queued: see `KafkaBus::connect`).
pub(super) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most the producer queues for brokers that are away (librdkafka's default is 1 GiB).
const PRODUCER_QUEUE_KBYTES: &str = "131072";
/// How long a follower's fetch waits at the broker for new records.
const FOLLOWER_FETCH_WAIT_MS: &str = "10";
/// How long metadata and watermark requests may take.
pub(super) const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the brokers are and how topics are made.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    pub brokers: String,
    /// Put before every topic and group name (empty in a normal deployment).
    pub prefix: String,
    /// Partitions of topics created at start.
    pub partitions: i32,
    /// Replication factor of topics created at start.
    pub replication: i32,
    /// How long the producer holds events to send them in one request: a live event is that
    /// much later, and the broker gets that many fewer requests.
    pub linger: Duration,
    /// Create missing topics at start (off only where something else made them: librdkafka's
    /// mock cluster has no CreateTopics).
    pub create_topics: bool,
}

#[derive(Clone)]
pub struct KafkaBus {
    options: Arc<KafkaOptions>,
    producer: FutureProducer,
    /// Where `emit_acknowledged` puts the points predicts taught (`learning_log`).
    learning_log: Arc<LearningLog>,
    closed: Arc<AtomicBool>,
    stop: CancellationToken,
}

/// A publish whose acknowledgement did not come within `DELIVERY_TIMEOUT`.
pub(super) fn not_acknowledged() -> BusError {
    BusError::Unavailable(crate::cause::Cause::message(format!(
        "the brokers did not acknowledge the event within {DELIVERY_TIMEOUT:?}"
    )))
}

pub(super) fn unavailable(err: KafkaError) -> BusError {
    BusError::Unavailable(crate::cause::Cause::new(err))
}

/// A record of `points`: a producer's point, or a record of a predictor's learning log. The
/// log's records are known by how the log writes them (`{"learnt":`), so neither kind is parsed
/// twice; anything else that is not a point is still tried as a log record.
fn decode_points(bytes: &[u8]) -> serde_json::Result<Event> {
    if bytes.starts_with(br#"{"learnt":"#) {
        return serde_json::from_slice(bytes).map(Event::Learnt);
    }
    serde_json::from_slice(bytes)
        .map(Event::Point)
        .or_else(|err| {
            serde_json::from_slice(bytes)
                .map(Event::Learnt)
                .map_err(|_| err)
        })
}

/// Why the producer did not take a record for `topic`: its queue is full, or worse.
pub(super) fn not_queued(err: KafkaError, topic: Topic) -> BusError {
    match err {
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => BusError::Full(topic),
        err => unavailable(err),
    }
}

/// What became of a queued record by `deadline`: acknowledged by the brokers, failed, or not
/// acknowledged yet (it stays queued: see `KafkaBus::connect`).
pub(super) async fn acknowledged(
    delivery: rdkafka::producer::DeliveryFuture,
    deadline: tokio::time::Instant,
) -> Result<(), BusError> {
    match tokio::time::timeout_at(deadline, delivery).await {
        Ok(Ok(Ok(_))) => Ok(()),
        Ok(Ok(Err((err, _)))) => Err(unavailable(err)),
        Ok(Err(_)) => Err(BusError::Unavailable(crate::cause::Cause::message(
            "the producer stopped before the brokers acknowledged the event",
        ))),
        Err(_) => Err(not_acknowledged()),
    }
}

/// How many partitions the topic has, as `fetch` (a metadata request for it, which blocks) says.
pub(super) async fn partition_count(
    fetch: impl FnOnce() -> rdkafka::error::KafkaResult<rdkafka::metadata::Metadata> + Send + 'static,
) -> Result<i32, BusError> {
    let count = tokio::task::spawn_blocking(move || {
        fetch().map(|m| m.topics().first().map_or(0, |t| t.partitions().len()))
    })
    .await
    .map_err(|e| BusError::Unavailable(crate::cause::Cause::context("reading topic metadata", e)))?
    .map_err(unavailable)?;
    Ok(i32::try_from(count).unwrap_or(i32::MAX))
}

impl KafkaBus {
    /// How long the group coordinator waits for a silent member (one that died without leaving)
    /// before handing its partitions to the others.
    pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects, and creates the topics of `Topic::ALL` that are missing.
    pub async fn connect(options: KafkaOptions) -> Result<Self, BusError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &options.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", options.linger.as_millis().to_string())
            // Queued events never expire (as Kafka Streams sets its producers): a publish gives
            // up waiting after DELIVERY_TIMEOUT, the event is delivered once the brokers are back.
            // An idempotent producer whose events expire bumps its epoch (KIP-360), which tansu
            // 0.6's SQLite engine cannot take: it panics and serves nothing more
            // (docs/tansu/restart_produce.py). The queue is bounded: full, a publish fails at once.
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.kbytes", PRODUCER_QUEUE_KBYTES);
        let producer: FutureProducer = config.create().map_err(unavailable)?;
        let stop = CancellationToken::new();
        let learning_log = LearningLog::start(
            config,
            format!("{}{}", options.prefix, Topic::Points.name()),
            stop.clone(),
        );
        let bus = Self {
            options: Arc::new(options),
            producer,
            learning_log,
            closed: Arc::new(AtomicBool::new(false)),
            stop,
        };
        if bus.options.create_topics {
            bus.create_topics().await?;
        }
        Ok(bus)
    }

    fn topic_name(&self, topic: Topic) -> String {
        format!("{}{}", self.options.prefix, topic.name())
    }

    async fn create_topics(&self) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            .create()
            .map_err(unavailable)?;
        let names: Vec<String> = Topic::ALL.iter().map(|t| self.topic_name(*t)).collect();
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| {
                NewTopic::new(
                    name,
                    self.options.partitions,
                    TopicReplication::Fixed(self.options.replication),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
        let results = admin
            .create_topics(&topics, &options)
            .await
            .map_err(unavailable)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(BusError::Unavailable(crate::cause::Cause::message(
                        format!("creating topic {name}: {code}"),
                    )));
                }
            }
        }
        Ok(())
    }

    fn encode(event: &Event) -> Result<Vec<u8>, BusError> {
        match event {
            Event::Point(point) => serde_json::to_vec(point),
            Event::Learnt(points) => serde_json::to_vec(points),
            event => serde_json::to_vec(event),
        }
        .map_err(|e| BusError::Unavailable(crate::cause::Cause::context("encoding an event", e)))
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.options.brokers)
            .set("group.id", format!("{}{group}", self.options.prefix))
            .set("enable.partition.eof", "false")
            .set(
                "session.timeout.ms",
                Self::SESSION_TIMEOUT.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "1000");
        config
    }

    /// Queues `event` in the producer without waiting; the future resolves on the brokers'
    /// acknowledgement (or the final failure).
    fn enqueue(&self, event: &Event) -> Result<rdkafka::producer::DeliveryFuture, BusError> {
        self.check_open()?;
        let payload = Self::encode(event)?;
        let topic = self.topic_name(event.topic());
        let record = record(&topic, event, &payload);
        self.producer
            .send_result(record)
            .map_err(|(err, _)| not_queued(err, event.topic()))
    }

    fn check_open(&self) -> Result<(), BusError> {
        if self.closed.load(Ordering::Acquire) {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn publish(&self, event: Event) -> Result<(), BusError> {
        self.check_open()?;
        let payload = Self::encode(&event)?;
        let topic = self.topic_name(event.topic());
        let record = record(&topic, &event, &payload);
        let delivery = self.producer.send(record, Timeout::After(DELIVERY_TIMEOUT));
        match tokio::time::timeout(DELIVERY_TIMEOUT, delivery).await {
            Ok(delivered) => delivered.map(|_| ()).map_err(|(err, _)| unavailable(err)),
            Err(_) => Err(not_acknowledged()),
        }
    }

    fn emit(&self, event: Event) -> Result<(), BusError> {
        // Nobody waits on the delivery; librdkafka retries it and logs a final failure.
        self.enqueue(&event).map(drop)
    }

    fn emit_acknowledged(&self, event: Event) -> Result<super::Acknowledgement, BusError> {
        // A point a predict taught goes in the learning log's next round.
        let event = match event {
            Event::Point(point) if point.scored.is_some() => {
                self.check_open()?;
                return self.learning_log.append(point);
            }
            event => event,
        };
        let delivery = self.enqueue(&event)?;
        let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
        Ok(Box::pin(acknowledged(delivery, deadline)))
    }

    async fn join_group(
        &self,
        topic: Topic,
        group: &str,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.check_open()?;
        let name = self.topic_name(topic);
        let assignment = super::Assignment::default();
        let context = MemberContext {
            topic: name.clone(),
            assignment: Some(assignment.clone()),
        };
        let consumer: StreamConsumer<MemberContext> = self
            .consumer_config(group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("statistics.interval.ms", LAG_INTERVAL_MS)
            .create_with_context(context)
            .map_err(unavailable)?;
        consumer.subscribe(&[&name]).map_err(unavailable)?;
        let consumer = Arc::new(consumer);
        let counting = consumer.clone();
        let topic_name = name.clone();
        let count = partition_count(move || {
            counting.fetch_metadata(Some(topic_name.as_str()), METADATA_TIMEOUT)
        })
        .await?;
        assignment.set_partition_count(count);
        Ok(Box::new(KafkaSubscription {
            consumer: OwnedConsumer(Some(consumer)),
            topic: name,
            bare_points: topic == Topic::Points,
            commits: true,
            assignment: Some(assignment),
            stop: self.stop.clone(),
            positions: Default::default(),
        }))
    }

    async fn follow(&self, topic: Topic) -> Result<Box<dyn Subscription>, BusError> {
        self.check_open()?;
        let group = format!("follower-{}", uuid::Uuid::new_v4().simple());
        let context = MemberContext {
            topic: self.topic_name(topic),
            assignment: None,
        };
        let consumer: StreamConsumer<MemberContext> = self
            .consumer_config(&group)
            .set("enable.auto.commit", "false")
            // A live feed: a broker that answers an empty fetch only after this long (tansu
            // does not answer a waiting fetch when a record arrives) would delay every event by
            // it; librdkafka's default is 500 ms. A process follows few topics, so the extra
            // fetches cost little.
            .set("fetch.wait.max.ms", FOLLOWER_FETCH_WAIT_MS)
            .create_with_context(context)
            .map_err(unavailable)?;
        let name = self.topic_name(topic);
        // "From now on": start every partition at its current end, without a group rebalance.
        let consumer = tokio::task::spawn_blocking(move || -> Result<_, KafkaError> {
            let metadata = consumer.fetch_metadata(Some(&name), METADATA_TIMEOUT)?;
            let mut assignment = TopicPartitionList::new();
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let (_, high) =
                    consumer.fetch_watermarks(&name, partition.id(), METADATA_TIMEOUT)?;
                assignment.add_partition_offset(&name, partition.id(), Offset::Offset(high))?;
            }
            consumer.assign(&assignment)?;
            Ok((consumer, name))
        })
        .await
        .map_err(|e| BusError::Unavailable(crate::cause::Cause::context("following a topic", e)))?
        .map_err(unavailable)?;
        Ok(Box::new(KafkaSubscription {
            consumer: OwnedConsumer(Some(Arc::new(consumer.0))),
            topic: consumer.1,
            bare_points: topic == Topic::Points,
            commits: false,
            assignment: None,
            stop: self.stop.clone(),
            positions: Default::default(),
        }))
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.stop.cancel();
        if let Err(err) = self.producer.flush(Timeout::After(DELIVERY_TIMEOUT)) {
            tracing::warn!(error = %err, "events still queued for Kafka at close");
        }
    }
}

/// The record of `event`, with the current span's trace context as headers when there is one
/// (none when traces are off: no header block is allocated on the hot path).
fn record<'a>(topic: &'a str, event: &'a Event, payload: &'a [u8]) -> FutureRecord<'a, str, [u8]> {
    let record = FutureRecord::to(topic).key(event.key()).payload(payload);
    let trace = crate::trace_context::current();
    if trace.is_empty() {
        return record;
    }
    let headers = trace
        .iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        });
    record.headers(headers)
}

/// The trace context a message carries in its headers.
fn trace_of(message: &impl Message) -> crate::trace_context::Carrier {
    let Some(headers) = message.headers() else {
        return Vec::new();
    };
    headers
        .iter()
        .filter(|h| h.key == "traceparent" || h.key == "tracestate")
        .filter_map(|h| {
            let value = std::str::from_utf8(h.value?).ok()?;
            Some((h.key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// How often librdkafka reports a group member's statistics, consumer lag among them.
const LAG_INTERVAL_MS: &str = "5000";

/// A consumer's callbacks: librdkafka's periodic statistics become `anomaly_consumer_lag`
/// (messages a group member is behind each partition's end; followers ask for no statistics, so
/// report none), and a group member's partitions are recorded after every rebalance.
struct MemberContext {
    topic: String,
    assignment: Option<super::Assignment>,
}

impl ClientContext for MemberContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, figures) in &statistics.topics {
            for (partition, figures) in &figures.partitions {
                // -1: not consumed by this member (or not known yet).
                if *partition < 0 || figures.consumer_lag < 0 {
                    continue;
                }
                ::metrics::gauge!(
                    "anomaly_consumer_lag",
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(figures.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some(assignment) = &self.assignment else {
            return;
        };
        if let Rebalance::Error(err) = rebalance {
            tracing::warn!(topic = %self.topic, error = %err, "rebalance failed");
            return;
        }
        match consumer.assignment() {
            Ok(list) => {
                let held: Vec<i32> = list
                    .elements()
                    .iter()
                    .filter(|e| e.topic() == self.topic)
                    .map(|e| e.partition())
                    .collect();
                tracing::info!(topic = %self.topic, partitions = ?held, "partitions assigned");
                assignment.hold(held);
            }
            Err(err) => tracing::warn!(topic = %self.topic, error = %err, "assignment unreadable"),
        }
    }
}

struct KafkaSubscription {
    consumer: OwnedConsumer,
    topic: String,
    /// `points`: bare `IngestedPoint`s and `LearntPoints`, not event envelopes.
    bare_points: bool,
    /// Group members commit what they acked; followers keep no offsets.
    commits: bool,
    assignment: Option<super::Assignment>,
    stop: CancellationToken,
    /// Per partition: the last offset delivered, and a skipped poison message's offset waiting
    /// for the deliveries before it to be acked.
    positions: std::collections::HashMap<i32, PartitionProgress>,
}

/// Where a partition's deliveries and acks stand (`KafkaSubscription::positions`).
#[derive(Default)]
struct PartitionProgress {
    delivered: Option<i64>,
    acked: Option<i64>,
    /// The newest skipped offset, and the last offset delivered before it: storing the skipped
    /// offset commits everything before it, so it waits until that delivery is acked.
    poison: Option<(i64, i64)>,
}

/// Commits what `consumer` stored, waiting for the brokers' answer.
fn final_commit(consumer: &StreamConsumer<MemberContext>, topic: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(err) => tracing::warn!(topic, error = %err, "final commit failed"),
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        loop {
            let message = tokio::select! {
                biased;
                // The final commit is the drop's, off the async runtime.
                _ = self.stop.cancelled() => return Ok(None),
                message = self.consumer.recv() => message.map_err(unavailable)?,
            };
            let position = Position {
                partition: message.partition(),
                offset: message.offset(),
            };
            let event = message
                .payload()
                .ok_or_else(|| "no payload".to_owned())
                .and_then(|bytes| {
                    if self.bare_points {
                        decode_points(bytes)
                    } else {
                        serde_json::from_slice::<Event>(bytes)
                    }
                    .map_err(|e| e.to_string())
                });
            match event {
                Ok(event) => {
                    self.positions
                        .entry(position.partition)
                        .or_default()
                        .delivered = Some(position.offset);
                    return Ok(Some(Delivery {
                        event,
                        position: Some(position),
                        trace: trace_of(&message),
                    }));
                }
                Err(reason) => {
                    tracing::error!(topic = %self.topic, partition = position.partition, offset = position.offset, %reason, "skipping a poison message");
                    self.skip(position)?;
                }
            }
        }
    }

    async fn ack(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        let Some(position) = delivery.position else {
            return Ok(());
        };
        let progress = self.positions.entry(position.partition).or_default();
        progress.acked = progress.acked.max(Some(position.offset));
        let mut stored = position.offset;
        if let Some((skipped, before)) = progress.poison
            && position.offset >= before
        {
            progress.poison = None;
            stored = stored.max(skipped);
        }
        self.store(Position {
            offset: stored,
            ..position
        })
    }

    fn assignment(&self) -> Option<super::Assignment> {
        self.assignment.clone()
    }
}

impl KafkaSubscription {
    /// Passes over a poison message: its offset is stored now if every delivery before it on its
    /// partition is acked, else with the ack of the last of them.
    fn skip(&mut self, position: Position) -> Result<(), BusError> {
        let progress = self.positions.entry(position.partition).or_default();
        match progress.delivered {
            Some(delivered) if progress.acked < Some(delivered) => {
                progress.poison = Some((position.offset, delivered));
                Ok(())
            }
            _ => self.store(position),
        }
    }

    fn store(&self, position: Position) -> Result<(), BusError> {
        if !self.commits {
            return Ok(());
        }
        // librdkafka stores offset + 1: the next message to read.
        self.consumer
            .store_offset(&self.topic, position.partition, position.offset)
            .map_err(unavailable)
    }
}

impl Drop for KafkaSubscription {
    /// The final commit and the group's leave are broker round trips, and rdkafka's drop waits
    /// for the leave with no bound: both happen on a thread of their own (`closing`).
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.0.take() else {
            return;
        };
        let (commits, topic) = (self.commits, std::mem::take(&mut self.topic));
        super::closing::close_apart(move || {
            if commits {
                final_commit(&consumer, &topic);
            }
            drop(consumer);
        });
    }
}

/// A subscription's consumer, until the subscription is dropped and hands it to `closing`.
struct OwnedConsumer(Option<Arc<StreamConsumer<MemberContext>>>);

impl std::ops::Deref for OwnedConsumer {
    type Target = StreamConsumer<MemberContext>;

    fn deref(&self) -> &Self::Target {
        self.0
            .as_deref()
            .expect("a subscription's consumer until it is dropped")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::contract::bus_contract;
    use super::{KafkaBus, KafkaOptions};

    /// A bus with fresh topic and group names on `brokers`.
    async fn bus_on(brokers: String, prefix: String, create_topics: bool) -> KafkaBus {
        KafkaBus::connect(KafkaOptions {
            brokers,
            prefix,
            partitions: 3,
            replication: 1,
            linger: std::time::Duration::from_millis(2),
            create_topics,
        })
        .await
        .expect("connect to Kafka")
    }

    fn fresh_prefix() -> String {
        format!("t{}-", uuid::Uuid::new_v4().simple())
    }

    /// The group member's next delivery, which must come within 30 s (`what` names it).
    async fn next_within_30s(
        member: &mut Box<dyn super::super::Subscription>,
        what: &str,
    ) -> super::super::Delivery {
        tokio::time::timeout(std::time::Duration::from_secs(30), member.next())
            .await
            .unwrap_or_else(|_| panic!("{what} within 30 s"))
            .unwrap()
            .unwrap()
    }

    /// librdkafka's in-process mock cluster: the real protocol, no broker to install. Leaked
    /// because it must outlive the bus; each test runs in its own process.
    pub(crate) async fn mock() -> KafkaBus {
        let cluster = Box::leak(Box::new(
            rdkafka::mocking::MockCluster::new(1).expect("mock cluster"),
        ));
        let prefix = fresh_prefix();
        for topic in crate::events::Topic::ALL {
            cluster
                .create_topic(&format!("{prefix}{}", topic.name()), 3, 1)
                .expect("mock topic");
        }
        bus_on(cluster.bootstrap_servers(), prefix, false).await
    }

    /// The tansu broker `bash .ci/run` starts (TEST_KAFKA_BROKERS).
    async fn tansu() -> KafkaBus {
        let brokers = std::env::var("TEST_KAFKA_BROKERS")
            .expect("TEST_KAFKA_BROKERS names a running broker (bash .ci/run starts tansu)");
        bus_on(brokers, fresh_prefix(), true).await
    }

    bus_contract!(mock_cluster, mock().await);

    #[tokio::test]
    async fn a_published_event_carries_the_publishers_trace() {
        use super::super::EventBus;
        use super::super::contract::training_data;
        use crate::events::Topic;
        use opentelemetry::trace::TracerProvider as _;
        use tracing::Instrument;
        use tracing_subscriber::layer::SubscriberExt;
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _installed = tracing::subscriber::set_default(subscriber);

        let bus = mock().await;
        let span = tracing::info_span!("fit");
        let sent = span.in_scope(crate::trace_context::current);
        let traceparent = |carrier: &[(String, String)]| {
            carrier
                .iter()
                .find(|(k, _)| k == "traceparent")
                .map(|(_, v)| v.clone())
        };
        assert!(traceparent(&sent).is_some(), "{sent:?}");
        bus.publish(training_data("s1", 1))
            .instrument(span.clone())
            .await
            .unwrap();
        let mut member = bus.join_group(Topic::TrainingData, "traced").await.unwrap();
        let delivery = member.next().await.unwrap().unwrap();
        assert_eq!(traceparent(&delivery.trace), traceparent(&sent));

        // Outside any traced span nothing is carried.
        drop(_installed);
        bus.publish(training_data("s1", 2)).await.unwrap();
        let delivery = member.next().await.unwrap().unwrap();
        assert!(delivery.trace.is_empty(), "{:?}", delivery.trace);
    }

    /// A fit as large as a 2 MiB body allows would be one message over Kafka's 1 MB default
    /// limit: the trainer publishes it in chunks, and the consumer stores every point in order.
    #[tokio::test]
    async fn a_maximum_size_fit_crosses_kafka_in_chunks_and_lands_whole() {
        use std::sync::Arc;

        use super::super::EventBus;
        use crate::consumers::{Handler, TrainingDataWriter};
        use crate::domain::{Point, SeriesId, TrainingSet};
        use crate::events::Topic;
        use crate::store::{SqlStore, TrainingPoints};
        use crate::trainer::{POINTS_PER_CHUNK, Trainer, Training};

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display());
        let store = Arc::new(SqlStore::connect(&url).await.unwrap());
        let bus = Arc::new(mock().await);
        let mut member = bus.join_group(Topic::TrainingData, "writer").await.unwrap();
        // 60,000 points with full-precision values: about 3.5 MB as one JSON message.
        let points: Vec<Point> = (0..60_000_i64)
            .map(|i| Point::parse(1_600_000_000 + i, (i as f64).sin() * 1e6 + 0.123_456_789))
            .collect::<Result<_, _>>()
            .unwrap();
        let series = SeriesId::parse("big").unwrap();
        let trainer = Trainer::new(store.clone(), bus.clone());
        let outcome = trainer
            .fit(
                series.clone(),
                TrainingSet::parse(points.clone()).unwrap(),
                Default::default(),
            )
            .await
            .expect("the fit is published");

        let writer = TrainingDataWriter::new(store.clone());
        for _ in 0..points.len().div_ceil(POINTS_PER_CHUNK) {
            let delivery = next_within_30s(&mut member, "a chunk").await;
            writer.handle(&delivery.event).await.unwrap();
            member.ack(&delivery).await.unwrap();
        }
        let stored = store
            .training_points(&series, outcome.version)
            .await
            .unwrap();
        assert_eq!(stored.len(), points.len());
        assert!(stored == points, "every point, in order");
    }

    #[tokio::test]
    async fn an_unacknowledged_event_goes_to_the_next_member_of_the_group() {
        use super::super::EventBus;
        use super::super::contract::{next_event, training_data};
        use crate::events::Topic;
        let bus = mock().await;
        bus.publish(training_data("s1", 1)).await.unwrap();
        bus.publish(training_data("s1", 2)).await.unwrap();
        let mut first = bus.join_group(Topic::TrainingData, "crashy").await.unwrap();
        assert_eq!(next_event(&mut first).await, Some(training_data("s1", 1)));
        // The second event is taken but never acknowledged: the member "crashes".
        let taken = first.next().await.unwrap().unwrap();
        assert_eq!(taken.event, training_data("s1", 2));
        drop(first);
        let mut second = bus.join_group(Topic::TrainingData, "crashy").await.unwrap();
        assert_eq!(next_event(&mut second).await, Some(training_data("s1", 2)));
    }

    /// `points` carries bare JSON any producer can write, and a series lands on the partition
    /// `partitioner::partition_of` computes (what the gateway routes by).
    #[tokio::test]
    async fn points_are_bare_json_on_the_partition_the_gateway_computes() {
        use super::super::EventBus;
        use crate::events::{Event, IngestedPoint, Topic};
        use crate::partitioner::partition_of;
        use rdkafka::producer::FutureRecord;
        let bus = mock().await;
        let series: Vec<String> = (0..40).map(|n| format!("sensor_{n}")).collect();
        for id in &series {
            bus.publish(Event::Point(IngestedPoint {
                series_id: id.clone(),
                timestamp: 1_700_000_000,
                value: 1.5,
                scored: None,
            }))
            .await
            .unwrap();
        }
        let topic = bus.topic_name(Topic::Points);
        let kcat_like = r#"{"series_id":"from_kcat","timestamp":1700000060,"value":2.5}"#;
        bus.producer
            .send(
                FutureRecord::to(&topic).key("from_kcat").payload(kcat_like),
                rdkafka::util::Timeout::Never,
            )
            .await
            .unwrap();
        let mut member = bus.join_group(Topic::Points, "scorers").await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < series.len() + 1 {
            let delivery = next_within_30s(&mut member, "a point").await;
            let Event::Point(point) = &delivery.event else {
                panic!("{delivery:?}")
            };
            let partition = delivery.position.unwrap().partition;
            assert_eq!(partition, partition_of(&point.series_id, 3), "{point:?}");
            seen.push(point.series_id.clone());
        }
        assert!(seen.contains(&"from_kcat".to_owned()));
        let held = member.assignment().unwrap().now();
        assert_eq!((held.partitions, held.partition_count), (vec![0, 1, 2], 3));
    }

    /// The points predicts taught, acknowledged one by one, reach `points` as a few records of
    /// the learning log, each on the partition of every series it holds, and each series' points
    /// in the order they were appended.
    #[tokio::test]
    async fn learnt_points_are_logged_together_on_their_series_partitions_in_order() {
        use super::super::EventBus;
        use crate::domain::Version;
        use crate::events::{Event, IngestedPoint, ScoredBy, Topic};
        use crate::partitioner::partition_of;
        let bus = mock().await;
        let learnt = |series: usize, seq: u64| IngestedPoint {
            series_id: format!("sensor_{series}"),
            timestamp: 1_700_000_000 + seq as i64,
            value: seq as f64,
            scored: Some(ScoredBy {
                by: "predictor-a".into(),
                version: Version::FIRST,
                seq,
            }),
        };
        // Appended as a predictor does, all before any is acknowledged.
        let acknowledgements: Vec<_> = (1..=50_u64)
            .flat_map(|seq| (0..20).map(move |series| (series, seq)))
            .map(|(series, seq)| {
                bus.emit_acknowledged(Event::Point(learnt(series, seq)))
                    .unwrap()
            })
            .collect();
        for acknowledged in acknowledgements {
            acknowledged.await.expect("acknowledged by the brokers");
        }
        let mut member = bus.join_group(Topic::Points, "replayers").await.unwrap();
        let (mut records, mut points) = (0, Vec::new());
        while points.len() < 1_000 {
            let delivery = next_within_30s(&mut member, "a record").await;
            let Event::Learnt(logged) = &delivery.event else {
                panic!("{delivery:?}")
            };
            records += 1;
            let partition = delivery.position.unwrap().partition;
            for point in &logged.learnt {
                assert_eq!(partition, partition_of(&point.series_id, 3), "{point:?}");
            }
            points.extend(logged.learnt.iter().cloned());
        }
        // All were waiting when the first round began: one record per partition.
        assert!(records <= 3, "{records} records for 1,000 points");
        for series in 0..20 {
            let seqs: Vec<u64> = points
                .iter()
                .filter(|p| p.series_id == format!("sensor_{series}"))
                .map(|p| p.scored.as_ref().unwrap().seq)
                .collect();
            assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "sensor_{series}");
        }
    }

    /// Ownership is group membership: two members split the partitions between them, and when
    /// one leaves the other holds them all again.
    #[tokio::test]
    async fn group_members_split_the_partitions_and_a_leavers_go_to_the_other() {
        use super::super::{Assignment, EventBus};
        use crate::events::Topic;
        let bus = mock().await;
        // A member is assigned partitions while it polls.
        let member = |bus: KafkaBus| async move {
            let mut member = bus.join_group(Topic::Points, "owners").await.unwrap();
            let assignment = member.assignment().unwrap();
            let polling =
                tokio::spawn(async move { while let Ok(Some(_)) = member.next().await {} });
            (assignment, polling)
        };
        async fn settles(what: &str, check: impl Fn() -> bool) {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            while !check() {
                assert!(tokio::time::Instant::now() < deadline, "{what} within 60 s");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        let all = |a: &Assignment| a.now().partitions == [0, 1, 2];
        let (first, _first_polling) = member(bus.clone()).await;
        settles("the first member holds every partition", || all(&first)).await;
        let (second, second_polling) = member(bus.clone()).await;
        settles("the two split the partitions", || {
            let (a, b) = (first.now().partitions, second.now().partitions);
            let mut both = [a.clone(), b.clone()].concat();
            both.sort_unstable();
            !a.is_empty() && !b.is_empty() && both == [0, 1, 2]
        })
        .await;
        second_polling.abort();
        settles("the leaver's partitions go back to the first", || {
            all(&first)
        })
        .await;
    }

    /// Writes a message on `topic` that is not an event.
    async fn send_poison(bus: &KafkaBus, topic: crate::events::Topic) {
        let topic = bus.topic_name(topic);
        bus.producer
            .send(
                rdkafka::producer::FutureRecord::to(&topic)
                    .key("s1")
                    .payload("not json"),
                rdkafka::util::Timeout::Never,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_poison_message_is_skipped() {
        use super::super::EventBus;
        use super::super::contract::{next_event, training_data};
        use crate::events::Topic;
        let bus = mock().await;
        send_poison(&bus, Topic::TrainingData).await;
        bus.publish(training_data("s1", 1)).await.unwrap();
        let mut member = bus.join_group(Topic::TrainingData, "g").await.unwrap();
        assert_eq!(next_event(&mut member).await, Some(training_data("s1", 1)));
    }

    /// Skipping a poison message does not commit the events delivered before it that are not
    /// acked yet (a member that acks only after making its work durable would lose them).
    #[tokio::test]
    async fn a_skipped_poison_message_does_not_commit_unacked_events_before_it() {
        use super::super::EventBus;
        use super::super::contract::{next_event, training_data};
        use crate::events::Topic;
        let bus = mock().await;
        bus.publish(training_data("s1", 1)).await.unwrap();
        send_poison(&bus, Topic::TrainingData).await;
        bus.publish(training_data("s1", 2)).await.unwrap();
        let mut first = bus.join_group(Topic::TrainingData, "g").await.unwrap();
        let unacked = first.next().await.unwrap().unwrap();
        assert_eq!(unacked.event, training_data("s1", 1));
        // Passes over the poison message to the next event; neither is acked.
        assert_eq!(
            first.next().await.unwrap().unwrap().event,
            training_data("s1", 2)
        );
        drop(first);
        let mut next = bus.join_group(Topic::TrainingData, "g").await.unwrap();
        assert_eq!(next_event(&mut next).await, Some(training_data("s1", 1)));
        assert_eq!(next_event(&mut next).await, Some(training_data("s1", 2)));
        drop(next);
        // Acked past it, the poison message is committed with the rest.
        bus.publish(training_data("s1", 3)).await.unwrap();
        let mut last = bus.join_group(Topic::TrainingData, "g").await.unwrap();
        assert_eq!(next_event(&mut last).await, Some(training_data("s1", 3)));
    }
    bus_contract!(
        #[ignore = "needs a Kafka broker: run bash .ci/run"]
        tansu_broker,
        tansu().await
    );
}
