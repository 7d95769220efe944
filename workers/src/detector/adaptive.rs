//! The adaptive detector: a baseline that follows the series (per phase of a period when one is
//! found at fit time, else one level), and a band scaled by the largest deviation seen over a
//! recent window. A value is anomalous when it strays further than `threshold` times anything
//! recent: heavy-tailed series must break their own records, quiet ones alarm on smaller moves,
//! so one threshold suits both.
//!
//! A point it flags is not learnt (a run of spikes must not widen the band or drag the
//! baseline), unless the run lasts `relearn_after` points: then the series has moved, and it
//! learns the new level.

use serde::{Deserialize, Serialize};

use super::seasonal::detect_period;
use super::stats::scale_floor;
use super::window::MaxWindow;
use super::{Detector, Direction, Verdict, check_threshold};
use crate::domain::{InvalidInput, Point, TrainingSet};

/// How many of the latest training points the period search looks at.
const PERIOD_SEARCH_POINTS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveOptions {
    /// Multiples of the largest recent deviation before a value is anomalous.
    pub threshold: f64,
    /// How many recent deviations the band is scaled by.
    pub window: usize,
    /// How fast the baseline follows the series (0 < alpha ≤ 1).
    pub alpha: f64,
    /// Look for a period at fit time (or use `period`); otherwise one baseline for all points.
    pub seasonal: bool,
    pub period: Option<usize>,
    pub direction: Direction,
    /// How far one point may raise the record, as a multiple of it: an anomaly widens the band
    /// only so much, so a repeat of the same spike is still caught.
    pub max_growth: f64,
    /// After this many anomalous points in a row, learn from them again: a shift that lasts is
    /// the new normal.
    pub relearn_after: u32,
}

impl Default for AdaptiveOptions {
    fn default() -> Self {
        Self {
            threshold: 1.0,
            window: 5000,
            alpha: 0.002,
            seasonal: true,
            period: None,
            direction: Direction::Both,
            max_growth: 2.0,
            relearn_after: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adaptive {
    pub options: AdaptiveOptions,
    pub period: usize,
    pub baselines: Vec<f64>,
    pub next_phase: usize,
    /// Absolute deviations of the most recent points from their baseline, and their maximum.
    pub deviations: MaxWindow,
    pub floor: f64,
    /// Anomalous points in a row so far.
    #[serde(default)]
    pub flagged_run: u32,
}

impl Detector for Adaptive {
    type Options = AdaptiveOptions;

    fn fit(options: &AdaptiveOptions, training: &TrainingSet) -> Result<Self, InvalidInput> {
        check_threshold(options.threshold)?;
        if !(options.alpha > 0.0 && options.alpha <= 1.0) {
            return Err(InvalidInput("alpha must be in (0, 1]".into()));
        }
        if !(options.max_growth.is_finite() && options.max_growth >= 1.0) {
            return Err(InvalidInput(
                "max_growth must be a finite number of at least 1".into(),
            ));
        }
        if options.relearn_after == 0 {
            return Err(InvalidInput("relearn_after must be at least 1".into()));
        }
        if !(3..=100_000).contains(&options.window) {
            return Err(InvalidInput("window must be between 3 and 100000".into()));
        }
        let values: Vec<f64> = training.values().collect();
        let n = values.len();
        let period = match (options.seasonal, options.period) {
            (_, Some(p)) if p == 0 || 2 * p > n => {
                return Err(InvalidInput(format!(
                    "period must be at least 1 and the training data must cover two periods \
                     ({n} points given)"
                )));
            }
            (_, Some(p)) => p,
            (true, None) => {
                // The most recent points are enough to find a period, and keep fits fast.
                let recent = &values[n.saturating_sub(PERIOD_SEARCH_POINTS)..];
                detect_period(recent, PERIOD_SEARCH_POINTS / 2).unwrap_or(1)
            }
            (false, None) => 1,
        };
        let mut sums = vec![(0.0, 0usize); period];
        for (i, v) in values.iter().enumerate() {
            sums[i % period].0 += v;
            sums[i % period].1 += 1;
        }
        let baselines: Vec<f64> = sums.iter().map(|(s, c)| s / *c as f64).collect();
        if !baselines.iter().all(|b| b.is_finite()) {
            return Err(InvalidInput("Values are too large to model".into()));
        }
        let skip = n.saturating_sub(options.window);
        let deviations = values
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, v)| (v - baselines[i % period]).abs())
            .collect();
        Ok(Self {
            options: *options,
            period,
            baselines,
            next_phase: n % period,
            deviations,
            floor: scale_floor(values.iter().copied()),
            flagged_run: 0,
        })
    }

    fn point_cost(options: &AdaptiveOptions) -> u64 {
        options.window as u64
    }

    fn score(&self, point: Point) -> Verdict {
        self.score_with(point, self.record())
    }

    /// Scores `point`, then learns from it unless it is anomalous (see the module's notes).
    fn observe(&mut self, point: Point) -> Verdict {
        let record = self.record();
        let verdict = self.score_with(point, record);
        let phase = self.next_phase;
        self.next_phase = (phase + 1) % self.period;
        if verdict.anomaly {
            self.flagged_run = self.flagged_run.saturating_add(1);
            if self.flagged_run < self.options.relearn_after {
                return verdict;
            }
        } else {
            self.flagged_run = 0;
        }
        let residual = point.value - self.baselines[phase];
        let deviation = residual.abs().min(self.options.max_growth * record);
        let baseline = self.baselines[phase] + self.options.alpha * residual;
        // A point that would make the state non-finite is scored but not learnt.
        if !(deviation.is_finite() && baseline.is_finite()) {
            return verdict;
        }
        self.deviations.push(deviation, self.options.window);
        self.baselines[phase] = baseline;
        verdict
    }

    fn heap_bytes(&self) -> usize {
        (self.baselines.capacity() + self.deviations.capacity()) * std::mem::size_of::<f64>()
    }
}

impl Adaptive {
    /// The largest recent deviation, never below the scale floor.
    fn record(&self) -> f64 {
        self.deviations
            .max()
            .map_or(self.floor, |max| max.max(self.floor))
    }

    fn score_with(&self, point: Point, record: f64) -> Verdict {
        let expected = self.baselines[self.next_phase];
        let half_width = self.options.threshold * record;
        Verdict::against_band(point.value, expected, half_width, self.options.direction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::testing::{self, assert_band_agrees, training};
    use crate::detector::{DetectorParams, DetectorSpec};

    fn spec() -> DetectorSpec {
        DetectorSpec::Adaptive(AdaptiveOptions::default())
    }

    #[test]
    fn passes_the_hand_made_series() {
        testing::flags_a_spike_and_a_dip(&spec());
        testing::flags_a_level_shift(&spec());
        testing::stays_calm_on_a_step_valued_series(&spec());
    }

    /// The seed README's example, as the default detector sees it.
    #[test]
    fn gives_the_seed_verdicts_on_its_documented_example() {
        let mut model = spec().fit(&training(&[10.0, 10.5, 11.0])).unwrap();
        assert!(
            !model
                .observe(Point {
                    timestamp: 1,
                    value: 10.5
                })
                .anomaly
        );
        assert!(
            model
                .observe(Point {
                    timestamp: 2,
                    value: 22.5
                })
                .anomaly
        );
        assert!(
            model
                .observe(Point {
                    timestamp: 3,
                    value: 22.5
                })
                .anomaly,
            "one spike widens the band only so much: its repeat is still caught"
        );
    }

    #[test]
    fn does_not_learn_from_the_spikes_it_flags() {
        let history = testing::baseline(400, 21);
        let mut model = spec().fit(&training(&history[..300])).unwrap();
        testing::observe_all(&mut model, &history[300..], 300);
        let mut timestamp = 400;
        for spike in 0..10 {
            let verdicts = testing::observe_all(&mut model, &[1000.0], timestamp);
            assert!(verdicts[0].anomaly, "spike {spike}");
            timestamp += 1;
            testing::observe_all(&mut model, &testing::baseline(5, spike), timestamp);
            timestamp += 5;
        }
        for spike in 0..10 {
            testing::observe_all(&mut model, &[1000.0], timestamp + spike);
        }
        let after = model.score(Point {
            timestamp: 0,
            value: 10.2,
        });
        assert!(
            !after.anomaly,
            "ten spikes (and a run of ten) later: {after:?}"
        );
    }

    #[test]
    fn learns_a_shift_that_lasts() {
        let history = testing::baseline(300, 22);
        let mut model = spec().fit(&training(&history)).unwrap();
        let shifted: Vec<f64> = testing::baseline(200, 23)
            .into_iter()
            .map(|v| v + 50.0)
            .collect();
        let verdicts = testing::observe_all(&mut model, &shifted, 300);
        assert!(verdicts[0].anomaly);
        assert!(
            verdicts[150..].iter().all(|v| !v.anomaly),
            "the new level is normal once it has lasted"
        );
    }

    #[test]
    fn flags_an_off_season_spike() {
        let noise = testing::noise(288, 12);
        let daily: Vec<f64> = (0..288)
            .map(|i| 10.0 * (i as f64 * std::f64::consts::TAU / 24.0).sin() + 0.3 * noise[i])
            .collect();
        let mut model = spec().fit(&training(&daily[..240])).unwrap();
        let DetectorParams::Adaptive(a) = &model else {
            panic!("adaptive")
        };
        assert_eq!(a.period, 24);
        let calm = testing::observe_all(&mut model, &daily[240..282], 240);
        assert!(
            calm.iter().all(|v| !v.anomaly),
            "the season itself is normal"
        );
        let off_season = model.observe(Point {
            timestamp: 282 * 60,
            value: 10.0,
        });
        assert_band_agrees(&off_season, 10.0);
        assert!(
            off_season.anomaly,
            "a peak value at the trough: {off_season:?}"
        );
    }

    #[test]
    fn a_heavy_tailed_series_must_break_its_own_record() {
        // Spikes of up to +8 are part of this series; a +6 is not news, a +20 is.
        let mut values = testing::baseline(400, 13);
        // Irregular spikes (a regular rhythm would be a season).
        for i in [17, 61, 140, 152, 233, 290, 318, 377] {
            values[i] += 8.0;
        }
        let mut model = spec().fit(&training(&values[..300])).unwrap();
        testing::observe_all(&mut model, &values[300..], 300);
        assert!(
            !model
                .score(Point {
                    timestamp: 0,
                    value: 16.0
                })
                .anomaly
        );
        assert!(
            model
                .score(Point {
                    timestamp: 0,
                    value: 30.0
                })
                .anomaly
        );
    }

    #[test]
    fn refuses_bad_options() {
        let bad = [
            AdaptiveOptions {
                alpha: 0.0,
                ..Default::default()
            },
            AdaptiveOptions {
                window: 2,
                ..Default::default()
            },
            AdaptiveOptions {
                max_growth: 0.5,
                ..Default::default()
            },
            AdaptiveOptions {
                relearn_after: 0,
                ..Default::default()
            },
            AdaptiveOptions {
                threshold: -1.0,
                ..Default::default()
            },
            AdaptiveOptions {
                period: Some(200),
                ..Default::default()
            },
        ];
        for options in bad {
            assert!(
                Adaptive::fit(&options, &training(&testing::baseline(300, 1))).is_err(),
                "{options:?}"
            );
        }
    }
}
