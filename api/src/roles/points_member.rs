//! A predictor's membership of the `predictors` group on `points`: it scores the points of the
//! partitions it holds and keeps the role's `Assignment` (what its heartbeats claim) current.
//!
//! It also works around brokers that leave a dead member's partitions to nobody: tansu 0.6
//! rebalances the survivors once the dead member's session expires but hands them only what they
//! had (`docs/tansu/stranded_partitions.py` shows it without our code), where Kafka gives them
//! everything. The member follows every predictor's claims, and when some partition has been
//! claimed by none for `STRANDED_AFTER` (longer than any rebalance on Kafka takes), it leaves the
//! group and joins again, which makes the coordinator hand every partition out afresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use anomaly_workers::bus::{Assignment, BusError, EventBus, KafkaBus, Subscription};
use anomaly_workers::consumers::{PointScorer, score_points};
use anomaly_workers::events::{Event, Heartbeat, Topic};

/// How long a partition may be claimed by no predictor before the member rejoins the group.
pub const STRANDED_AFTER: Duration = Duration::from_secs(KafkaBus::SESSION_TIMEOUT.as_secs() * 2);

/// Runs the member until `stop` fires or the bus closes, rejoining when partitions are stranded.
pub async fn run(
    bus: Arc<dyn EventBus>,
    scorer: PointScorer,
    claimed: Assignment,
    mut heartbeats: Box<dyn Subscription>,
    stop: CancellationToken,
) {
    let mut first = true;
    loop {
        let points = match join(&*bus, &stop, first).await {
            Some(points) => points,
            None => return,
        };
        first = false;
        let member = stop.child_token();
        let forwarding = tokio::spawn(forward(
            points.assignment().unwrap_or_default(),
            claimed.clone(),
            member.clone(),
        ));
        let consuming = score_points(points, &scorer, member.clone());
        tokio::pin!(consuming);
        let stranded = tokio::select! {
            () = &mut consuming => false,
            () = stranded(&mut heartbeats, &claimed) => true,
        };
        member.cancel();
        if stranded {
            tracing::warn!(
                after = ?STRANDED_AFTER,
                "partitions of points are held by no predictor: rejoining the group so the broker hands them out again"
            );
            ::metrics::counter!("anomaly_points_group_rejoins_total").increment(1);
            consuming.await;
        }
        let _ = forwarding.await;
        if !stranded {
            return;
        }
    }
}

/// Joins the group, retrying while the broker is unreachable; None once `stop` fires.
async fn join(
    bus: &dyn EventBus,
    stop: &CancellationToken,
    first: bool,
) -> Option<Box<dyn Subscription>> {
    let mut wait = Duration::from_millis(200);
    loop {
        match bus.join_group(Topic::Points, PointScorer::GROUP).await {
            Ok(points) => return Some(points),
            Err(BusError::Closed) => return None,
            Err(err) => {
                tracing::warn!(error = %err, first, "joining the predictors' group; retrying");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(10));
    }
}

/// Copies the member's partitions into the role's claim until `stop` fires.
async fn forward(member: Assignment, claimed: Assignment, stop: CancellationToken) {
    let mut changes = member.watch();
    loop {
        let held = changes.borrow_and_update().clone();
        claimed.set_partition_count(held.partition_count);
        claimed.hold(held.partitions);
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

/// Resolves once some partition of `points` has been claimed by no predictor (in the claims
/// heartbeats carry, this one's included) for `STRANDED_AFTER` since this member joined.
async fn stranded(heartbeats: &mut Box<dyn Subscription>, own: &Assignment) {
    let joined = Instant::now();
    let mut last_claimed: Vec<Instant> = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            next = heartbeats.next() => {
                match next {
                    Ok(Some(delivery)) => {
                        if let Event::Heartbeat(Heartbeat { serves: Some(serving), .. }) = &delivery.event {
                            let count = usize::try_from(serving.partition_count).unwrap_or(0);
                            if count != last_claimed.len() && count <= 100_000 {
                                last_claimed = vec![joined; count];
                            }
                            for &p in &serving.partitions {
                                if let Some(at) = usize::try_from(p).ok().and_then(|p| last_claimed.get_mut(p)) {
                                    *at = Instant::now();
                                }
                            }
                        }
                    }
                    Ok(None) => std::future::pending::<()>().await,
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
                continue;
            }
        }
        // Its own partitions count as claimed even before its next heartbeat.
        for &p in &own.now().partitions {
            if let Some(at) = usize::try_from(p)
                .ok()
                .and_then(|p| last_claimed.get_mut(p))
            {
                *at = Instant::now();
            }
        }
        if last_claimed.iter().any(|at| at.elapsed() > STRANDED_AFTER) {
            return;
        }
    }
}
