//! Signed webhooks (the Standard Webhooks specification): endpoints registered over REST or GraphQL with a
//! secret, every alert POSTed to each of them signed (`signature`), retried with exponential
//! backoff, each attempt kept in a delivery log that can be read and replayed (`routes`).

pub mod dispatch;
pub mod endpoints;
pub mod routes;
pub mod signature;

pub use dispatch::{WebhookSettings, notifying};
pub use endpoints::Endpoints;
pub use routes::routes;
