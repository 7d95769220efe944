//! sea-orm entities of the anomaly platform, and nothing else: the schema itself lives in
//! `migration/`, the queries in `anomaly-workers`' store.

pub mod alert;
pub mod model;
pub mod model_state;
pub mod training_point;
pub mod webhook;
pub mod webhook_delivery;
