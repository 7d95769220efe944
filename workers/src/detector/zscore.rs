//! The static z-score detector: the seed's rule (`value > mean + 3·std`, population std of the
//! training values), two-sided by default. It never learns after `fit`.

use serde::{Deserialize, Serialize};

use super::{Detector, Direction, Verdict, check_threshold};
use crate::domain::{InvalidInput, Point, TrainingSet};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZScoreOptions {
    /// How many standard deviations from the mean a value may stray before it is anomalous.
    pub threshold: f64,
    pub direction: Direction,
}

impl Default for ZScoreOptions {
    fn default() -> Self {
        Self {
            threshold: 3.0,
            direction: Direction::Both,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZScoreParams {
    pub mean: f64,
    pub std: f64,
    pub threshold: f64,
    pub direction: Direction,
}

impl Detector for ZScoreParams {
    type Options = ZScoreOptions;
    const IS_ONLINE: bool = false;

    fn fit(options: &ZScoreOptions, training: &TrainingSet) -> Result<Self, InvalidInput> {
        check_threshold(options.threshold)?;
        let n = training.len() as f64;
        let mean = training.values().sum::<f64>() / n;
        let variance = training.values().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let std = variance.sqrt();
        // A training set is never constant, but values can be so close that the spread rounds
        // away (or overflow to infinity); neither gives a usable band.
        if !(std.is_finite() && std > 0.0 && mean.is_finite()) {
            return Err(InvalidInput(
                "Values have no usable spread: a model needs distinct values".into(),
            ));
        }
        Ok(Self {
            mean,
            std,
            threshold: options.threshold,
            direction: options.direction,
        })
    }

    fn score(&self, point: Point) -> Verdict {
        ZScoreParams::score(self, point.value)
    }
}

/// Scoring looks at the value only: the `Detector` method passes it on.
impl ZScoreParams {
    pub fn score(&self, value: f64) -> Verdict {
        Verdict::against_band(value, self.mean, self.threshold * self.std, self.direction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::testing::{self, training};
    use crate::detector::{DetectorParams, DetectorSpec};

    fn fitted(values: &[f64], direction: Direction) -> ZScoreParams {
        let options = ZScoreOptions {
            direction,
            ..Default::default()
        };
        ZScoreParams::fit(&options, &training(values)).unwrap()
    }

    /// The seed README's example: trained on 10.0, 10.5, 11.0.
    #[test]
    fn gives_the_seed_verdicts_on_its_documented_example() {
        let model = fitted(&[10.0, 10.5, 11.0], Direction::Both);
        assert!((model.mean - 10.5).abs() < 1e-12);
        assert!(
            (model.std - (1.0f64 / 6.0).sqrt()).abs() < 1e-12,
            "population std"
        );
        assert!(!model.score(10.5).anomaly);
        let spike = model.score(22.5);
        assert!(spike.anomaly && spike.score > 1.0);
    }

    #[test]
    fn one_sided_detectors_ignore_the_other_side() {
        let above = fitted(&[10.0, 10.5, 11.0], Direction::Above);
        assert!(above.score(22.5).anomaly);
        let dip = above.score(0.0);
        assert!(!dip.anomaly && dip.score == 0.0 && dip.lower.is_none());

        let below = fitted(&[10.0, 10.5, 11.0], Direction::Below);
        assert!(below.score(0.0).anomaly);
        assert!(!below.score(22.5).anomaly);
        assert!(below.score(1.0).upper.is_none());
    }

    #[test]
    fn refuses_a_threshold_that_is_not_positive() {
        for threshold in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let options = ZScoreOptions {
                threshold,
                ..Default::default()
            };
            assert!(ZScoreParams::fit(&options, &training(&[1.0, 2.0, 3.0])).is_err());
        }
    }

    #[test]
    fn refuses_values_whose_spread_overflows() {
        let options = ZScoreOptions::default();
        assert!(ZScoreParams::fit(&options, &training(&[f64::MAX, -f64::MAX, 0.0])).is_err());
    }

    #[test]
    fn passes_the_hand_made_series() {
        let spec = DetectorSpec::Zscore(ZScoreOptions::default());
        testing::flags_a_spike_and_a_dip(&spec);
        testing::flags_a_level_shift(&spec);
        // The seed's rule has no scale floor: on a flat series it flags any change, but its
        // scores stay finite.
        let mut flat = vec![5.0; 299];
        flat.push(5.001);
        let mut flat_model = spec.fit(&training(&flat)).unwrap();
        testing::observe_all(&mut flat_model, &[5.0, 5.001, 50.0], 300);
        let model = spec.fit(&training(&[1.0, 2.0, 3.0])).unwrap();
        assert!(!model.is_online());
        assert!(matches!(model, DetectorParams::Zscore(_)));
    }
}
