//! The alert store's write: each event of the `anomalies` topic into the database, once (keyed by
//! the event id, so a redelivered event adds nothing).

use std::sync::Arc;

use async_trait::async_trait;

use super::{HandleError, Handler};
use crate::events::Event;
use crate::store::Alerts;

pub struct AlertWriter {
    store: Arc<dyn Alerts>,
}

impl AlertWriter {
    /// The consumer group every alert-storing process joins (one copy per alert in total).
    pub const GROUP: &'static str = "alert-store";

    pub fn new(store: Arc<dyn Alerts>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Handler for AlertWriter {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let Event::Anomaly(alert) = event else {
            return Err(HandleError::Poison(format!(
                "expected an anomaly, got {event:?}"
            )));
        };
        let new = self
            .store
            .save_alert(alert)
            .await
            .map_err(|e| HandleError::Transient(crate::cause::Cause::new(e)))?;
        if new {
            ::metrics::counter!("anomaly_alerts_stored_total").increment(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{EventBus, MemoryBus};
    use crate::events::Topic;
    use crate::store::{ModelStore, SqlStore};

    #[tokio::test]
    async fn a_redelivered_alert_is_stored_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store: Arc<dyn ModelStore> = Arc::new(SqlStore::connect(&url).await.expect("store"));
        let bus = MemoryBus::new(16);
        let group = bus
            .join_group(Topic::Anomalies, AlertWriter::GROUP)
            .await
            .unwrap();
        let alert = crate::store::contract::alert("s", 99.0, 60_000);
        // The same event delivered twice, as Kafka does after a crash before the commit.
        for _ in 0..2 {
            bus.publish(Event::Anomaly(std::sync::Arc::new(alert.clone())))
                .await
                .unwrap();
        }
        bus.close();
        let writer = AlertWriter::new(store.clone());
        super::super::consume("alerts", group, &writer, Default::default()).await;
        let stored = crate::store::contract::newest_alerts(&*store).await;
        assert_eq!(stored, vec![alert]);
    }
}
