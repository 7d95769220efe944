//! The seasonal detector: a baseline per phase of a period (found at fit time by
//! autocorrelation, or given), so a value normal at noon can be anomalous at midnight. Points are
//! assumed evenly spaced: the phase advances by one per point.

use serde::{Deserialize, Serialize};

use super::stats::{median_and_scale, scale_floor};
use super::{Detector, Direction, Verdict, check_threshold};
use crate::domain::{InvalidInput, Point, TrainingSet};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeasonalOptions {
    /// The period in points; found from the training data when absent.
    pub period: Option<usize>,
    /// Robust standard deviations of the residual before a value is anomalous.
    pub threshold: f64,
    /// How fast each phase's baseline follows new values.
    pub alpha: f64,
    pub direction: Direction,
}

impl Default for SeasonalOptions {
    fn default() -> Self {
        Self {
            period: None,
            threshold: 5.0,
            alpha: 0.1,
            direction: Direction::Both,
        }
    }
}

/// Weight of each new residual in the residual scale.
const SCALE_ALPHA: f64 = 0.01;
/// Mean absolute deviation to standard deviation, for normal residuals.
const MEAN_ABS_TO_STD: f64 = 1.2533;

/// How many half-widths of the band out a residual still moves the baseline in full.
const BASELINE_LEARN_LIMIT: f64 = 10.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seasonal {
    pub options: SeasonalOptions,
    pub period: usize,
    pub baselines: Vec<f64>,
    pub scale: f64,
    pub floor: f64,
    pub next_phase: usize,
}

/// The period of `values` by autocorrelation: after the series first decorrelates, the lag with
/// the highest autocorrelation, if that is at least 0.3.
pub fn detect_period(values: &[f64], max_lag: usize) -> Option<usize> {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let centered: Vec<f64> = values.iter().map(|v| v - mean).collect();
    let energy: f64 = centered.iter().map(|v| v * v).sum();
    if energy <= 0.0 {
        return None;
    }
    let acf = |lag: usize| {
        centered[..n - lag]
            .iter()
            .zip(&centered[lag..])
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / energy
    };
    let max_lag = max_lag.min(n / 2);
    let decorrelated = (1..=max_lag).find(|&lag| acf(lag) < 0.1)?;
    let (best, value) = (decorrelated..=max_lag)
        .map(|lag| (lag, acf(lag)))
        .fold((0, f64::NEG_INFINITY), |b, c| if c.1 > b.1 { c } else { b });
    (value >= 0.3 && best >= 2).then_some(best)
}

impl Detector for Seasonal {
    type Options = SeasonalOptions;

    fn fit(options: &SeasonalOptions, training: &TrainingSet) -> Result<Self, InvalidInput> {
        check_threshold(options.threshold)?;
        if !(options.alpha > 0.0 && options.alpha <= 1.0) {
            return Err(InvalidInput("alpha must be in (0, 1]".into()));
        }
        let values: Vec<f64> = training.values().collect();
        let n = values.len();
        let period = match options.period {
            Some(p) if p == 0 || 2 * p > n => {
                return Err(InvalidInput(format!(
                    "period must be at least 1 and the training data must cover two periods \
                     ({n} points given)"
                )));
            }
            Some(p) => p,
            None => detect_period(&values, 10_000).unwrap_or(1),
        };
        let mut sums = vec![(0.0, 0usize); period];
        for (i, v) in values.iter().enumerate() {
            sums[i % period].0 += v;
            sums[i % period].1 += 1;
        }
        let baselines: Vec<f64> = sums.iter().map(|(s, c)| s / *c as f64).collect();
        let residuals = values
            .iter()
            .enumerate()
            .map(|(i, v)| v - baselines[i % period]);
        let (_, scale) = median_and_scale(residuals, &mut Vec::new());
        let floor = scale_floor(values.iter().copied());
        if !baselines.iter().all(|b| b.is_finite()) {
            return Err(InvalidInput("Values are too large to model".into()));
        }
        Ok(Self {
            options: *options,
            period,
            baselines,
            scale,
            floor,
            next_phase: n % period,
        })
    }

    fn score(&self, point: Point) -> Verdict {
        let expected = self.baselines[self.next_phase];
        let half_width = self.options.threshold * self.scale.max(self.floor);
        Verdict::against_band(point.value, expected, half_width, self.options.direction)
    }

    fn learn(&mut self, point: Point) {
        let phase = self.next_phase;
        let residual = point.value - self.baselines[phase];
        // An anomaly may teach the scale only as much as a borderline value would.
        let cap = self.options.threshold * self.scale.max(self.floor);
        let absolute = residual.abs().min(cap);
        let scale = (1.0 - SCALE_ALPHA) * self.scale + SCALE_ALPHA * MEAN_ABS_TO_STD * absolute;
        // Nor may a wild one move the baseline further than one `BASELINE_LEARN_LIMIT` bands
        // out would (winsorised; 10 keeps NAB's score: 28.4 against 16.6 at the band's edge).
        let limit = BASELINE_LEARN_LIMIT * cap;
        let baseline = self.baselines[phase] + self.options.alpha * residual.clamp(-limit, limit);
        // A point that would make the state non-finite is scored but not learnt.
        if scale.is_finite() && baseline.is_finite() {
            self.scale = scale;
            self.baselines[phase] = baseline;
        }
        self.next_phase = (phase + 1) % self.period;
    }

    fn heap_bytes(&self) -> usize {
        self.baselines.capacity() * std::mem::size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::testing::{self, assert_band_agrees, training};
    use crate::detector::{DetectorParams, DetectorSpec};

    fn daily(n: usize) -> Vec<f64> {
        let noise = testing::noise(n, 11);
        (0..n)
            .map(|i| 10.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin() + 0.3 * noise[i])
            .collect()
    }

    #[test]
    fn finds_the_period_of_a_seasonal_series() {
        assert_eq!(detect_period(&daily(240), 100), Some(24));
        assert_eq!(detect_period(&testing::noise(240, 3), 100), None);
    }

    #[test]
    fn flags_an_off_season_spike_that_a_global_band_would_miss() {
        let history = daily(240 + 48);
        let spec = DetectorSpec::Seasonal(SeasonalOptions::default());
        let mut model = spec.fit(&training(&history[..240])).unwrap();
        let DetectorParams::Seasonal(s) = &model else {
            panic!("seasonal")
        };
        assert_eq!(s.period, 24);
        let calm = testing::observe_all(&mut model, &history[240..240 + 42], 240);
        assert!(
            calm.iter().all(|v| !v.anomaly),
            "the season itself is normal"
        );
        // Point 282 sits at phase 18, the trough (-10): a peak value there is anomalous.
        let off_season = model.observe(Point {
            timestamp: 282 * 60,
            value: 10.0,
        });
        assert_band_agrees(&off_season, 10.0);
        assert!(off_season.anomaly, "{off_season:?}");
        // The same value is within the global range: the static z-score does not flag it.
        let global = DetectorSpec::Zscore(Default::default())
            .fit(&training(&history[..240]))
            .unwrap();
        assert!(
            !global
                .score(Point {
                    timestamp: 0,
                    value: 10.0
                })
                .anomaly
        );
    }

    #[test]
    fn passes_the_hand_made_series() {
        let spec = DetectorSpec::Seasonal(SeasonalOptions::default());
        testing::flags_a_spike_and_a_dip(&spec);
        testing::flags_a_level_shift(&spec);
        testing::stays_calm_on_a_step_valued_series(&spec);
    }

    #[test]
    fn a_given_period_needs_two_cycles_of_training() {
        let options = SeasonalOptions {
            period: Some(200),
            ..Default::default()
        };
        assert!(Seasonal::fit(&options, &training(&daily(240))).is_err());
    }
}
