//! The robust detector: the median and MAD of a sliding window of recent values. Outliers barely
//! move a median, so a spike does not mask the next one, and the window follows level changes
//! once they have lasted half a window. A scale floor keeps flat and step-valued series sane.
//! The window keeps a sorted copy, so a point costs a binary search and one move, not a scan.

use serde::{Deserialize, Serialize};

use super::stats::scale_floor;
use super::window::MedianWindow;
use super::{Detector, Direction, Verdict, check_threshold};
use crate::domain::{InvalidInput, Point, TrainingSet};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobustOptions {
    /// Robust standard deviations (1.4826 · MAD) from the median before a value is anomalous.
    pub threshold: f64,
    /// How many recent values the median and MAD are taken over.
    pub window: usize,
    pub direction: Direction,
}

impl Default for RobustOptions {
    fn default() -> Self {
        Self {
            threshold: 5.0,
            window: 1000,
            direction: Direction::Both,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Robust {
    pub options: RobustOptions,
    pub recent: MedianWindow,
    pub floor: f64,
}

impl Detector for Robust {
    type Options = RobustOptions;

    fn fit(options: &RobustOptions, training: &TrainingSet) -> Result<Self, InvalidInput> {
        check_threshold(options.threshold)?;
        if !(3..=100_000).contains(&options.window) {
            return Err(InvalidInput("window must be between 3 and 100000".into()));
        }
        let skip = training.len().saturating_sub(options.window);
        Ok(Self {
            options: *options,
            recent: training.values().skip(skip).collect(),
            floor: scale_floor(training.values()),
        })
    }

    fn point_cost(options: &RobustOptions) -> u64 {
        options.window as u64
    }

    fn score(&self, point: Point) -> Verdict {
        Robust::score(self, point.value)
    }

    fn learn(&mut self, point: Point) {
        Robust::learn(self, point.value)
    }

    fn heap_bytes(&self) -> usize {
        self.recent.capacity() * std::mem::size_of::<f64>()
    }
}

/// Scoring and learning look at the value only: the `Detector` methods pass it on.
impl Robust {
    pub fn score(&self, value: f64) -> Verdict {
        let (median, scale) = self.recent.median_and_scale();
        let scale = scale.max(self.floor);
        Verdict::against_band(
            value,
            median,
            self.options.threshold * scale,
            self.options.direction,
        )
    }

    pub fn learn(&mut self, value: f64) {
        self.recent.push(value, self.options.window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::DetectorSpec;
    use crate::detector::testing::{self, training};

    #[test]
    fn passes_the_hand_made_series() {
        let spec = DetectorSpec::Robust(RobustOptions::default());
        testing::flags_a_spike_and_a_dip(&spec);
        testing::flags_a_level_shift(&spec);
        testing::stays_calm_on_a_step_valued_series(&spec);
    }

    #[test]
    fn a_spike_does_not_mask_the_next_one() {
        let options = RobustOptions {
            window: 50,
            ..Default::default()
        };
        let mut model = Robust::fit(&options, &training(&testing::baseline(50, 7))).unwrap();
        assert!(model.observe_value(40.0).anomaly);
        assert!(
            model.observe_value(40.0).anomaly,
            "one outlier barely moves the median"
        );
    }

    #[test]
    fn adopts_a_new_level_after_half_a_window() {
        let options = RobustOptions {
            window: 20,
            ..Default::default()
        };
        let mut model = Robust::fit(&options, &training(&testing::baseline(20, 8))).unwrap();
        for v in testing::baseline(11, 9) {
            model.learn(v + 15.0);
        }
        assert!(!model.score(25.0).anomaly);
    }

    impl Robust {
        fn observe_value(&mut self, value: f64) -> Verdict {
            let v = self.score(value);
            self.learn(value);
            v
        }
    }
}
