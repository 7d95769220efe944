//! The behaviour every event bus backend must show. Each backend instantiates the suite with
//! `bus_contract!(name, async-expression-making-a-fresh-bus)`; a fresh bus per test keeps tests
//! isolated (on Kafka: unique topic names and groups).

use std::time::Duration;

use super::{EventBus, Subscription};
use crate::domain::{Point, SeriesId, Version};
use crate::events::{Event, Topic, TrainingData};

pub fn training_data(series: &str, n: u32) -> Event {
    Event::TrainingData(TrainingData {
        series_id: SeriesId::parse(series).expect("valid id"),
        version: Version::from_number(n).expect("valid version"),
        first_seq: 0,
        points: vec![Point {
            timestamp: n as i64,
            value: n as f64,
        }],
    })
}

/// Waits for the next event with a deadline, so a broken backend fails instead of hanging.
pub async fn next_event(sub: &mut Box<dyn Subscription>) -> Option<Event> {
    let delivery = tokio::time::timeout(Duration::from_secs(30), sub.next())
        .await
        .expect("no event within 30 s")
        .expect("bus error");
    let delivery = delivery?;
    sub.ack(&delivery).await.expect("ack");
    Some(delivery.event)
}

pub async fn a_group_receives_events_of_a_key_in_order(bus: impl EventBus) {
    let mut member = bus.join_group(Topic::TrainingData, "g1").await.unwrap();
    for n in 1..=20 {
        bus.publish(training_data("s1", n)).await.unwrap();
    }
    for n in 1..=20 {
        assert_eq!(next_event(&mut member).await, Some(training_data("s1", n)));
    }
}

pub async fn every_group_receives_every_event(bus: impl EventBus) {
    let mut a = bus.join_group(Topic::TrainingData, "ga").await.unwrap();
    let mut b = bus.join_group(Topic::TrainingData, "gb").await.unwrap();
    bus.publish(training_data("s1", 1)).await.unwrap();
    bus.emit(training_data("s1", 2)).unwrap();
    for member in [&mut a, &mut b] {
        assert_eq!(next_event(member).await, Some(training_data("s1", 1)));
        assert_eq!(next_event(member).await, Some(training_data("s1", 2)));
    }
}

/// Members of one group share its events, each to one of them. Kafka keeps that promise in a
/// settled group: a member joining moves partitions, and what the member losing them had acked
/// but not yet committed (auto-commit runs every second) is delivered again, at least once, as
/// consumers expect. (Seen under load: the first member read s1–s8, the second member's join
/// revoked its partitions, and after the rebalance it read s1–s3 again.) So the group settles
/// first: warm-up events go out until each member has received one.
pub async fn members_of_one_group_share_the_events(bus: impl EventBus) {
    let mut first = bus.join_group(Topic::TrainingData, "shared").await.unwrap();
    let mut second = bus.join_group(Topic::TrainingData, "shared").await.unwrap();
    let is_warm_up = |event: &Event| matches!(event, Event::TrainingData(data) if data.series_id.as_str().starts_with("warm"));
    let (mut first_settled, mut second_settled) = (false, false);
    let mut warm_ups = 0;
    while !(first_settled && second_settled) {
        warm_ups += 1;
        assert!(
            warm_ups <= 1_000,
            "a member of the group never received an event"
        );
        let warm_up = training_data(&format!("warm{warm_ups}"), warm_ups);
        bus.publish(warm_up).await.unwrap();
        tokio::select! {
            Some(_) = next_event(&mut first) => first_settled = true,
            Some(_) = next_event(&mut second) => second_settled = true,
        }
    }
    for n in 1..=10 {
        bus.publish(training_data(&format!("s{n}"), n))
            .await
            .unwrap();
    }
    // Drain both members until ten distinct events arrived; none may arrive twice.
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let event = tokio::select! {
            Some(e) = next_event(&mut first) => e,
            Some(e) = next_event(&mut second) => e,
        };
        if !is_warm_up(&event) {
            seen.push(event);
        }
    }
    for n in 1..=10 {
        let expected = training_data(&format!("s{n}"), n);
        assert_eq!(seen.iter().filter(|e| **e == expected).count(), 1);
    }
}

/// A member that leaves after acking part of what was published together (on Kafka: one producer
/// batch) hands the rest to the next member of its group: resuming inside a batch loses nothing.
/// (tansu 0.6's in-memory engine fails this: it serves only batches that start at or after the
/// fetch offset, so the next member waits forever.)
pub async fn a_member_resuming_inside_a_batch_receives_the_rest(bus: impl EventBus) {
    let mut first = bus.join_group(Topic::TrainingData, "resume").await.unwrap();
    for n in 1..=9 {
        bus.emit(training_data("s1", n)).unwrap();
    }
    bus.publish(training_data("s1", 10)).await.unwrap();
    for n in 1..=3 {
        assert_eq!(next_event(&mut first).await, Some(training_data("s1", n)));
    }
    drop(first);
    let mut next = bus.join_group(Topic::TrainingData, "resume").await.unwrap();
    for n in 4..=10 {
        assert_eq!(next_event(&mut next).await, Some(training_data("s1", n)));
    }
}

pub async fn every_follower_sees_every_event(bus: impl EventBus) {
    let mut a = bus.follow(Topic::Anomalies).await.unwrap();
    let mut b = bus.follow(Topic::Anomalies).await.unwrap();
    let scored = crate::store::contract::alert("s1", 22.5, 1);
    bus.emit(Event::Anomaly(std::sync::Arc::new(scored.clone())))
        .unwrap();
    for follower in [&mut a, &mut b] {
        assert_eq!(
            next_event(follower).await,
            Some(Event::Anomaly(std::sync::Arc::new(scored.clone())))
        );
    }
}

pub async fn closing_refuses_new_events_and_ends_subscriptions(bus: impl EventBus) {
    let mut member = bus
        .join_group(Topic::TrainingData, "closing")
        .await
        .unwrap();
    let mut follower = bus.follow(Topic::TrainingData).await.unwrap();
    bus.close();
    assert!(bus.publish(training_data("s1", 1)).await.is_err());
    assert!(bus.emit(training_data("s1", 2)).is_err());
    assert_eq!(next_event(&mut member).await, None);
    assert_eq!(next_event(&mut follower).await, None);
}

macro_rules! bus_contract {
    ($(#[$attr:meta])* $backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            use crate::bus::contract;

            #[tokio::test]
            $(#[$attr])*
            async fn a_group_receives_events_of_a_key_in_order() {
                contract::a_group_receives_events_of_a_key_in_order($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn every_group_receives_every_event() {
                contract::every_group_receives_every_event($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn members_of_one_group_share_the_events() {
                contract::members_of_one_group_share_the_events($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn a_member_resuming_inside_a_batch_receives_the_rest() {
                contract::a_member_resuming_inside_a_batch_receives_the_rest($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn every_follower_sees_every_event() {
                contract::every_follower_sees_every_event($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn closing_refuses_new_events_and_ends_subscriptions() {
                contract::closing_refuses_new_events_and_ends_subscriptions($make).await;
            }
        }
    };
}
pub(crate) use bus_contract;
