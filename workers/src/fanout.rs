//! Live feeds for many subscribers at the cost of one: a process follows each scored topic
//! (`LIVE_TOPICS`: `anomalies`, `predictions`) once, on whatever bus it runs, and hands every event to its
//! in-process subscribers, indexed by series so an event costs nothing for subscribers of other
//! series. Each subscriber has a bounded queue; one that falls behind misses events and is told
//! how many (`FeedItem::Lagged`), never silently. The feed also keeps the last events it saw, so a
//! subscriber resuming from a cursor gets what was raised just before it (re)subscribed even when
//! the alert store has not written it yet.
//!
//! A subscriber may also take its events straight from the follower (`Recipient`): no queue, no
//! task woken per event; the follower renders each event once per distinct rendering and hands
//! the text to every such recipient (the gateway writes it to their sockets from there).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{OnceCell, mpsc};
use uuid::Uuid;

use crate::bus::{BusError, EventBus, Subscription};
use crate::domain::SeriesId;
use crate::events::{Event, Scored, Topic};

/// How a feed is sized.
#[derive(Debug, Clone, Copy)]
pub struct FeedLimits {
    /// Events queued for one subscriber before it starts missing them.
    pub subscriber_buffer: usize,
    /// Events of each topic the feed remembers (for resuming subscribers and recent queries).
    pub recent: usize,
}

impl Default for FeedLimits {
    fn default() -> Self {
        Self {
            subscriber_buffer: 256,
            recent: 4096,
        }
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    Event(Arc<Scored>),
    /// This many events were not delivered to this subscriber (it fell behind, or the feed did).
    Lagged(u64),
}

/// Turns an event into what recipients are sent (the gateway: a GraphQL result, as JSON text).
pub trait Render: Send + Sync {
    /// The event as text; `None` if it cannot be rendered (the recipients then miss it).
    fn render(
        &self,
        event: Arc<Scored>,
    ) -> Pin<Box<dyn Future<Output = Option<Arc<str>>> + Send + '_>>;
}

/// A subscriber that takes its events from the follower itself (`FeedSubscription::go_direct`).
/// `deliver` runs on the follower's task, once per event of the subscriber's series: it must not
/// block (the gateway queues behind a busy socket, up to a bound, then counts misses).
pub trait Recipient: Send + Sync {
    /// How this recipient's events are rendered: recipients holding the same `Arc` share each
    /// event's rendering.
    fn renderer(&self) -> &Arc<dyn Render>;
    /// `event`, rendered.
    fn deliver(&self, event: &Scored, rendered: &str);
    /// This many events never reached the follower (it fell behind the bus).
    fn missed(&self, missed: u64);
}

/// The bus topics the feed can follow: those whose events are scored points
/// (`Event::Anomaly`, `Event::Prediction`). A topic listed here gets its own follower, started by
/// its first subscriber; any other is refused. A new live topic on the bus is one line here (a
/// new subscription over a listed topic needs nothing here: it filters that topic's events).
pub const LIVE_TOPICS: [Topic; 2] = [Topic::Anomalies, Topic::Predictions];

/// The process's live feeds, one per live topic (`LIVE_TOPICS`), started by their first
/// subscriber.
#[derive(Clone)]
pub struct LiveFeed {
    bus: Arc<dyn EventBus>,
    limits: FeedLimits,
    /// One follower per live topic, in `LIVE_TOPICS`' order (a handful: found by looking).
    feeds: Arc<[(Topic, OnceCell<Arc<TopicFeed>>)]>,
}

/// A new subscription and, when it resumes from a cursor, the remembered events after it.
pub struct Subscribed {
    pub subscription: FeedSubscription,
    /// Remembered events of the subscription's series newer than the cursor, oldest first; the
    /// subscription delivers only events after these.
    pub recent: Vec<Arc<Scored>>,
}

impl LiveFeed {
    pub fn new(bus: Arc<dyn EventBus>, limits: FeedLimits) -> Self {
        Self {
            bus,
            limits,
            feeds: LIVE_TOPICS
                .iter()
                .map(|topic| (*topic, OnceCell::new()))
                .collect(),
        }
    }

    /// Starts following `topic` now rather than at its first subscriber, so the feed remembers
    /// events from now on (the gateway starts `anomalies` at once: a subscriber resuming just
    /// after a restart then finds the alerts the store has not written yet).
    pub async fn start(&self, topic: Topic) -> Result<(), BusError> {
        self.feed(topic).await.map(|_| ())
    }

    /// Subscribes to `topic` (one of `LIVE_TOPICS`), of one series or all. Events
    /// published after this returns are delivered. With `after`, the remembered events newer
    /// than that cursor come back too.
    pub async fn subscribe(
        &self,
        topic: Topic,
        series: Option<SeriesId>,
        after: Option<Uuid>,
    ) -> Result<Subscribed, BusError> {
        let feed = self.feed(topic).await?;
        let (sender, receiver) = mpsc::channel(self.limits.subscriber_buffer.max(1));
        let missed = Arc::new(AtomicU64::new(0));
        let mut index = feed.lock();
        if index.closed {
            return Err(BusError::Closed);
        }
        let recent = match after {
            Some(after) => index
                .recent
                .iter()
                .filter(|e| e.id > after && series.as_ref().is_none_or(|s| *s == e.series_id))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let key = index.next_key;
        index.next_key += 1;
        let queue = Queue {
            sender,
            missed: missed.clone(),
            direct: None,
        };
        match &series {
            Some(series) => {
                index
                    .by_series
                    .entry(series.clone())
                    .or_default()
                    .insert(key, queue);
            }
            None => {
                index.every.insert(key, queue);
            }
        }
        drop(index);
        Ok(Subscribed {
            subscription: FeedSubscription {
                receiver,
                missed,
                feed,
                key,
                series,
            },
            recent,
        })
    }

    /// The last remembered events of `topic` for `series`, newest first (empty until the
    /// topic's feed has started: its first subscriber or this call starts it).
    pub async fn recent(
        &self,
        topic: Topic,
        series: &SeriesId,
        limit: usize,
    ) -> Result<Vec<Arc<Scored>>, BusError> {
        let feed = self.feed(topic).await?;
        let index = feed.lock();
        Ok(index
            .recent
            .iter()
            .rev()
            .filter(|e| e.series_id == *series)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn feed(&self, topic: Topic) -> Result<Arc<TopicFeed>, BusError> {
        let Some((_, cell)) = self.feeds.iter().find(|(live, _)| *live == topic) else {
            return Err(BusError::Unavailable(crate::cause::Cause::message(
                format!("{topic} carries no scored points to follow"),
            )));
        };
        cell.get_or_try_init(|| async {
            // Following before the task starts: events published once this returns are seen.
            let subscription = self.bus.follow(topic).await?;
            let feed = Arc::new(TopicFeed {
                topic,
                recent_cap: self.limits.recent,
                index: Mutex::new(Index::default()),
            });
            tokio::spawn(feed.clone().run(subscription));
            Ok(feed)
        })
        .await
        .cloned()
    }
}

/// Direct deliveries of one event written on the follower's own task; more are shared among
/// blocking threads.
const DELIVERIES_PER_SHARE: usize = 256;

/// The machine's cores, read once (the standard library reads cgroup files to answer).
fn parallelism() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// A direct recipient and the event as its renderer rendered it (`None`: it could not).
type Delivery = (Arc<dyn Recipient>, Option<Arc<str>>);

fn deliver(event: &Scored, deliveries: Vec<Delivery>) {
    for (recipient, text) in deliveries {
        match text {
            Some(text) => recipient.deliver(event, &text),
            None => recipient.missed(1),
        }
    }
}

/// One topic's subscribers and remembered events.
struct TopicFeed {
    topic: Topic,
    recent_cap: usize,
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    next_key: u64,
    by_series: HashMap<SeriesId, HashMap<u64, Queue>>,
    every: HashMap<u64, Queue>,
    recent: VecDeque<Arc<Scored>>,
    closed: bool,
}

impl Index {
    fn queue_mut(&mut self, key: u64, series: Option<&SeriesId>) -> Option<&mut Queue> {
        match series {
            Some(series) => self.by_series.get_mut(series)?.get_mut(&key),
            None => self.every.get_mut(&key),
        }
    }
}

struct Queue {
    sender: mpsc::Sender<FeedItem>,
    /// Events dropped because the queue was full, reported at the subscriber's next read.
    missed: Arc<AtomicU64>,
    /// Set once the subscriber takes its events straight from the follower: the queue is then
    /// unused (its sender still ends the subscription when the feed closes).
    direct: Option<Arc<dyn Recipient>>,
}

impl Queue {
    fn offer(&self, item: FeedItem) {
        let missed = match &item {
            FeedItem::Event(_) => 1,
            FeedItem::Lagged(n) => *n,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.sender.try_send(item) {
            self.missed.fetch_add(missed, Ordering::AcqRel);
            ::metrics::counter!("anomaly_subscriber_missed_total").increment(missed);
        }
    }
}

impl TopicFeed {
    fn lock(&self) -> MutexGuard<'_, Index> {
        // The index holds plain maps; a panic elsewhere cannot leave them half-updated.
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows the topic until the bus closes, then ends every subscription.
    async fn run(self: Arc<Self>, mut subscription: Box<dyn Subscription>) {
        loop {
            match subscription.next().await {
                Ok(Some(delivery)) => match delivery.event {
                    Event::Anomaly(scored) | Event::Prediction(scored) => {
                        self.dispatch(scored).await;
                    }
                    other => {
                        tracing::warn!(topic = %self.topic, event = ?other.topic(), "ignoring an event of another topic")
                    }
                },
                Ok(None) => break,
                Err(BusError::Lagged(missed)) => {
                    tracing::warn!(topic = %self.topic, missed, "the live feed fell behind");
                    self.tell_everyone(FeedItem::Lagged(missed));
                }
                Err(err) => {
                    // A broker hiccup: the follower carries on from where it was.
                    tracing::warn!(topic = %self.topic, error = %err, "live feed interrupted; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let mut index = self.lock();
        index.closed = true;
        // Dropping the senders ends every subscription once its queue is read.
        index.by_series.clear();
        index.every.clear();
    }

    async fn dispatch(&self, event: Arc<Scored>) {
        let recipients = self.enqueue(&event);
        if recipients.is_empty() {
            return;
        }
        // One rendering per distinct renderer (they are alive: the recipients hold them).
        let mut rendered: HashMap<usize, Option<Arc<str>>> = HashMap::new();
        let mut deliveries = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let renderer = recipient.renderer();
            let key = Arc::as_ptr(renderer).cast::<()>().addr();
            let text = match rendered.get(&key) {
                Some(text) => text.clone(),
                None => {
                    let text = renderer.render(event.clone()).await;
                    if text.is_none() {
                        tracing::warn!(topic = %self.topic, "an event could not be rendered for its subscribers");
                    }
                    rendered.insert(key, text.clone());
                    text
                }
            };
            deliveries.push((recipient, text));
        }
        if deliveries.len() < DELIVERIES_PER_SHARE {
            deliver(&event, deliveries);
            return;
        }
        // Writing to many sockets is the kernel's work, a few milliseconds per thousand: done on
        // blocking threads, one per core (a task spawned from here would wait in this worker's
        // LIFO slot until this task yields), so the runtime's workers keep serving requests
        // meanwhile. The next event waits for all of them: each recipient's order holds.
        let shares = deliveries
            .len()
            .div_ceil(DELIVERIES_PER_SHARE)
            .min(parallelism());
        let share_size = deliveries.len().div_ceil(shares);
        let mut writers = Vec::with_capacity(shares);
        while !deliveries.is_empty() {
            let share = deliveries.split_off(deliveries.len().saturating_sub(share_size));
            let event = event.clone();
            writers.push(tokio::task::spawn_blocking(move || deliver(&event, share)));
        }
        for writer in writers {
            if let Err(err) = writer.await {
                tracing::error!(topic = %self.topic, error = %err, "delivering an event failed");
            }
        }
    }

    /// Remembers `event`, queues it for the queued subscribers of its series, and returns its
    /// direct recipients.
    fn enqueue(&self, event: &Arc<Scored>) -> Vec<Arc<dyn Recipient>> {
        let mut index = self.lock();
        if self.recent_cap > 0 {
            if index.recent.len() >= self.recent_cap {
                index.recent.pop_front();
            }
            index.recent.push_back(event.clone());
        }
        let index = &*index;
        let of_series = index.by_series.get(&event.series_id).into_iter().flatten();
        let mut recipients = Vec::new();
        for (_, queue) in of_series.chain(index.every.iter()) {
            match &queue.direct {
                Some(recipient) => recipients.push(recipient.clone()),
                None => queue.offer(FeedItem::Event(event.clone())),
            }
        }
        recipients
    }

    fn tell_everyone(&self, item: FeedItem) {
        let index = self.lock();
        let all = index.by_series.values().flatten().chain(index.every.iter());
        for (_, queue) in all {
            match (&queue.direct, &item) {
                (Some(recipient), FeedItem::Lagged(missed)) => recipient.missed(*missed),
                (Some(_), FeedItem::Event(_)) => {}
                (None, _) => queue.offer(item.clone()),
            }
        }
    }

    fn unsubscribe(&self, key: u64, series: Option<&SeriesId>) {
        let mut index = self.lock();
        match series {
            Some(series) => {
                if let Some(queues) = index.by_series.get_mut(series) {
                    queues.remove(&key);
                    if queues.is_empty() {
                        index.by_series.remove(series);
                    }
                }
            }
            None => {
                index.every.remove(&key);
            }
        }
    }
}

/// One subscriber's events; unsubscribes when dropped.
pub struct FeedSubscription {
    receiver: mpsc::Receiver<FeedItem>,
    missed: Arc<AtomicU64>,
    feed: Arc<TopicFeed>,
    key: u64,
    series: Option<SeriesId>,
}

impl FeedSubscription {
    /// The next event or lagged notice; `None` once the bus has closed.
    pub async fn next(&mut self) -> Option<FeedItem> {
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            return Some(FeedItem::Lagged(missed));
        }
        match self.receiver.recv().await {
            Some(item) => Some(item),
            None => match self.missed.swap(0, Ordering::AcqRel) {
                0 => None,
                missed => Some(FeedItem::Lagged(missed)),
            },
        }
    }
}

impl FeedSubscription {
    /// From now on, hands this subscription's events to `recipient` on the follower's task
    /// instead of queueing them, if nothing is queued or missed (`false` otherwise: read what is
    /// queued first, then try again, so no event overtakes an earlier one). Once direct, `next`
    /// only returns `None`, when the feed closes.
    pub fn go_direct(&mut self, recipient: Arc<dyn Recipient>) -> bool {
        let mut index = self.feed.lock();
        if index.closed || !self.receiver.is_empty() || self.missed.load(Ordering::Acquire) > 0 {
            return false;
        }
        match index.queue_mut(self.key, self.series.as_ref()) {
            Some(queue) => {
                queue.direct = Some(recipient);
                true
            }
            None => false,
        }
    }
}

impl Drop for FeedSubscription {
    fn drop(&mut self) {
        self.feed.unsubscribe(self.key, self.series.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;

    fn scored(series: &str, value: f64) -> Scored {
        crate::store::contract::alert(series, value, 1)
    }

    /// `event` as the anomaly event the predictor emits.
    fn anomaly(event: &Scored) -> Event {
        Event::Anomaly(Arc::new(event.clone()))
    }

    fn series(id: &str) -> Option<SeriesId> {
        Some(SeriesId::parse(id).unwrap())
    }

    async fn next_event(subscription: &mut FeedSubscription) -> Arc<Scored> {
        match subscription.next().await {
            Some(FeedItem::Event(event)) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_subscriber_gets_its_series_only_and_everyone_shares_one_follower() {
        let bus = Arc::new(MemoryBus::new(64));
        let feed = LiveFeed::new(bus.clone(), FeedLimits::default());
        let mut of_b = feed
            .subscribe(Topic::Anomalies, series("b"), None)
            .await
            .unwrap()
            .subscription;
        let mut of_all = feed
            .subscribe(Topic::Anomalies, None, None)
            .await
            .unwrap()
            .subscription;
        let (a1, a2, marker) = (scored("a", 1.0), scored("a", 2.0), scored("b", 3.0));
        for event in [&a1, &a2, &marker] {
            bus.publish(anomaly(event)).await.unwrap();
        }
        // Series B's first event is the marker: nothing of A came before it.
        assert_eq!(*next_event(&mut of_b).await, marker);
        for expected in [&a1, &a2, &marker] {
            assert_eq!(*next_event(&mut of_all).await, *expected);
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
        let bus = Arc::new(MemoryBus::new(64));
        let limits = FeedLimits {
            subscriber_buffer: 2,
            recent: 0,
        };
        let feed = LiveFeed::new(bus.clone(), limits);
        let mut slow = feed
            .subscribe(Topic::Anomalies, series("a"), None)
            .await
            .unwrap()
            .subscription;
        let mut marker = feed
            .subscribe(Topic::Anomalies, series("marker"), None)
            .await
            .unwrap()
            .subscription;
        let events: Vec<_> = (0..5).map(|i| scored("a", i as f64)).collect();
        // Once the marker arrived, every event of "a" was offered to the slow subscriber.
        publish_and_settle(&bus, &mut marker, &events).await;
        assert_eq!(slow.next().await, Some(FeedItem::Lagged(3)));
        assert_eq!(*next_event(&mut slow).await, events[0]);
        assert_eq!(*next_event(&mut slow).await, events[1]);
    }

    #[tokio::test]
    async fn a_resuming_subscriber_gets_the_remembered_events_after_its_cursor() {
        let bus = Arc::new(MemoryBus::new(64));
        let feed = LiveFeed::new(bus.clone(), FeedLimits::default());
        let mut watcher = feed
            .subscribe(Topic::Anomalies, None, None)
            .await
            .unwrap()
            .subscription;
        let events: Vec<_> = (0..3).map(|i| scored("a", i as f64)).collect();
        let other = scored("b", 9.0);
        for event in events.iter().chain([&other]) {
            bus.publish(anomaly(event)).await.unwrap();
        }
        for _ in 0..4 {
            next_event(&mut watcher).await;
        }
        let resumed = feed
            .subscribe(Topic::Anomalies, series("a"), Some(events[0].id))
            .await
            .unwrap();
        let recent: Vec<Scored> = resumed.recent.iter().map(|e| (**e).clone()).collect();
        assert_eq!(recent, events[1..].to_vec());
        let newest = feed
            .recent(Topic::Anomalies, &SeriesId::parse("a").unwrap(), 1)
            .await
            .unwrap();
        assert_eq!(*newest[0], events[2]);
    }

    /// A new subscription to `id`'s anomalies.
    async fn live(feed: &LiveFeed, id: &str) -> FeedSubscription {
        let subscribed = feed.subscribe(Topic::Anomalies, series(id), None);
        subscribed.await.unwrap().subscription
    }

    /// Renders an event as its value, counting renderings.
    #[derive(Default)]
    struct ValueText(AtomicU64);

    impl Render for ValueText {
        fn render(
            &self,
            event: Arc<Scored>,
        ) -> Pin<Box<dyn Future<Output = Option<Arc<str>>> + Send + '_>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Some(Arc::from(event.point.value.to_string())) })
        }
    }

    struct Collected {
        renderer: Arc<dyn Render>,
        texts: Mutex<Vec<String>>,
    }

    impl Recipient for Collected {
        fn renderer(&self) -> &Arc<dyn Render> {
            &self.renderer
        }
        fn deliver(&self, _: &Scored, rendered: &str) {
            self.texts.lock().unwrap().push(rendered.to_owned());
        }
        fn missed(&self, _: u64) {}
    }

    impl Collected {
        fn texts(&self) -> Vec<String> {
            self.texts.lock().unwrap().clone()
        }
    }

    /// Publishes `events` of "a", then a marker, and waits for the marker: every event before it
    /// has then been handed to every subscriber.
    async fn publish_and_settle(bus: &MemoryBus, marker: &mut FeedSubscription, events: &[Scored]) {
        for event in events {
            bus.publish(anomaly(event)).await.unwrap();
        }
        let last = scored("marker", 0.0);
        bus.publish(anomaly(&last)).await.unwrap();
        assert_eq!(*next_event(marker).await, last);
    }

    #[tokio::test]
    async fn direct_recipients_take_over_once_nothing_is_queued_and_share_each_rendering() {
        let bus = Arc::new(MemoryBus::new(64));
        let feed = LiveFeed::new(bus.clone(), FeedLimits::default());
        let (mut first, mut second) = (live(&feed, "a").await, live(&feed, "a").await);
        let mut marker = live(&feed, "marker").await;
        let values = Arc::new(ValueText::default());
        let renderer: Arc<dyn Render> = values.clone();
        let recipient = || {
            Arc::new(Collected {
                renderer: renderer.clone(),
                texts: Mutex::default(),
            })
        };
        let (to_first, to_second) = (recipient(), recipient());

        publish_and_settle(&bus, &mut marker, &[scored("a", 1.0)]).await;
        // An event is queued: it must be read first, or it would be overtaken.
        assert!(!first.go_direct(to_first.clone()));
        assert_eq!(next_event(&mut first).await.point.value, 1.0);
        assert!(first.go_direct(to_first.clone()));
        assert_eq!(next_event(&mut second).await.point.value, 1.0);
        assert!(second.go_direct(to_second.clone()));

        publish_and_settle(&bus, &mut marker, &[scored("a", 2.0), scored("a", 3.0)]).await;
        assert_eq!(to_first.texts(), ["2", "3"]);
        assert_eq!(to_second.texts(), ["2", "3"]);
        // One rendering per event, not one per recipient.
        assert_eq!(values.0.load(Ordering::SeqCst), 2);

        // A dropped subscription's recipient gets nothing more; the feed's end ends the others.
        drop(first);
        publish_and_settle(&bus, &mut marker, &[scored("a", 4.0)]).await;
        assert_eq!(to_first.texts(), ["2", "3"]);
        assert_eq!(to_second.texts(), ["2", "3", "4"]);
        bus.close();
        assert_eq!(second.next().await, None);
    }

    #[tokio::test]
    async fn every_live_topic_can_be_followed_and_no_other() {
        let bus = Arc::new(MemoryBus::new(64));
        let feed = LiveFeed::new(bus.clone(), FeedLimits::default());
        for topic in Topic::ALL {
            let subscribed = feed.subscribe(topic, None, None).await;
            assert_eq!(
                subscribed.is_ok(),
                LIVE_TOPICS.contains(&topic),
                "{topic}: {:?}",
                subscribed.err()
            );
        }
        // Each live topic has its own follower: an event of one reaches none of the other's.
        let mut predictions = feed
            .subscribe(Topic::Predictions, None, None)
            .await
            .unwrap()
            .subscription;
        let mut anomalies = live(&feed, "a").await;
        let alert = scored("a", 1.0);
        bus.publish(anomaly(&alert)).await.unwrap();
        let point = scored("a", 2.0);
        bus.publish(Event::Prediction(Arc::new(point.clone())))
            .await
            .unwrap();
        assert_eq!(*next_event(&mut predictions).await, point);
        assert_eq!(*next_event(&mut anomalies).await, alert);
    }

    #[tokio::test]
    async fn subscriptions_end_when_the_bus_closes_and_leave_no_trace_when_dropped() {
        let bus = Arc::new(MemoryBus::new(64));
        let feed = LiveFeed::new(bus.clone(), FeedLimits::default());
        let dropped = feed
            .subscribe(Topic::Anomalies, series("a"), None)
            .await
            .unwrap();
        drop(dropped);
        let topic = feed.feed(Topic::Anomalies).await.unwrap();
        assert!(topic.lock().by_series.is_empty());
        let mut open = feed
            .subscribe(Topic::Anomalies, series("a"), None)
            .await
            .unwrap()
            .subscription;
        bus.close();
        assert_eq!(open.next().await, None);
    }
}
