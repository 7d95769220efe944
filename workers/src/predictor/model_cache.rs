//! The predictor's cache of live models, bounded: at most `capacity` series. When a new one comes
//! in, the least recently used leaves (approximately, as Redis does it: the oldest of a few
//! sampled, so a hit costs an atomic store and an eviction a handful of reads, at any size). A
//! leaving series whose detector learns online is not forgotten before its state is saved: it
//! stays reachable until its checkpoint is written (a predict for it meanwhile takes it back), so
//! no learnt point is lost and no older checkpoint is reloaded in its place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};

use crate::domain::SeriesId;
use crate::live::LiveState;
use crate::model::TrainedModel;

/// Milliseconds since the first call (a monotonic clock for checkpoint spacing).
fn millis_since_start() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Entries sampled to choose the one to evict.
const EVICTION_SAMPLE: usize = 8;

/// One series' model in use.
pub(super) struct Live {
    pub model: TrainedModel,
    pub state: Mutex<LiveState>,
    /// The cache's clock at this series' last use.
    last_used: AtomicU64,
    /// Set when the series left the cache: whoever still scores with it saves its state at once.
    evicted: AtomicBool,
    /// Points seen and the time (ms since the cache started) at its last checkpoint; read and
    /// written under the state's lock.
    checkpointed_seen: AtomicU64,
    checkpointed_ms: AtomicU64,
    /// Points seen by the newest checkpoint known to be written.
    pub saved_seen: AtomicU64,
}

impl Live {
    /// Whether a series that has seen `seen` points is due a checkpoint under `policy`; if it is,
    /// counts it as taken (called under the state's lock).
    pub fn checkpoint_due(&self, seen: u64, policy: &super::Checkpoints) -> bool {
        let since = seen.saturating_sub(self.checkpointed_seen.load(Ordering::Relaxed));
        if since < policy.every {
            return false;
        }
        let now = millis_since_start();
        let last = self.checkpointed_ms.load(Ordering::Relaxed);
        // The first checkpoint is never held back: `last` is 0 until one is taken.
        if last != 0 && now.saturating_sub(last) < policy.min_interval.as_millis() as u64 {
            return false;
        }
        self.checkpointed_seen.store(seen, Ordering::Relaxed);
        self.checkpointed_ms.store(now.max(1), Ordering::Relaxed);
        true
    }

    /// Records that a checkpoint of `seen` points is written.
    pub fn saved(&self, seen: u64) {
        self.saved_seen.fetch_max(seen, Ordering::AcqRel);
    }

    /// Whether this series has left the cache (checked under the state's lock).
    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }
}

/// A series that left the cache and whose online state must be saved; once it is, pass the
/// departure to `ModelCache::departed`.
pub(super) struct Departure {
    pub live: Arc<Live>,
    generation: u64,
}

pub(super) struct ModelCache {
    capacity: usize,
    clock: AtomicU64,
    slots: RwLock<Slots>,
}

#[derive(Default)]
struct Slots {
    index: HashMap<SeriesId, usize>,
    entries: Vec<Arc<Live>>,
    /// Evicted online series whose checkpoint is being written, with the eviction's generation.
    leaving: HashMap<SeriesId, (Arc<Live>, u64)>,
    generation: u64,
    /// xorshift state for sampling.
    seed: u64,
}

impl ModelCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            slots: RwLock::new(Slots {
                seed: 0x9e37_79b9_7f4a_7c15,
                ..Slots::default()
            }),
        }
    }

    /// The cached model of `series`, and a departure when taking back a leaving one made room.
    pub fn get(&self, series: &SeriesId) -> Option<(Arc<Live>, Option<Departure>)> {
        {
            let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
            if let Some(&at) = slots.index.get(series) {
                let live = slots.entries[at].clone();
                self.touch(&live);
                return Some((live, None));
            }
            if !slots.leaving.contains_key(series) {
                return None;
            }
        }
        let mut slots = self.write();
        let (live, _) = slots.leaving.remove(series)?;
        live.evicted.store(false, Ordering::Release);
        let departure = self.admit(&mut slots, live.clone());
        Some((live, departure))
    }

    /// Keeps `model` unless the same or a newer version is cached; returns the one kept, and the
    /// series that left to make room, if one did.
    pub fn offer(&self, model: TrainedModel, state: LiveState) -> (Arc<Live>, Option<Departure>) {
        let mut slots = self.write();
        if let Some(cached) = slots.find(&model.series_id)
            && cached.model.version >= model.version
        {
            self.touch(&cached);
            // A leaving one is taken back.
            if slots.leaving.remove(&model.series_id).is_some() {
                cached.evicted.store(false, Ordering::Release);
                let departure = self.admit(&mut slots, cached.clone());
                return (cached, departure);
            }
            return (cached, None);
        }
        let seen = state.seen;
        let live = Arc::new(Live {
            model,
            state: Mutex::new(state),
            last_used: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            checkpointed_seen: AtomicU64::new(seen),
            checkpointed_ms: AtomicU64::new(0),
            saved_seen: AtomicU64::new(seen),
        });
        self.touch(&live);
        slots.leaving.remove(&live.model.series_id);
        let departure = match slots.index.get(&live.model.series_id) {
            // A newer version replaces the older one in its place.
            Some(&at) => {
                slots.entries[at] = live.clone();
                None
            }
            None => self.admit(&mut slots, live.clone()),
        };
        (live, departure)
    }

    /// Replaces the cached model of a newer version's series, if the series is cached (a
    /// predictor keeps only the series it serves); a new version starts from a fresh state.
    pub fn refresh(&self, model: TrainedModel, state: LiveState) -> Option<Departure> {
        let cached = {
            let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
            slots.find(&model.series_id)
        };
        if cached.is_some_and(|c| c.model.version < model.version) {
            return self.offer(model, state).1;
        }
        None
    }

    /// Forgets a departed series once its checkpoint is written (unless it was taken back, or
    /// evicted again since).
    pub fn departed(&self, departure: &Departure) {
        let mut slots = self.write();
        let series = &departure.live.model.series_id;
        if slots
            .leaving
            .get(series)
            .is_some_and(|(_, generation)| *generation == departure.generation)
        {
            slots.leaving.remove(series);
        }
    }

    /// Every cached model, leaving ones included.
    pub fn all(&self) -> Vec<Arc<Live>> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let leaving = slots.leaving.values().map(|(live, _)| live.clone());
        slots.entries.iter().cloned().chain(leaving).collect()
    }

    /// Lets every cached series that `keep` refuses go, as an eviction does: the series a
    /// predictor no longer owns after a rebalance (their new owner loads what they save).
    pub fn release(&self, keep: impl Fn(&SeriesId) -> bool) -> Vec<Departure> {
        let mut slots = self.write();
        let mut departures = Vec::new();
        let mut at = 0;
        while at < slots.entries.len() {
            if keep(&slots.entries[at].model.series_id) {
                at += 1;
            } else {
                departures.extend(slots.remove_at(at));
            }
        }
        ::metrics::gauge!("anomaly_model_cache_series").set(slots.entries.len() as f64);
        departures
    }

    pub fn clear(&self) {
        let mut slots = self.write();
        slots.index.clear();
        slots.entries.clear();
        slots.leaving.clear();
        ::metrics::gauge!("anomaly_model_cache_series").set(0.0);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots.entries.len()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Slots> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self, live: &Live) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        live.last_used.store(now, Ordering::Relaxed);
    }

    /// Adds `live` (not cached), evicting one series first when the cache is full.
    fn admit(&self, slots: &mut Slots, live: Arc<Live>) -> Option<Departure> {
        let departure = if slots.entries.len() >= self.capacity {
            slots.evict()
        } else {
            None
        };
        slots
            .index
            .insert(live.model.series_id.clone(), slots.entries.len());
        slots.entries.push(live);
        ::metrics::gauge!("anomaly_model_cache_series").set(slots.entries.len() as f64);
        departure
    }
}

impl Slots {
    fn find(&self, series: &SeriesId) -> Option<Arc<Live>> {
        match self.index.get(series) {
            Some(&at) => Some(self.entries[at].clone()),
            None => self.leaving.get(series).map(|(live, _)| live.clone()),
        }
    }

    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Removes the least recently used of a few sampled entries; an online one departs.
    fn evict(&mut self) -> Option<Departure> {
        let len = self.entries.len();
        if len == 0 {
            return None;
        }
        // A cache no larger than the sample is searched whole: exactly the least recently used.
        let candidates: Vec<usize> = if len <= EVICTION_SAMPLE {
            (0..len).collect()
        } else {
            (0..EVICTION_SAMPLE)
                .map(|_| (self.random() % len as u64) as usize)
                .collect()
        };
        let last_used = |at: &usize| self.entries[*at].last_used.load(Ordering::Relaxed);
        let oldest = candidates.into_iter().min_by_key(last_used)?;
        ::metrics::counter!("anomaly_model_cache_evictions_total").increment(1);
        self.remove_at(oldest)
    }

    /// Removes the entry at `at`; an online one departs (stays reachable as leaving until its
    /// state is saved).
    fn remove_at(&mut self, at: usize) -> Option<Departure> {
        let victim = self.entries.swap_remove(at);
        self.index.remove(&victim.model.series_id);
        if let Some(moved) = self.entries.get(at) {
            self.index.insert(moved.model.series_id.clone(), at);
        }
        if !victim.model.detector.is_online() {
            return None;
        }
        victim.evicted.store(true, Ordering::Release);
        self.generation += 1;
        self.leaving.insert(
            victim.model.series_id.clone(),
            (victim.clone(), self.generation),
        );
        Some(Departure {
            live: victim,
            generation: self.generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{DetectorSpec, ModelSpec, testing};
    use crate::domain::{TrainingSet, Version};

    /// A model of `series`, learning online (`ewma`) or not (`zscore`).
    fn model(series: &str, version: Version, kind: &str) -> (TrainedModel, LiveState) {
        let training = TrainingSet::parse(testing::points(&testing::baseline(60, 1))).unwrap();
        let detector = DetectorSpec::named(kind).unwrap();
        let model = TrainedModel {
            series_id: SeriesId::parse(series).unwrap(),
            version,
            detector: detector.fit(&training).unwrap(),
            alerts: ModelSpec::default().alerts,
            points_used: 60,
            created_at_ms: 0,
        };
        let state = LiveState::fresh(&model);
        (model, state)
    }

    #[test]
    fn a_hot_series_is_checkpointed_every_so_many_points_but_not_more_often_than_the_interval() {
        let cache = ModelCache::new(4);
        let (model_of, state) = model("hot", Version::FIRST, "ewma");
        let (live, _) = cache.offer(model_of, state);
        let every_ten = |min_interval| super::super::Checkpoints {
            every: 10,
            min_interval,
        };
        let eager = every_ten(std::time::Duration::ZERO);
        let due: Vec<u64> = (1..=30)
            .filter(|&n| live.checkpoint_due(n, &eager))
            .collect();
        assert_eq!(due, [10, 20, 30]);
        let (model_of, state) = model("hot2", Version::FIRST, "ewma");
        let (live, _) = cache.offer(model_of, state);
        let spaced = every_ten(std::time::Duration::from_secs(3600));
        let due: Vec<u64> = (1..=30)
            .filter(|&n| live.checkpoint_due(n, &spaced))
            .collect();
        assert_eq!(
            due,
            [10],
            "the first is taken, the next wait out the interval"
        );
    }

    fn id(series: &str) -> SeriesId {
        SeriesId::parse(series).unwrap()
    }

    fn offer(cache: &ModelCache, series: &str, kind: &str) -> Option<Departure> {
        let (model, state) = model(series, Version::FIRST, kind);
        cache.offer(model, state).1
    }

    #[test]
    fn the_least_recently_used_series_leaves_a_full_cache() {
        let cache = ModelCache::new(3);
        for series in ["a", "b", "c"] {
            assert!(offer(&cache, series, "zscore").is_none());
        }
        // "a" is used again: "b" is now the least recently used of the three.
        assert!(cache.get(&id("a")).is_some());
        // Not learning online, "b" leaves with nothing to save.
        assert!(offer(&cache, "d", "zscore").is_none());
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&id("b")).is_none());
        for kept in ["a", "c", "d"] {
            assert!(cache.get(&id(kept)).is_some(), "{kept} stays");
        }
    }

    #[test]
    fn a_leaving_online_series_stays_reachable_until_its_state_is_saved() {
        let cache = ModelCache::new(1);
        assert!(offer(&cache, "a", "ewma").is_none());
        let departure = offer(&cache, "b", "ewma").expect("a leaves with a state to save");
        assert_eq!(departure.live.model.series_id, id("a"));
        assert!(departure.live.evicted());
        assert_eq!(cache.all().len(), 2, "a is leaving, not gone");

        // Used again before its checkpoint landed: it is taken back, and b leaves in its place.
        let (back, made_room) = cache.get(&id("a")).expect("a is taken back");
        assert!(Arc::ptr_eq(&back, &departure.live) && !back.evicted());
        let b_leaving = made_room.expect("b leaves to make room");
        // The first departure's checkpoint landing now does not forget the taken-back series.
        cache.departed(&departure);
        assert!(cache.get(&id("a")).is_some());
        cache.departed(&b_leaving);
        assert!(cache.get(&id("b")).is_none(), "b is forgotten once saved");
        assert_eq!(cache.all().len(), 1);
    }

    #[test]
    fn released_series_leave_and_online_ones_stay_reachable_until_saved() {
        let cache = ModelCache::new(10);
        for n in 0..6 {
            let kind = if n % 2 == 0 { "zscore" } else { "ewma" };
            assert!(offer(&cache, &format!("s{n}"), kind).is_none());
        }
        let gone = ["s0", "s1", "s2"];
        let departures = cache.release(|s| !gone.contains(&s.as_str()));
        assert_eq!(cache.len(), 3);
        for kept in ["s3", "s4", "s5"] {
            assert!(cache.get(&id(kept)).is_some(), "{kept}");
        }
        let departed: Vec<&str> = departures
            .iter()
            .map(|d| d.live.model.series_id.as_str())
            .collect();
        assert_eq!(departed, ["s1"], "the online one departs");
        assert!(cache.get(&id("s1")).is_some(), "reachable until saved");
        let departures = cache.release(|s| s.as_str() != "s1");
        for departure in &departures {
            cache.departed(departure);
        }
        for left in gone {
            assert!(cache.get(&id(left)).is_none(), "{left}");
        }
    }

    #[test]
    fn announcements_replace_cached_series_only() {
        let cache = ModelCache::new(10);
        let (v2, state) = model("a", Version::FIRST.next(), "zscore");
        assert!(cache.refresh(v2.clone(), state.clone()).is_none());
        assert!(
            cache.get(&id("a")).is_none(),
            "an uncached series is not loaded"
        );
        assert!(offer(&cache, "a", "zscore").is_none());
        cache.refresh(v2, state);
        let (live, _) = cache.get(&id("a")).unwrap();
        assert_eq!(live.model.version, Version::FIRST.next());
        // An older offer (a slow database read) does not undo the newer version.
        assert!(offer(&cache, "a", "zscore").is_none());
        assert_eq!(
            cache.get(&id("a")).unwrap().0.model.version,
            Version::FIRST.next()
        );
    }
}
