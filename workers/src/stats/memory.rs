//! The in-process metrics store: bounded windows behind one mutex. Real code with the same
//! contract as Redis; it just forgets everything when the process ends.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use uuid::Uuid;

use super::latency::{LatencySummary, minute_of, per_minute};
use super::{
    HEARTBEAT_TTL_MS, LATENCY_WINDOW, StatsError, StatsSnapshot, StatsStore, THROUGHPUT_MINUTES,
    sort_instances,
};
use crate::events::{Heartbeat, InferenceBatch, Metric, MetricKind, Role};

/// How many recent metric ids are remembered to ignore redelivered copies.
const SEEN_IDS: usize = 10_000;

#[derive(Default)]
pub struct MemoryStats {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    training: Series,
    inference: Series,
    series_trained: HashSet<String>,
    /// Hashed, not ordered: it is looked up on every prediction, listed only by a snapshot.
    model_usage: HashMap<String, u64>,
    heartbeats: HashMap<(Role, String), Heartbeat>,
    seen: HashSet<Uuid>,
    seen_order: VecDeque<Uuid>,
}

#[derive(Default)]
struct Series {
    latencies: VecDeque<f64>,
    per_minute: BTreeMap<i64, u64>,
}

impl Series {
    fn record(&mut self, latency_ms: f64, at_ms: i64) {
        self.record_many(&[latency_ms], 1, at_ms);
    }

    /// Keeps the newest `LATENCY_WINDOW` of `latencies_ms` and counts `count` operations in the
    /// minute of `at_ms`.
    fn record_many(&mut self, latencies_ms: &[f64], count: u64, at_ms: i64) {
        let newest = &latencies_ms[latencies_ms.len().saturating_sub(LATENCY_WINDOW)..];
        let room = LATENCY_WINDOW - newest.len();
        if self.latencies.len() > room {
            self.latencies.drain(..self.latencies.len() - room);
        }
        self.latencies.extend(newest);
        *self.per_minute.entry(minute_of(at_ms)).or_default() += count;
        self.prune(minute_of(at_ms));
    }

    fn throughput(&self, now_minute: i64) -> f64 {
        let since = now_minute - THROUGHPUT_MINUTES + 1;
        per_minute(
            self.per_minute.range(since..).map(|(m, c)| (*m, *c)),
            now_minute,
        )
    }

    fn prune(&mut self, now_minute: i64) {
        let since = now_minute - THROUGHPUT_MINUTES + 1;
        // Most calls have nothing to drop: only then is the map rebuilt.
        if self
            .per_minute
            .first_key_value()
            .is_some_and(|(&minute, _)| minute < since)
        {
            self.per_minute = self.per_minute.split_off(&since);
        }
    }
}

impl MemoryStats {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn count_uses(&mut self, series: &str, uses: u64) {
        // The key is copied only the first time the series is used.
        match self.model_usage.get_mut(series) {
            Some(known) => *known += uses,
            None => {
                self.model_usage.insert(series.to_owned(), uses);
            }
        }
    }

    /// True the first time an id is seen (within the remembered window).
    fn first_sighting(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > SEEN_IDS
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

#[async_trait]
impl StatsStore for MemoryStats {
    async fn record(&self, metric: &Metric) -> Result<(), StatsError> {
        let mut state = self.lock();
        if !state.first_sighting(metric.id) {
            return Ok(());
        }
        let series = metric.series_id.as_str();
        match metric.kind {
            MetricKind::Training => {
                state.training.record(metric.latency_ms, metric.at_ms);
                if !state.series_trained.contains(series) {
                    state.series_trained.insert(series.to_owned());
                }
            }
            MetricKind::Inference => {
                state.inference.record(metric.latency_ms, metric.at_ms);
                state.count_uses(series, 1);
            }
        }
        Ok(())
    }

    async fn record_inferences(&self, batch: &InferenceBatch) -> Result<(), StatsError> {
        let mut state = self.lock();
        if !state.first_sighting(batch.id) {
            return Ok(());
        }
        state
            .inference
            .record_many(&batch.latencies_ms, batch.predictions(), batch.at_ms);
        for (series, uses) in &batch.uses {
            state.count_uses(series.as_str(), *uses);
        }
        Ok(())
    }

    async fn record_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), StatsError> {
        let mut state = self.lock();
        let key = (heartbeat.role, heartbeat.instance.clone());
        let newer = state
            .heartbeats
            .get(&key)
            .is_none_or(|known| known.at_ms <= heartbeat.at_ms);
        if newer {
            state.heartbeats.insert(key, heartbeat.clone());
        }
        Ok(())
    }

    async fn snapshot(&self, now_ms: i64, top_usage: usize) -> Result<StatsSnapshot, StatsError> {
        let mut state = self.lock();
        state
            .heartbeats
            .retain(|_, hb| now_ms - hb.at_ms <= HEARTBEAT_TTL_MS);
        let mut instances: Vec<Heartbeat> = state.heartbeats.values().cloned().collect();
        sort_instances(&mut instances);
        let now_minute = minute_of(now_ms);
        Ok(StatsSnapshot {
            series_trained: state.series_trained.len() as u64,
            training_latency: LatencySummary::of(state.training.latencies.make_contiguous()),
            inference_latency: LatencySummary::of(state.inference.latencies.make_contiguous()),
            training_per_minute: state.training.throughput(now_minute),
            inference_per_minute: state.inference.throughput(now_minute),
            model_usage: most_used(&state.model_usage, top_usage),
            instances,
        })
    }
}

/// The `top` most used series of `usage` (of equally used ones, the smaller ids), chosen with a
/// heap of `top` entries: no series id is copied but those returned.
fn most_used(usage: &HashMap<String, u64>, top: usize) -> BTreeMap<String, u64> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if top >= usage.len() {
        return usage.iter().map(|(s, n)| (s.clone(), *n)).collect();
    }
    // Ordered so that the heap's greatest entry is the least used kept so far.
    let mut kept: BinaryHeap<(Reverse<u64>, &str)> = BinaryHeap::with_capacity(top + 1);
    for (series, &uses) in usage {
        let entry = (Reverse(uses), series.as_str());
        if kept.len() < top {
            kept.push(entry);
        } else if kept.peek().is_some_and(|worst| entry < *worst) {
            kept.pop();
            kept.push(entry);
        }
    }
    kept.into_iter()
        .map(|(Reverse(uses), series)| (series.to_owned(), uses))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::contract::metrics_contract;
    use super::MemoryStats;

    metrics_contract!(memory, MemoryStats::new());
}
