//! What a subscription shares with a transport that writes live results itself (the WebSocket
//! fast path): the transport offers a `DirectRoute` in the request's data, and the subscription,
//! once caught up, hands its `Interest` to the recipient the route gives, on the follower's task.
//! A rendering of one result for such recipients puts a `RenderOne` in the request's data
//! instead. Declared here, on the schema's side, so that the schema depends on no transport.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_graphql::futures_util::future::BoxFuture;
use uuid::Uuid;

use anomaly_workers::events::Scored;
use anomaly_workers::fanout::Recipient;

/// In a subscription's request data, from a transport that writes live results itself.
pub trait DirectRoute: Send + Sync {
    /// A recipient for the live events `interest` wants; `None` keeps the subscription on its
    /// stream.
    fn recipient(&self, interest: Arc<Interest>)
    -> BoxFuture<'_, Option<Arc<dyn DirectRecipient>>>;
}

/// A subscription's recipient on the follower's task.
pub trait DirectRecipient: Recipient {
    /// The subscription ended (the client completed it, or the feed closed): called before its
    /// `complete` is sent, so no result follows it.
    fn finish(&self);
}

/// In a rendering's request data: the one item the subscription field yields.
pub enum RenderOne {
    Event(Arc<Scored>),
    /// A lagged notice for this many missed events.
    Missed(u64),
}

/// What one subscription wants of its topic's events (beyond its series, which the feed
/// picks): the same on both paths.
pub struct Interest {
    keep: Box<dyn Fn(&Scored) -> bool + Send + Sync>,
    /// Events at or before the cursor were replayed or are older.
    after: Option<Uuid>,
    /// Replayed events the feed may still bring (each is dropped once).
    already: Mutex<HashSet<Uuid>>,
    any_already: bool,
}

impl Interest {
    pub fn new(
        keep: Box<dyn Fn(&Scored) -> bool + Send + Sync>,
        after: Option<Uuid>,
        already: HashSet<Uuid>,
    ) -> Self {
        Self {
            keep,
            after,
            any_already: !already.is_empty(),
            already: Mutex::new(already),
        }
    }

    /// Whether a replayed event is kept (its filter only).
    pub fn keeps(&self, event: &Scored) -> bool {
        (self.keep)(event)
    }

    /// Whether a live event is wanted: kept, and neither replayed nor at or before the cursor.
    pub fn wants(&self, event: &Scored) -> bool {
        let seen = self.after.is_some_and(|after| event.id <= after)
            || (self.any_already
                && self
                    .already
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&event.id));
        !seen && (self.keep)(event)
    }
}
