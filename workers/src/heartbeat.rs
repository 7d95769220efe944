//! Heartbeats: every role announces itself with its process host's system figures every few
//! seconds, so `/healthcheck` can list live instances and their load.

use std::sync::Arc;
use std::time::Duration;

use sysinfo::System;
use tokio_util::sync::CancellationToken;

use crate::bus::{Assignment, EventBus};
use crate::events::{Event, Heartbeat, Role, Serving, now_ms};

/// System figures of this host, sampled with sysinfo. Where sysinfo cannot read the host, the
/// figures are zeros rather than a failed heartbeat: liveness matters more than the numbers.
pub struct SystemSampler {
    system: Option<System>,
}

impl Default for SystemSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemSampler {
    pub fn new() -> Self {
        let system = match System::new() {
            Ok(mut system) => {
                // CPU usage is a difference between two refreshes; this is the first.
                system.refresh_cpu_usage();
                Some(system)
            }
            Err(err) => {
                tracing::warn!(error = %err, "system figures unavailable; heartbeats report zeros");
                None
            }
        };
        Self { system }
    }

    /// (cpu %, memory %, load average 1/5/15 min).
    pub fn sample(&mut self) -> (f64, f64, [f64; 3]) {
        let load = System::load_average()
            .map(|l| [l.one, l.five, l.fifteen])
            .unwrap_or_default();
        let Some(system) = self.system.as_mut() else {
            return (0.0, 0.0, load);
        };
        system.refresh_cpu_usage();
        system.refresh_memory();
        let total = system.total_memory();
        let memory = if total == 0 {
            0.0
        } else {
            system.used_memory() as f64 * 100.0 / total as f64
        };
        (f64::from(system.global_cpu_usage()), memory, load)
    }
}

/// A name for this process that is unique among the platform's instances.
pub fn instance_name() -> String {
    format!("{}-{}", host_name(), std::process::id())
}

/// This host's name, as other hosts may know it ("localhost" where it cannot be read).
pub fn host_name() -> String {
    System::host_name().unwrap_or_else(|_| "localhost".into())
}

/// A predictor's claim, announced in its heartbeats: where it answers and the partitions of
/// `points` its group member holds.
#[derive(Clone)]
pub struct Claim {
    pub url: String,
    pub assignment: Assignment,
}

impl Claim {
    fn serving(&self) -> Serving {
        let held = self.assignment.now();
        Serving {
            url: self.url.clone(),
            partitions: held.partitions,
            partition_count: held.partition_count,
        }
    }
}

/// Sends a heartbeat for each of `roles` now and then every `interval`, until `stop` fires; a
/// predictor's (`claim`) also at once whenever its partitions change, so gateways route its
/// series to it without waiting for the next beat.
pub async fn send_heartbeats(
    roles: Vec<Role>,
    instance: String,
    bus: Arc<dyn EventBus>,
    interval: Duration,
    claim: Option<Claim>,
    stop: CancellationToken,
) {
    let mut sampler = SystemSampler::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rebalances = claim.as_ref().map(|c| c.assignment.watch());
    loop {
        let rebalanced = async {
            match rebalances.as_mut() {
                Some(watch) => {
                    if watch.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
            () = rebalanced => {}
        }
        let (cpu_percent, memory_percent, load_avg) = sampler.sample();
        for role in &roles {
            let heartbeat = Heartbeat {
                role: *role,
                instance: instance.clone(),
                cpu_percent,
                memory_percent,
                load_avg,
                at_ms: now_ms(),
                serves: claim.as_ref().map(Claim::serving),
            };
            if let Err(err) = bus.emit(Event::Heartbeat(heartbeat)) {
                tracing::warn!(error = %err, "heartbeat dropped");
            }
        }
    }
}
