//! The composition root: [`run`] turns the settings and the roles a process plays into running
//! parts. `anomaly serve` is every role in one process on whatever backends are configured
//! (`serve`); `anomaly gateway`, `trainer`, ... one role on the shared backends (`role`); the
//! integration tests start the product through the same call. Both are assembled from the same
//! `parts`; `crate::backends` picks the store, bus and metrics store from the configuration.

pub mod parts;
mod role;
mod serve;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use anomaly_workers::bus::wait_for_closing_consumers;
use anomaly_workers::events::Role;

use crate::config::Config;

/// How long a stopping process waits for its Kafka consumers to leave their groups.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// Every role (`anomaly serve`).
    All,
    /// One role of the distributed deployment.
    One(Role),
}

/// Runs `roles` until `shutdown` fires, then drains what was accepted. `listener` is where the
/// process answers HTTP: the gateway (and `serve`), trainer and predictor their routes, the
/// consumers their probes and `/metrics` (a consumer given none serves no HTTP).
pub async fn run(
    config: Config,
    roles: Roles,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let ran = match roles {
        Roles::All => {
            let Some(listener) = listener else {
                anyhow::bail!("`serve` answers HTTP and needs a listener");
            };
            serve::run(config, listener, shutdown).await
        }
        Roles::One(role) => role::run(role, config, listener, shutdown).await,
    };
    // The Kafka consumers the roles dropped leave their groups (their partitions move to the
    // other members at once), within a bound: a broker that never answers does not keep the
    // process from ending.
    let _ = tokio::task::spawn_blocking(|| wait_for_closing_consumers(CLOSE_TIMEOUT)).await;
    ran
}
