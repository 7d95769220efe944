//! Signed webhooks (the Standard Webhooks specification): endpoints registered over REST or
//! GraphQL with a secret (`endpoints`, `routes`), every alert turned into a stored delivery per
//! endpoint by a consumer of the alerts topic (`outbox`), sent signed (`signature`), retried with
//! exponential backoff, each attempt kept in a delivery log that can be read and replayed
//! (`dispatch`).

pub mod dispatch;
pub mod endpoints;
pub mod outbox;
pub mod routes;
pub mod signature;

pub use dispatch::{Deliverer, WebhookSettings};
pub use endpoints::Endpoints;
pub use outbox::WebhookOutbox;
pub use routes::routes;
