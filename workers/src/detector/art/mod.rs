//! The `art` detector (the default): a fuzzy ART network over wavelet features (`engine`), which
//! reports a step whose shape it has never seen, combined with the new-extreme rule (a value that
//! leaves everything seen so far by more than `extreme_margin` of its width). Its raw score is in
//! [0, 1] and sparse (0 on all but a few points); `score` is that divided by `threshold`, so one
//! threshold serves every series and `score` > 1 means anomalous, as for every detector.
//!
//! The band it answers is the range seen so far (which grows by at most its own width per
//! point) widened by the margin: a value outside it is always anomalous. A value inside it is
//! anomalous only when its step is a novel pattern.
//!
//! Fewer than `MIN_PROBATION` training points cannot set the network up: until the series has
//! that many, only the new-extreme rule scores, and the network is fitted on them once they
//! are in. The state is bounded (`max_categories`) whatever the series' length.

mod engine;

use serde::{Deserialize, Serialize};

use super::{Detector, Verdict};
use crate::domain::{InvalidInput, Point, TrainingSet};

pub use engine::Engine;

/// Fewest points the network is fitted on.
pub const MIN_PROBATION: usize = 64;
/// Most (latest) training points the network is fitted on: NAB's longest probation.
pub const MAX_PROBATION: usize = 750;
/// Most categories a series may be given (132 bytes each): keeps every series under 64 KB.
pub const MAX_CATEGORIES: usize = 448;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArtOptions {
    /// The raw score (0..=1) from which a point is anomalous.
    pub threshold: f64,
    /// How far past the range seen so far, as a share of its width, a value is a new extreme.
    pub extreme_margin: f64,
    /// The most categories the network keeps (the least used is evicted).
    pub max_categories: usize,
}

impl Default for ArtOptions {
    fn default() -> Self {
        Self {
            threshold: 0.32,
            extreme_margin: 0.02,
            max_categories: 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Art {
    pub options: ArtOptions,
    /// The lowest and highest values seen (training included).
    pub low: f64,
    pub high: f64,
    /// The training points that are the network's probation (until it is fitted, those gathered
    /// so far); what a quiet spell after an alert is measured against.
    pub probation: usize,
    /// Values gathered while there are too few to fit the network.
    pub warming: Vec<f64>,
    /// The expected value until the network has a level of its own: the training mean.
    pub mean: f64,
    pub engine: Option<Box<Engine>>,
}

impl Detector for Art {
    type Options = ArtOptions;
    const FLAGS_PATTERNS: bool = true;

    fn fit(options: &ArtOptions, training: &TrainingSet) -> Result<Self, InvalidInput> {
        if !(options.threshold.is_finite() && options.threshold > 0.0 && options.threshold <= 1.0) {
            return Err(InvalidInput("threshold must be in (0, 1]".into()));
        }
        if !(options.extreme_margin.is_finite() && options.extreme_margin >= 0.0) {
            return Err(InvalidInput(
                "extreme_margin must be a finite number of at least 0".into(),
            ));
        }
        if !(1..=MAX_CATEGORIES).contains(&options.max_categories) {
            return Err(InvalidInput(format!(
                "max_categories must be between 1 and {MAX_CATEGORIES}"
            )));
        }
        let values: Vec<f64> = training.values().collect();
        let (low, high) = engine::value_range(&values);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        if !(mean.is_finite() && (high - low).is_finite()) {
            return Err(InvalidInput("Values are too large to model".into()));
        }
        let probation = &values[values.len().saturating_sub(MAX_PROBATION)..];
        let mut art = Self {
            options: *options,
            low,
            high,
            probation: probation.len(),
            warming: Vec::new(),
            mean,
            engine: None,
        };
        if probation.len() >= MIN_PROBATION {
            art.engine = Some(Box::new(Engine::fit(probation, options.max_categories)));
        } else {
            art.warming = probation.to_vec();
        }
        Ok(art)
    }

    fn point_cost(options: &ArtOptions) -> u64 {
        options.max_categories as u64
    }

    /// Points to stay quiet after an alert unless the alert options say otherwise: a fifth of
    /// the probation (one alert per event).
    fn quiet_points(&self) -> u64 {
        (self.probation.max(MIN_PROBATION) / 5) as u64
    }

    /// Bytes of memory the detector holds beyond its own struct (warm-up values, the engine).
    fn heap_bytes(&self) -> usize {
        self.warming.capacity() * std::mem::size_of::<f64>()
            + self.engine.as_ref().map_or(0, |e| e.memory_bytes())
    }

    /// Scores `point` and learns from it.
    fn observe(&mut self, point: Point) -> Verdict {
        let value = point.value;
        let margin = self.options.extreme_margin * (self.high - self.low);
        let (lower, upper) = (self.low - margin, self.high + margin);
        let expected = self
            .engine
            .as_ref()
            .and_then(|e| e.level())
            .unwrap_or(self.mean);
        let pattern = match &mut self.engine {
            Some(engine) => engine.observe(value),
            None => {
                self.warming.push(value);
                self.probation = self.warming.len();
                if self.warming.len() >= MIN_PROBATION {
                    let warming = std::mem::take(&mut self.warming);
                    self.engine =
                        Some(Box::new(Engine::fit(&warming, self.options.max_categories)));
                }
                0.0
            }
        };
        let extreme = value < lower || value > upper;
        // The range follows a new extreme by at most its own width per point: a lasting move
        // is followed within a few points, one wild value cannot blind the rule.
        let width = self.high - self.low;
        let low = self.low.min(value.max(self.low - width));
        let high = self.high.max(value.min(self.high + width));
        if (high - low).is_finite() {
            (self.low, self.high) = (low, high);
        }
        let raw = if extreme { 1.0 } else { pattern };
        let score = raw / self.options.threshold;
        Verdict {
            anomaly: score > 1.0,
            score,
            expected,
            lower: Some(lower),
            upper: Some(upper),
        }
    }

    /// The verdict `observe` would give, without learning.
    fn score(&self, point: Point) -> Verdict {
        self.clone().observe(point)
    }
}

#[cfg(test)]
mod tests;
