//! What hears of alerts besides the alert store: the registered webhook endpoints and, when
//! configured, Alertmanager; each a decorator around the predictor that never makes it wait.

use std::sync::Arc;

use anomaly_workers::predictor::Scoring;
use anomaly_workers::store::ModelStore;

use crate::config::Config;

/// `scoring`, with its alerts delivered to the webhook endpoints in `store` and Alertmanager.
pub fn around(
    scoring: Arc<dyn Scoring>,
    store: Arc<dyn ModelStore>,
    config: &Config,
) -> Arc<dyn Scoring> {
    let scoring = crate::webhooks::notifying(scoring, store, &config.webhooks);
    crate::alertmanager::notifying(scoring, config.alertmanager.as_ref())
}
