//! Subscriptions fed from the gateway's shared live feed (one follower per topic, fanned out by
//! series), one field per file. A field says what it follows (`live::Follow`: topic, series,
//! cursor, filter) and `live` does the rest the same way for all: replay after a cursor, limits,
//! `LAGGED` errors, the metrics, and handing live events to a transport that writes them itself.
//! A new subscription is a file here and its line in `SubscriptionRoot`.

mod anomalies;
mod live;
mod predictions;
mod route;

pub use route::{DirectRecipient, DirectRoute, Interest, RenderOne};

#[cfg(test)]
pub(in crate::graphql) use live::tests::alert;

// The registry: each field's type, in the order the schema lists the fields. (No doc comment: it
// would become the type's description in `schema.graphql`.)
#[derive(async_graphql::MergedSubscription, Default)]
pub struct SubscriptionRoot(
    anomalies::AnomaliesSubscription,
    predictions::PredictionsSubscription,
);
