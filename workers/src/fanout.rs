//! Live feeds for many subscribers at the cost of one: a process follows each scored topic
//! (`anomalies`, `predictions`) once, on whatever bus it runs, and hands every event to its
//! in-process subscribers, indexed by series so an event costs nothing for subscribers of other
//! series. Each subscriber has a bounded queue; one that falls behind misses events and is told
//! how many (`FeedItem::Lagged`), never silently. The feed also keeps the last events it saw, so a
//! subscriber resuming from a cursor gets what was raised just before it (re)subscribed even when
//! the alert store has not written it yet.

use std::collections::{HashMap, VecDeque};
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

/// The process's live feeds, one per scored topic, started by their first subscriber.
#[derive(Clone)]
pub struct LiveFeed {
    bus: Arc<dyn EventBus>,
    limits: FeedLimits,
    anomalies: Arc<OnceCell<Arc<TopicFeed>>>,
    predictions: Arc<OnceCell<Arc<TopicFeed>>>,
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
            anomalies: Default::default(),
            predictions: Default::default(),
        }
    }

    /// Starts following `topic` now rather than at its first subscriber, so the feed remembers
    /// events from now on (the gateway starts `anomalies` at once: a subscriber resuming just
    /// after a restart then finds the alerts the store has not written yet).
    pub async fn start(&self, topic: Topic) -> Result<(), BusError> {
        self.feed(topic).await.map(|_| ())
    }

    /// Subscribes to `topic` (`Anomalies` or `Predictions`), of one series or all. Events
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
        let cell = match topic {
            Topic::Anomalies => &self.anomalies,
            Topic::Predictions => &self.predictions,
            other => {
                return Err(BusError::Unavailable(format!(
                    "{other} carries no scored points to follow"
                )));
            }
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

struct Queue {
    sender: mpsc::Sender<FeedItem>,
    /// Events dropped because the queue was full, reported at the subscriber's next read.
    missed: Arc<AtomicU64>,
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
                        self.dispatch(Arc::new(scored));
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

    fn dispatch(&self, event: Arc<Scored>) {
        let mut index = self.lock();
        if self.recent_cap > 0 {
            if index.recent.len() >= self.recent_cap {
                index.recent.pop_front();
            }
            index.recent.push_back(event.clone());
        }
        let index = &*index;
        let of_series = index.by_series.get(&event.series_id).into_iter().flatten();
        for (_, queue) in of_series.chain(index.every.iter()) {
            queue.offer(FeedItem::Event(event.clone()));
        }
    }

    fn tell_everyone(&self, item: FeedItem) {
        let index = self.lock();
        let all = index.by_series.values().flatten().chain(index.every.iter());
        for (_, queue) in all {
            queue.offer(item.clone());
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
            bus.publish(Event::Anomaly(event.clone())).await.unwrap();
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
        for event in &events {
            bus.publish(Event::Anomaly(event.clone())).await.unwrap();
        }
        let last = scored("marker", 0.0);
        bus.publish(Event::Anomaly(last.clone())).await.unwrap();
        // Once the marker arrived, every event of "a" was offered to the slow subscriber.
        assert_eq!(*next_event(&mut marker).await, last);
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
            bus.publish(Event::Anomaly(event.clone())).await.unwrap();
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
