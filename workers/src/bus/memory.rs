//! The in-process event bus: bounded tokio channels. A consumer group is one queue shared by its
//! members; followers each get a broadcast receiver. Nothing survives the process, which is why
//! the distributed roles refuse to run on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};

use super::{BusError, Delivery, EventBus, Subscription};
use crate::events::{Event, Topic};

#[derive(Clone)]
pub struct MemoryBus {
    state: Arc<Mutex<State>>,
    capacity: usize,
}

struct State {
    closed: bool,
    topics: HashMap<Topic, TopicQueues>,
}

#[derive(Default)]
struct TopicQueues {
    groups: HashMap<String, GroupQueue>,
    followers: Option<broadcast::Sender<Event>>,
}

/// One sender per consumer group, and the followers' broadcast sender if anyone follows.
type Recipients = (Vec<mpsc::Sender<Event>>, Option<broadcast::Sender<Event>>);

struct GroupQueue {
    sender: mpsc::Sender<Event>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Event>>>,
}

impl MemoryBus {
    /// `capacity` bounds each group queue and each follower's backlog.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                closed: false,
                topics: HashMap::new(),
            })),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock guards plain maps; a panic elsewhere cannot leave them half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who must receive an event of `topic`: one sender per group, and the followers.
    fn recipients(&self, topic: Topic) -> Result<Recipients, BusError> {
        let state = self.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        Ok(match state.topics.get(&topic) {
            Some(queues) => (
                queues.groups.values().map(|g| g.sender.clone()).collect(),
                queues.followers.clone(),
            ),
            None => (Vec::new(), None),
        })
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, event: Event) -> Result<(), BusError> {
        let (groups, followers) = self.recipients(event.topic())?;
        for group in groups {
            group
                .send(event.clone())
                .await
                .map_err(|_| BusError::Closed)?;
        }
        if let Some(followers) = followers {
            // No follower listening is not an error: live feeds start from "now".
            let _ = followers.send(event);
        }
        Ok(())
    }

    fn emit(&self, event: Event) -> Result<(), BusError> {
        // Nothing here waits: hand the event over under the lock, with no list of recipients
        // built per event (this is on the predict path).
        let topic = event.topic();
        let state = self.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        let Some(queues) = state.topics.get(&topic) else {
            return Ok(());
        };
        for group in queues.groups.values() {
            group.sender.try_send(event.clone()).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => BusError::Full(topic),
                mpsc::error::TrySendError::Closed(_) => BusError::Closed,
            })?;
        }
        if let Some(followers) = &queues.followers {
            let _ = followers.send(event);
        }
        Ok(())
    }

    async fn join_group(
        &self,
        topic: Topic,
        group: &str,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let mut state = self.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        let capacity = self.capacity;
        let queue = state
            .topics
            .entry(topic)
            .or_default()
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(capacity);
                GroupQueue {
                    sender,
                    receiver: Arc::new(tokio::sync::Mutex::new(receiver)),
                }
            });
        Ok(Box::new(GroupMember {
            queue: queue.receiver.clone(),
        }))
    }

    async fn follow(&self, topic: Topic) -> Result<Box<dyn Subscription>, BusError> {
        let mut state = self.lock();
        if state.closed {
            return Err(BusError::Closed);
        }
        let capacity = self.capacity;
        let followers = state
            .topics
            .entry(topic)
            .or_default()
            .followers
            .get_or_insert_with(|| broadcast::channel(capacity).0);
        Ok(Box::new(Follower {
            receiver: followers.subscribe(),
        }))
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Dropping the senders lets receivers drain what is queued and then see the end.
        state.topics.clear();
    }
}

struct GroupMember {
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Event>>>,
}

#[async_trait]
impl Subscription for GroupMember {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        let event = self.queue.lock().await.recv().await;
        Ok(event.map(|event| Delivery {
            trace: Vec::new(),
            event,
            position: None,
        }))
    }

    async fn ack(&mut self, _delivery: &Delivery) -> Result<(), BusError> {
        // Taking an event off the queue already removed it for the whole group.
        Ok(())
    }
}

struct Follower {
    receiver: broadcast::Receiver<Event>,
}

#[async_trait]
impl Subscription for Follower {
    async fn next(&mut self) -> Result<Option<Delivery>, BusError> {
        match self.receiver.recv().await {
            Ok(event) => Ok(Some(Delivery {
                trace: Vec::new(),
                event,
                position: None,
            })),
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(BusError::Lagged(missed)),
            Err(broadcast::error::RecvError::Closed) => Ok(None),
        }
    }

    async fn ack(&mut self, _delivery: &Delivery) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract::bus_contract;
    use super::MemoryBus;

    bus_contract!(memory, MemoryBus::new(64));

    #[tokio::test]
    async fn closing_delivers_what_was_accepted_then_ends() {
        use super::super::EventBus;
        use super::super::contract::{next_event, training_data};
        use crate::events::Topic;
        let bus = MemoryBus::new(64);
        let mut member = bus.join_group(Topic::TrainingData, "drain").await.unwrap();
        for n in 1..=3 {
            bus.publish(training_data("s1", n)).await.unwrap();
        }
        bus.close();
        for n in 1..=3 {
            assert_eq!(next_event(&mut member).await, Some(training_data("s1", n)));
        }
        assert_eq!(next_event(&mut member).await, None);
    }

    #[tokio::test]
    async fn emit_refuses_instead_of_blocking_when_a_group_queue_is_full() {
        use super::super::{BusError, EventBus};
        use crate::events::Topic;
        let bus = MemoryBus::new(1);
        let _member = bus.join_group(Topic::TrainingData, "slow").await.unwrap();
        bus.emit(super::super::contract::training_data("s", 1))
            .unwrap();
        let refused = bus.emit(super::super::contract::training_data("s", 2));
        assert!(matches!(refused, Err(BusError::Full(Topic::TrainingData))));
    }
}
