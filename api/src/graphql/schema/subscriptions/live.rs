//! What every subscription field does with the live feed, whatever it follows: `subscribe` takes
//! a field's `Follow` and gives its results. With `after` it resumes from a cursor: first the
//! alerts stored (or remembered by the feed) after it, oldest first, then live ones, with none
//! twice and none left out. A subscriber that falls behind gets an error coded `LAGGED` saying
//! how many it missed, and its subscription carries on; it can fetch what it missed with
//! `anomalies(after:)` from its last cursor.
//!
//! On a transport that can write live results itself (`route`), the follower hands them to it
//! once the subscription has caught up.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::futures_util::{StreamExt, stream};
use async_graphql::{Context, ErrorExtensions};
use uuid::Uuid;

use anomaly_workers::domain::SeriesId;
use anomaly_workers::events::{Scored, Topic};
use anomaly_workers::fanout::{FeedItem, FeedSubscription, Subscribed};
use anomaly_workers::store::{AlertOrder, AlertQuery};

use super::super::context::ContextExt;
use super::super::types::Prediction;
use super::route::{DirectRecipient, DirectRoute, Interest, RenderOne};
use crate::error::ApiError;
use crate::state::AppState;

/// Stored alerts one resumed subscription replays at most; past that it says `LAGGED`.
pub const MAX_REPLAY: usize = 10_000;
/// Stored alerts read per query while replaying.
const REPLAY_PAGE: u64 = 1_000;

/// What one subscription field follows.
pub struct Follow {
    /// The field's name (`anomaly_subscriptions_open`'s `field` label).
    pub field: &'static str,
    /// The feed's topic (one of `fanout::LIVE_TOPICS`).
    pub topic: Topic,
    /// One series, or all.
    pub series: Option<SeriesId>,
    /// Resume after this event's cursor: the alerts the alert store (and the feed) holds after
    /// it come first. Only for a topic whose events the alert store keeps (`anomalies`).
    pub after: Option<Uuid>,
    /// Which of the topic's events (of the series) the subscriber gets.
    pub keep: Box<dyn Fn(&Scored) -> bool + Send + Sync>,
}

/// A subscription's results: through async-graphql (replay, queued events), then, with a direct
/// route, written by the follower.
pub type Results = BoxStream<'static, async_graphql::Result<Prediction>>;

/// The results of the subscription `follow` describes (read only when it is not a rendering: a
/// rendering yields its one item).
pub async fn subscribe(
    ctx: &Context<'_>,
    follow: impl FnOnce() -> async_graphql::Result<Follow>,
) -> async_graphql::Result<Results> {
    if let Some(one) = rendering(ctx) {
        return Ok(one);
    }
    let Follow {
        field,
        topic,
        series,
        after,
        keep,
    } = follow()?;
    let state = ctx.services();
    let Subscribed {
        subscription,
        recent,
    } = state
        .feed
        .subscribe(topic, series.clone(), after)
        .await
        .map_err(unavailable)?;
    let (replayed, truncated) = match after {
        Some(after) => replay(state, series.as_ref(), after, recent).await?,
        None => (Vec::new(), false),
    };
    let already = replayed.iter().map(|e| e.id).collect();
    let interest = Arc::new(Interest::new(keep, after, already));
    let direct = direct_recipient(ctx, &interest).await;
    let open = OpenSubscription::new(field);
    Ok(events(
        subscription,
        replayed,
        truncated,
        interest,
        direct,
        open,
    ))
}

/// Counts an open subscription in `anomaly_subscriptions_open` for as long as it lives.
struct OpenSubscription(&'static str);

impl OpenSubscription {
    fn new(field: &'static str) -> Self {
        metrics::gauge!("anomaly_subscriptions_open", "field" => field).increment(1.0);
        Self(field)
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        metrics::gauge!("anomaly_subscriptions_open", "field" => self.0).decrement(1.0);
    }
}

/// The error a subscriber gets in place of `missed` events it was too slow (or the feed was too
/// far behind) to receive.
pub fn lagged(missed: u64) -> async_graphql::Error {
    async_graphql::Error::new(format!(
        "This subscriber fell behind and missed {missed} events; resubscribe with `after` set to \
         the last cursor received to get the stored alerts"
    ))
    .extend_with(|_, e| {
        e.set("code", "LAGGED");
        e.set("missed", missed);
    })
}

/// The error after a replay that stopped at `MAX_REPLAY` alerts.
fn replay_cut_short() -> async_graphql::Error {
    async_graphql::Error::new(format!(
        "More than {MAX_REPLAY} alerts were raised after the cursor; only the oldest \
         {MAX_REPLAY} were replayed: page the rest with the `anomalies` query"
    ))
    .extend_with(|_, e| e.set("code", "LAGGED"))
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> async_graphql::Error {
    ApiError::Unavailable {
        what: "The event bus",
        cause: anomaly_workers::cause::Cause::new(err),
    }
    .into_graphql()
}

pub fn parse_series(raw: Option<String>) -> async_graphql::Result<Option<SeriesId>> {
    raw.map(|id| SeriesId::parse(&id))
        .transpose()
        .map_err(|e| ApiError::from(e).into_graphql())
}

/// The alerts after `after` (stored ones, and those the feed remembers but the store may not
/// have written yet), oldest first, without duplicates; and whether more were stored than one
/// replay gives.
async fn replay(
    state: &AppState,
    series: Option<&SeriesId>,
    after: Uuid,
    remembered: Vec<Arc<Scored>>,
) -> async_graphql::Result<(Vec<Arc<Scored>>, bool)> {
    let mut replayed: Vec<Arc<Scored>> = Vec::new();
    let mut cursor = after;
    let mut truncated = false;
    loop {
        let page = state
            .store
            .alerts(&AlertQuery {
                series: series.cloned(),
                order: AlertOrder::OldestAfter(cursor),
                since_ms: None,
                limit: REPLAY_PAGE,
            })
            .await
            .map_err(|e| ApiError::from(e).into_graphql())?;
        let full = page.len() as u64 == REPLAY_PAGE;
        if let Some(last) = page.last() {
            cursor = last.id;
        }
        replayed.extend(page.into_iter().map(Arc::new));
        if replayed.len() >= MAX_REPLAY {
            replayed.truncate(MAX_REPLAY);
            truncated = true;
            break;
        }
        if !full {
            break;
        }
    }
    let stored: HashSet<Uuid> = replayed.iter().map(|e| e.id).collect();
    let newest_stored = replayed.last().map(|e| e.id);
    replayed.extend(
        remembered
            .into_iter()
            // A truncated replay stops at its last stored alert: the rest come as `LAGGED`.
            .filter(|e| !stored.contains(&e.id) && (!truncated || Some(e.id) <= newest_stored)),
    );
    replayed.sort_by_key(|e| e.id);
    Ok((replayed, truncated))
}

/// The subscription's events: the replayed ones, a `LAGGED` error if the replay was cut short,
/// then live ones not already replayed (nor at or before the cursor). With a `direct`
/// recipient, live events go straight from the follower to it as soon as nothing is queued: the
/// stream then only waits for the feed to end.
fn events(
    subscription: FeedSubscription,
    replayed: Vec<Arc<Scored>>,
    truncated: bool,
    interest: Arc<Interest>,
    direct: Option<Arc<dyn DirectRecipient>>,
    open: OpenSubscription,
) -> Results {
    let replayed: Vec<_> = replayed
        .into_iter()
        .filter(|e| interest.keeps(e))
        .map(|e| Ok(Prediction::from(e)))
        .chain(truncated.then(replay_cut_short).map(Err))
        .collect();
    let direct = direct.map(Finished);
    let live = stream::unfold(
        (subscription, interest, direct, open),
        move |(mut subscription, interest, direct, open)| async move {
            let item = loop {
                // Whatever this stream yielded before has been delivered by now: the transport
                // sends each result before polling for the next.
                if let Some(Finished(recipient)) = &direct
                    && subscription.go_direct(recipient.clone())
                {
                    while subscription.next().await.is_some() {}
                    return None;
                }
                match subscription.next().await? {
                    FeedItem::Event(event) => {
                        if interest.wants(&event) {
                            break Ok(Prediction::from(event));
                        }
                    }
                    FeedItem::Lagged(missed) => break Err(lagged(missed)),
                }
            };
            Some((item, (subscription, interest, direct, open)))
        },
    );
    stream::iter(replayed).chain(live).boxed()
}

/// Ends a direct subscription's writes when its stream is dropped (the client completed it) or
/// ends (the feed closed), before async-graphql sends `complete`.
struct Finished(Arc<dyn DirectRecipient>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The subscription's direct recipient, when its transport offers one.
async fn direct_recipient(
    ctx: &Context<'_>,
    interest: &Arc<Interest>,
) -> Option<Arc<dyn DirectRecipient>> {
    let route = ctx.data_opt::<Arc<dyn DirectRoute>>()?;
    route.recipient(interest.clone()).await
}

/// In a rendering (`RenderOne`), the field yields the one item being rendered.
fn rendering(ctx: &Context<'_>) -> Option<Results> {
    let item = match ctx.data_opt::<RenderOne>()? {
        RenderOne::Event(event) => Ok(Prediction::from(event.clone())),
        RenderOne::Missed(missed) => Err(lagged(*missed)),
    };
    Some(stream::once(std::future::ready(item)).boxed())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use anomaly_workers::bus::{EventBus, MemoryBus};
    use anomaly_workers::detector::Verdict;
    use anomaly_workers::domain::{Point, Version};
    use anomaly_workers::events::Event;
    use anomaly_workers::fanout::{FeedLimits, LiveFeed};
    use async_graphql::futures_util::StreamExt;

    pub(in crate::graphql) fn alert(series: &str, value: f64) -> Scored {
        Scored {
            id: Uuid::now_v7(),
            series_id: SeriesId::parse(series).unwrap(),
            model_version: Version::FIRST,
            detector: "zscore".into(),
            point: Point {
                timestamp: 1,
                value,
            },
            verdict: Verdict {
                anomaly: true,
                score: 3.0,
                expected: 1.0,
                lower: None,
                upper: None,
            },
            alert: true,
            at_ms: 1,
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_gets_a_lagged_error_and_carries_on() {
        let bus = std::sync::Arc::new(MemoryBus::new(64));
        let limits = FeedLimits {
            subscriber_buffer: 1,
            recent: 0,
        };
        let feed = LiveFeed::new(bus.clone(), limits);
        let slow = feed
            .subscribe(Topic::Anomalies, SeriesId::parse("s").ok(), None)
            .await
            .unwrap();
        let mut marker = feed
            .subscribe(Topic::Anomalies, SeriesId::parse("m").ok(), None)
            .await
            .unwrap()
            .subscription;
        let events: Vec<_> = (0..3).map(|i| alert("s", i as f64)).collect();
        for event in events.iter().chain([&alert("m", 0.0)]) {
            bus.publish(Event::Anomaly(std::sync::Arc::new(event.clone())))
                .await
                .unwrap();
        }
        // Once the marker arrived, all three were offered: the slow subscriber's queue (of 1)
        // overflowed by 2.
        assert!(matches!(marker.next().await, Some(FeedItem::Event(_))));
        let stream = events_of(slow.subscription);
        let received: Vec<_> = stream.take(2).collect().await;
        let error = received[0].as_ref().expect_err("a lagged error first");
        let extensions = error.extensions.as_ref().expect("extensions");
        assert_eq!(
            extensions.get("code"),
            Some(&async_graphql::Value::from("LAGGED"))
        );
        assert_eq!(
            extensions.get("missed"),
            Some(&async_graphql::Value::from(2u64))
        );
        let prediction = received[1].as_ref().expect("then the queued event");
        assert_eq!(*prediction.event(), events[0]);
    }

    fn events_of(subscription: FeedSubscription) -> Results {
        let interest = Interest::new(Box::new(|_| true), None, HashSet::new());
        events(
            subscription,
            Vec::new(),
            false,
            Arc::new(interest),
            None,
            OpenSubscription::new("anomalies"),
        )
    }
}
