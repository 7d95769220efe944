//! The engine of the `art` detector, on raw values only (no timestamps, no I/O): a fuzzy ART
//! network over wavelet features of a quantised, down-sampled series, with self-adjusting
//! vigilance (after Hampton's ARTime, 2022, built from the description in the project's
//! detection notes). It learns online from every point; its state is bounded (the categories are
//! capped, the least used evicted) and plain data, so a checkpoint is its JSON.
//!
//! The flow per point: raw values are gathered `step_len` at a time; each full step is reduced to
//! one level (0..=1, 80 levels over a range fixed at fit time), the last 8 levels become 16
//! features (Haar wavelet coefficients and the levels themselves), and the network either
//! recognises them or records a new category. A step it finds novel, after a quiet spell or
//! clearly more novel than the last one it reported, is scored in (0, 1]; every other point
//! scores 0.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Levels in one feature window.
const WINDOW: usize = 8;
/// Features per step: 8 wavelet coefficients and 8 levels.
const FEATURES: usize = 2 * WINDOW;
/// Complement-coded input: the features and one minus each.
const INPUT: usize = 2 * FEATURES;
/// Quantisation levels of the range.
const LEVELS: f64 = 80.0;
/// A level this close to the running median snaps onto it (absorbs noise around the usual level).
const SNAP: f64 = 0.075;
/// Vigilance of the throwaway network that sets the starting vigilance.
const START_VIGILANCE: f64 = 0.8;
/// Steps a report masks the next ones, and steps without novelty that clear the mask.
const MASK_STEPS: u64 = 12;
/// The probation is cut into about this many steps.
const STEPS_PER_PROBATION: usize = 104;
/// The quantisation range is the probation's range widened by this share of its width each side.
const RANGE_PADDING: f64 = 0.5;

/// One learnt category: complement-coded weights (f32 keeps a category at 128 bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub weights: [f32; INPUT],
    /// How many inputs it has learnt (eviction keeps the most used).
    pub uses: u32,
}

/// The outcome of presenting one input to the network.
#[derive(Debug, Clone, Copy)]
struct Presented {
    /// The best match (A).
    best: f64,
    /// The best category's match on the newest level (Ae).
    best_newest: f64,
    novel: bool,
}

/// A fuzzy ART network with fast learning and two vigilances: categories matching at least the
/// upper one learn the input; when none does the input becomes a category, novel when even the
/// best match was under the lower one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzyArt {
    pub categories: Vec<Category>,
    pub max_categories: usize,
}

impl FuzzyArt {
    fn new(max_categories: usize) -> Self {
        Self {
            categories: Vec::new(),
            max_categories: max_categories.max(1),
        }
    }

    fn present(&mut self, input: &[f32; INPUT], upper: f64, lower: f64) -> Presented {
        let (mut best, mut best_newest, mut learnt) = (0.0f64, 0.0f64, false);
        for category in &mut self.categories {
            let w = &mut category.weights;
            // Eight independent lanes: the compiler turns these sums into vector instructions.
            let (mut common_lanes, mut total_lanes) = ([0.0f32; 8], [0.0f32; 8]);
            for (inputs, weights) in input.chunks_exact(8).zip(w.chunks_exact(8)) {
                for lane in 0..8 {
                    common_lanes[lane] += smaller(inputs[lane], weights[lane]);
                    total_lanes[lane] += weights[lane];
                }
            }
            let common: f32 = common_lanes.iter().sum();
            let total: f32 = total_lanes.iter().sum();
            let newest_w = w[FEATURES - 1] + w[INPUT - 1];
            let newest_common = smaller(input[FEATURES - 1], w[FEATURES - 1])
                + smaller(input[INPUT - 1], w[INPUT - 1]);
            let fs = ratio(common, total);
            let es = ratio(newest_common, newest_w);
            let matched = fs * fs * fs * es * es;
            if matched > best {
                best = matched;
                best_newest = es;
            }
            if matched >= upper {
                for (weight, &x) in w.iter_mut().zip(input) {
                    *weight = smaller(*weight, x);
                }
                category.uses = category.uses.saturating_add(1);
                learnt = true;
            }
        }
        if !learnt {
            self.add(input);
        }
        Presented {
            best,
            best_newest,
            novel: !learnt && best < lower,
        }
    }

    fn add(&mut self, input: &[f32; INPUT]) {
        let category = Category {
            weights: *input,
            uses: 1,
        };
        let count = self.categories.len();
        if count < self.max_categories {
            if count == self.categories.capacity() {
                // Grow by doubling, but never past the cap: the cap is the memory bound.
                let target = (2 * count).clamp(4, self.max_categories);
                self.categories.reserve_exact(target - count);
            }
            self.categories.push(category);
            return;
        }
        // Evict the least used (the oldest of those: the first found).
        if let Some(slot) = self
            .categories
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.uses)
            .map(|(i, _)| i)
        {
            self.categories[slot] = category;
        }
    }
}

/// The smaller of two finite numbers, written so that it compiles to one vector instruction
/// (`f32::min`'s NaN handling does not).
#[inline(always)]
fn smaller(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

fn ratio(part: f32, whole: f32) -> f64 {
    if whole > 1e-9 {
        f64::from(part / whole)
    } else {
        1.0
    }
}

/// Turns steps of raw values into feature vectors: level, snap to the running median, Haar
/// wavelet of the last 8 levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantiser {
    pub low: f64,
    pub high: f64,
    pub smoothed: Option<f64>,
    /// Counts of each level seen (81 bins), for the running median.
    pub histogram: Vec<u32>,
    pub median_bin: Option<usize>,
    pub total: u64,
    /// The last 8 levels, oldest first (zeros at first).
    pub recent: [f64; WINDOW],
    pub steps: u64,
}

impl Quantiser {
    fn new(low: f64, high: f64) -> Self {
        Self {
            low,
            high,
            smoothed: None,
            histogram: vec![0; LEVELS as usize + 1],
            median_bin: None,
            total: 0,
            recent: [0.0; WINDOW],
            steps: 0,
        }
    }

    /// The features of one step given the mean, max and min of its raw values.
    fn step(&mut self, mean: f64, max: f64, min: f64) -> [f64; FEATURES] {
        let smoothed = self.smoothed.map_or(mean, |m| (m + mean) / 2.0);
        self.smoothed = Some(smoothed);
        let mut r = if (min - smoothed).abs() > (max - smoothed).abs() {
            min
        } else {
            max
        };
        if (r - mean).abs() < 0.1 * mean.abs() {
            r = mean;
        }
        let scaled = ((r - self.low) / (self.high - self.low)).clamp(0.0, 1.0);
        let bin = (LEVELS * scaled).round_ties_even() as usize;
        let median = self.update_median(bin);
        let mut level = bin as f64 / LEVELS;
        let median_level = median as f64 / LEVELS;
        if (level - median_level).abs() < SNAP {
            level = median_level;
        }
        self.recent.rotate_left(1);
        self.recent[WINDOW - 1] = level;
        self.steps += 1;
        let mut features = [0.0; FEATURES];
        if self.steps >= WINDOW as u64 {
            let mut coefficients = self.recent;
            min_max_scale(&mut coefficients);
            haar(&mut coefficients);
            min_max_scale(&mut coefficients);
            features[..WINDOW].copy_from_slice(&coefficients);
        }
        features[WINDOW..].copy_from_slice(&self.recent);
        features
    }

    /// Adds a level to the histogram and moves the median bin at most one non-empty bin.
    fn update_median(&mut self, bin: usize) -> usize {
        self.histogram[bin] += 1;
        self.total += 1;
        let Some(median) = self.median_bin else {
            self.median_bin = Some(bin);
            return bin;
        };
        let below: u64 = self.histogram[..median].iter().map(|&c| u64::from(c)).sum();
        let above: u64 = self.histogram[median + 1..]
            .iter()
            .map(|&c| u64::from(c))
            .sum();
        let half = self.total / 2;
        let moved = if above > half {
            (median + 1..self.histogram.len()).find(|&b| self.histogram[b] > 0)
        } else if below > half {
            (0..median).rev().find(|&b| self.histogram[b] > 0)
        } else {
            None
        };
        let median = moved.unwrap_or(median);
        self.median_bin = Some(median);
        median
    }
}

/// The smallest and largest of `values` (infinities when there are none).
pub(super) fn value_range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

fn min_max_scale(values: &mut [f64]) {
    let (min, max) = value_range(values);
    let width = max - min;
    for v in values.iter_mut() {
        *v = if width > 0.0 { (*v - min) / width } else { 0.0 };
    }
}

/// In-place 3-level orthonormal Haar transform of 8 values: [approximation, detail 3, details 2,
/// details 1].
fn haar(values: &mut [f64; WINDOW]) {
    let mut length = WINDOW;
    let mut scratch = [0.0; WINDOW];
    while length > 1 {
        let half = length / 2;
        for i in 0..half {
            let (first, second) = (values[2 * i], values[2 * i + 1]);
            scratch[i] = (first + second) / std::f64::consts::SQRT_2;
            scratch[half + i] = (second - first) / std::f64::consts::SQRT_2;
        }
        values[..length].copy_from_slice(&scratch[..length]);
        length = half;
    }
}

fn complement_code(features: &[f64; FEATURES]) -> [f32; INPUT] {
    let mut input = [0.0f32; INPUT];
    for (j, &f) in features.iter().enumerate() {
        let f = f.clamp(0.0, 1.0) as f32;
        input[j] = f;
        input[FEATURES + j] = 1.0 - f;
    }
    input
}

/// The reporting side: vigilance that follows the match quality, a mask after novelty, and the
/// score of a reported step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reporter {
    /// Steps of the probation: nothing is reported up to here.
    pub probation_steps: u64,
    pub step: u64,
    pub upper: f64,
    pub lower: f64,
    pub masked: bool,
    pub quiet: u64,
    /// The step and the match of the last report.
    pub last_report: Option<(u64, f64)>,
    pub last_update: u64,
    pub match_sum: f64,
    pub match_count: u64,
    /// The last T/2+1 matches and the last T+1 gaps (upper vigilance − match).
    pub recent_matches: VecDeque<f64>,
    pub recent_gaps: VecDeque<f64>,
    pub report_match_sum: f64,
    pub report_count: u64,
}

impl Reporter {
    fn new(probation_steps: u64, vigilance: f64) -> Self {
        Self {
            probation_steps,
            step: 0,
            upper: vigilance,
            lower: vigilance,
            masked: false,
            quiet: 0,
            last_report: None,
            last_update: 0,
            match_sum: 0.0,
            match_count: 0,
            recent_matches: VecDeque::with_capacity(probation_steps as usize / 2 + 1),
            recent_gaps: VecDeque::with_capacity(probation_steps as usize + 1),
            report_match_sum: 0.0,
            report_count: 0,
        }
    }

    /// Trains `art` on `input` and returns the step's score (0 unless it is reported).
    fn step(&mut self, art: &mut FuzzyArt, input: &[f32; INPUT]) -> f64 {
        self.step += 1;
        let i = self.step;
        let seen = art.present(input, self.upper, self.lower);
        let a = seen.best;
        self.quiet = if seen.novel { 0 } else { self.quiet + 1 };
        self.match_sum += a;
        self.match_count += 1;
        push_bounded(
            &mut self.recent_matches,
            a,
            self.probation_steps as usize / 2 + 1,
        );
        push_bounded(
            &mut self.recent_gaps,
            self.upper - a,
            self.probation_steps as usize + 1,
        );

        let mut score = 0.0;
        if i > self.probation_steps && seen.novel {
            let since = self.last_report.map(|(at, _)| i - at);
            let quiet_enough = !self.masked && since.is_none_or(|s| s > MASK_STEPS);
            let more_novel = self.last_report.is_some_and(|(at, last_a)| {
                let factor = if i - at <= MASK_STEPS { 0.9 } else { 0.7 };
                a < last_a * factor
            });
            if quiet_enough || more_novel {
                let capped = a.min(0.999);
                let raw = 0.35 * (self.upper - capped) / (1.0 - capped)
                    + 0.65 * (self.lower - capped) / (1.0 - capped)
                    + 1.5 * (1.0 - seen.best_newest);
                score = raw.clamp(0.0, 1.0);
                self.last_report = Some((i, a));
                self.report_match_sum += a;
                self.report_count += 1;
            }
        }
        if seen.novel {
            self.masked = true;
        } else if self.quiet >= MASK_STEPS {
            self.masked = false;
        }
        let after_report = self.last_report.is_some_and(|(at, _)| i == at + MASK_STEPS);
        if after_report || i - self.last_update >= self.probation_steps / 2 {
            self.update_vigilance();
            self.last_update = i;
            self.masked = true;
        }
        score
    }

    fn update_vigilance(&mut self) {
        self.upper = (self.match_sum / self.match_count.max(1) as f64).min(0.97);
        let recent_min = self
            .recent_matches
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        if self.lower <= recent_min {
            self.lower += 0.19 * (recent_min - self.lower);
        } else {
            let (sum, n) = self
                .recent_gaps
                .iter()
                .filter(|&&g| g > 0.05)
                .fold((0.0, 0usize), |(s, n), &g| (s + g.min(0.37), n + 1));
            let d = if n > 0 {
                (sum / n as f64).max(0.01)
            } else {
                0.01
            };
            self.lower -= d / 2.0;
        }
        if self.report_count > 0 {
            self.lower = self
                .lower
                .max(self.report_match_sum / self.report_count as f64);
        }
        self.lower = self.lower.min(self.upper);
    }
}

fn push_bounded(queue: &mut VecDeque<f64>, value: f64, capacity: usize) {
    if queue.len() >= capacity.max(1) {
        queue.pop_front();
    }
    queue.push_back(value);
}

/// The whole engine: raw values in, a sparse score in [0, 1] out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Engine {
    /// Raw points per step.
    pub step_len: usize,
    /// Sum, min and max of the raw values of the step under way (JSON-safe: no infinities).
    pub pending_sum: f64,
    pub pending_min: f64,
    pub pending_max: f64,
    pub pending: usize,
    pub quantiser: Quantiser,
    pub art: FuzzyArt,
    pub reporter: Reporter,
}

impl Engine {
    /// Fits on the probation `values` (at least 2): the quantisation range, the starting
    /// vigilance, and a network trained on the probation's steps. Nothing is reported for them.
    pub fn fit(values: &[f64], max_categories: usize) -> Self {
        let n = values.len() - values.len() % 2;
        let step_len = (n / STEPS_PER_PROBATION).max(1);
        let (min, max) = value_range(values);
        let mut width = max - min;
        if width <= 0.0 {
            width = min.abs().max(1.0);
        }
        let (mut low, mut high) = (min - RANGE_PADDING * width, max + RANGE_PADDING * width);
        if !(high - low).is_finite() {
            (low, high) = (min, max);
        }
        let quantiser = Quantiser::new(low, high);
        let mut engine = Self {
            step_len,
            pending_sum: 0.0,
            pending_min: 0.0,
            pending_max: 0.0,
            pending: 0,
            quantiser,
            art: FuzzyArt::new(max_categories),
            reporter: Reporter::new(0, START_VIGILANCE),
        };
        let mut features = Vec::with_capacity(n / step_len + 1);
        for &v in values {
            if let Some(f) = engine.gather(v) {
                features.push(f);
            }
        }
        let vigilance = starting_vigilance(&features);
        engine.reporter = Reporter::new(features.len() as u64, vigilance);
        for f in &features {
            engine.reporter.step(&mut engine.art, &complement_code(f));
        }
        engine
    }

    /// Adds a raw value; the features of the step it completes, if it does.
    fn gather(&mut self, value: f64) -> Option<[f64; FEATURES]> {
        let value = value.clamp(self.quantiser.low, self.quantiser.high);
        if self.pending == 0 {
            (self.pending_sum, self.pending_min, self.pending_max) = (0.0, value, value);
        }
        self.pending_sum += value;
        self.pending_min = self.pending_min.min(value);
        self.pending_max = self.pending_max.max(value);
        self.pending += 1;
        if self.pending < self.step_len {
            return None;
        }
        let mean = self.pending_sum / self.pending as f64;
        let features = self
            .quantiser
            .step(mean, self.pending_max, self.pending_min);
        self.pending = 0;
        Some(features)
    }

    /// Scores and learns one raw value: 0 unless it completes a step that is reported.
    pub fn observe(&mut self, value: f64) -> f64 {
        match self.gather(value) {
            Some(features) => self
                .reporter
                .step(&mut self.art, &complement_code(&features)),
            None => 0.0,
        }
    }

    /// Bytes of memory the engine holds (itself and what it points to).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.art.categories.capacity() * std::mem::size_of::<Category>()
            + self.quantiser.histogram.capacity() * std::mem::size_of::<u32>()
            + (self.reporter.recent_matches.capacity() + self.reporter.recent_gaps.capacity())
                * std::mem::size_of::<f64>()
    }

    /// The smoothed level of the recent steps, in the series' units.
    pub fn level(&self) -> Option<f64> {
        self.quantiser.smoothed
    }
}

/// The starting vigilance: the mean best match over the second half of the probation's full
/// feature vectors, presented least typical first to a throwaway network.
fn starting_vigilance(features: &[[f64; FEATURES]]) -> f64 {
    let full = features.get(WINDOW - 1..).unwrap_or_default();
    if full.len() < 2 {
        return START_VIGILANCE;
    }
    let norms: Vec<f64> = full
        .iter()
        .map(|f| f.iter().map(|x| x * x).sum::<f64>().sqrt())
        .collect();
    let mut typicality = vec![0.0; full.len()];
    for i in 0..full.len() {
        for j in i + 1..full.len() {
            let dot: f64 = full[i].iter().zip(&full[j]).map(|(a, b)| a * b).sum();
            let denominator = norms[i] * norms[j];
            let cosine = if denominator > 0.0 {
                dot / denominator
            } else {
                0.0
            };
            typicality[i] += cosine;
            typicality[j] += cosine;
        }
    }
    let mut order: Vec<usize> = (0..full.len()).collect();
    order.sort_by(|&a, &b| typicality[a].total_cmp(&typicality[b]));
    let mut art = FuzzyArt::new(usize::MAX);
    let matches: Vec<f64> = order
        .iter()
        .map(|&i| {
            art.present(&complement_code(&full[i]), START_VIGILANCE, START_VIGILANCE)
                .best
        })
        .collect();
    let second_half = &matches[matches.len() / 2..];
    second_half.iter().sum::<f64>() / second_half.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_haar_transform_is_orthonormal() {
        let mut v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let energy: f64 = v.iter().map(|x| x * x).sum();
        haar(&mut v);
        let after: f64 = v.iter().map(|x| x * x).sum();
        assert!((energy - after).abs() < 1e-9);
        assert!((v[0] - 36.0 / 8f64.sqrt()).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn the_median_bin_walks_towards_the_majority() {
        let mut q = Quantiser::new(0.0, 1.0);
        assert_eq!(q.update_median(10), 10);
        for _ in 0..5 {
            q.update_median(40);
        }
        assert_eq!(q.median_bin, Some(40));
    }

    #[test]
    fn a_repeated_pattern_stops_being_novel() {
        let values: Vec<f64> = (0..2000).map(|i| ((i % 50) as f64 / 7.0).sin()).collect();
        let mut engine = Engine::fit(&values[..750], 256);
        let scores: Vec<f64> = values[750..].iter().map(|&v| engine.observe(v)).collect();
        let reported = scores.iter().filter(|&&s| s > 0.0).count();
        assert!(reported <= 2, "{reported} reports on a pure rhythm");
    }
}
