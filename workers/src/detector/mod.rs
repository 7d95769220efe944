//! Detectors: pure code that fits on training points, scores new points with evidence (score,
//! expected value, band) and, for online kinds, learns from every point it scores. No I/O here:
//! the trainer stores what `fit` returns, the predictor keeps the learning state and checkpoints
//! it. A fitted detector is plain data (serde), so a model version and a checkpoint are the
//! same JSON.
//!
//! Kinds: `art` (the default: a fuzzy ART network that reports novel patterns, plus the
//! new-extreme rule; sparse, calibrated scores), `zscore` (the seed's static rule, two-sided by
//! default), `ewma` (online z-score with exponentially weighted mean and variance), `robust`
//! (median/MAD of a sliding window, with a scale floor) and `seasonal` (per-phase baseline for a
//! period found at fit time or given). `adaptive` follows the series with a slow, per-phase
//! baseline and scales its band by the largest recent deviation. `AlertGate` turns verdicts into
//! alerts (rising edge, cooldown, a quiet spell in points).

mod adaptive;
mod art;
mod ewma;
mod gate;
mod robust;
mod seasonal;
mod stats;
mod window;
mod zscore;

use serde::{Deserialize, Serialize};

use crate::domain::{InvalidInput, Point, TrainingSet};

pub use adaptive::{Adaptive, AdaptiveOptions};
pub use art::{Art, ArtOptions};
pub use ewma::{Ewma, EwmaOptions};
pub use gate::{AlertGate, AlertOptions};
pub use robust::{Robust, RobustOptions};
pub use seasonal::{Seasonal, SeasonalOptions};
pub use zscore::{ZScoreOptions, ZScoreParams};

/// Which side of the expected band counts as anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Above,
    Below,
    #[default]
    Both,
}

/// What the caller asks `fit` to build: a detector kind and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorSpec {
    Zscore(ZScoreOptions),
    Ewma(EwmaOptions),
    Robust(RobustOptions),
    Seasonal(SeasonalOptions),
    Adaptive(AdaptiveOptions),
    Art(ArtOptions),
}

/// The default: `art`, chosen on NAB (see the README's detection section).
impl Default for DetectorSpec {
    fn default() -> Self {
        Self::Art(ArtOptions::default())
    }
}

impl DetectorSpec {
    pub fn fit(&self, training: &TrainingSet) -> Result<DetectorParams, InvalidInput> {
        Ok(match self {
            Self::Zscore(o) => DetectorParams::Zscore(ZScoreParams::fit(o, training)?),
            Self::Ewma(o) => DetectorParams::Ewma(Ewma::fit(o, training)?),
            Self::Robust(o) => DetectorParams::Robust(Robust::fit(o, training)?),
            Self::Seasonal(o) => DetectorParams::Seasonal(Seasonal::fit(o, training)?),
            Self::Adaptive(o) => DetectorParams::Adaptive(Adaptive::fit(o, training)?),
            Self::Art(o) => DetectorParams::Art(Art::fit(o, training)?),
        })
    }

    /// The spec of a kind by name with default options (`anomaly nab --detector NAME`).
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "zscore" => Self::Zscore(ZScoreOptions::default()),
            "ewma" => Self::Ewma(EwmaOptions::default()),
            "robust" => Self::Robust(RobustOptions::default()),
            "seasonal" => Self::Seasonal(SeasonalOptions::default()),
            "adaptive" => Self::Adaptive(AdaptiveOptions::default()),
            "art" => Self::Art(ArtOptions::default()),
            _ => return None,
        })
    }

    pub const NAMES: [&'static str; 6] =
        ["art", "zscore", "ewma", "robust", "seasonal", "adaptive"];

    /// About how much work scoring and learning one point takes, in units of a few
    /// floating-point operations: what `/detect` and `predictBatch` budget by.
    pub fn point_cost(&self) -> u64 {
        match self {
            Self::Zscore(_) | Self::Ewma(_) | Self::Seasonal(_) => 1,
            Self::Robust(o) => o.window as u64,
            Self::Adaptive(o) => o.window as u64,
            Self::Art(o) => o.max_categories as u64,
        }
    }

    /// The kind's name, as `named` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Zscore(_) => "zscore",
            Self::Ewma(_) => "ewma",
            Self::Robust(_) => "robust",
            Self::Seasonal(_) => "seasonal",
            Self::Adaptive(_) => "adaptive",
            Self::Art(_) => "art",
        }
    }
}

/// Everything `fit` is asked to build: the detector and how its verdicts become alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    pub detector: DetectorSpec,
    pub alerts: AlertOptions,
}

/// A fitted detector with its learning state: what a model version stores and what the
/// predictor scores with (and checkpoints as it learns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorParams {
    Zscore(ZScoreParams),
    Ewma(Ewma),
    Robust(Robust),
    Seasonal(Seasonal),
    Adaptive(Adaptive),
    Art(Art),
}

impl DetectorParams {
    /// The detector's name as answers and storage show it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Zscore(_) => "zscore",
            Self::Ewma(_) => "ewma",
            Self::Robust(_) => "robust",
            Self::Seasonal(_) => "seasonal",
            Self::Adaptive(_) => "adaptive",
            Self::Art(_) => "art",
        }
    }

    /// Points to stay quiet after an alert when the alert options do not say: the `art`
    /// detector's one-alert-per-event spell, 0 for the others.
    pub fn quiet_points(&self) -> u64 {
        match self {
            Self::Art(d) => d.quiet_points(),
            _ => 0,
        }
    }

    /// Whether a value inside the band can be anomalous (a novel pattern, not only a value out
    /// of range).
    pub fn flags_patterns(&self) -> bool {
        matches!(self, Self::Art(_))
    }

    /// Bytes of memory the fitted detector holds for its series (itself and what it points to).
    pub fn state_bytes(&self) -> usize {
        let f64s = |n: usize| n * std::mem::size_of::<f64>();
        std::mem::size_of::<Self>()
            + match self {
                Self::Zscore(_) | Self::Ewma(_) => 0,
                Self::Robust(d) => f64s(d.recent.capacity()),
                Self::Seasonal(d) => f64s(d.baselines.capacity()),
                Self::Adaptive(d) => f64s(d.baselines.capacity() + d.deviations.capacity()),
                Self::Art(d) => d.heap_bytes(),
            }
    }

    /// Whether observing a point changes the state (and so whether it is worth checkpointing).
    pub fn is_online(&self) -> bool {
        !matches!(self, Self::Zscore(_))
    }

    /// The verdict on `point` given everything learnt so far; changes nothing.
    pub fn score(&self, point: Point) -> Verdict {
        match self {
            Self::Zscore(d) => d.score(point.value),
            Self::Ewma(d) => d.score(point.value),
            Self::Robust(d) => d.score(point.value),
            Self::Seasonal(d) => d.score(point),
            Self::Adaptive(d) => d.score(point),
            Self::Art(d) => d.score(point),
        }
    }

    /// Scores `point`, then learns from it: the predictor's path.
    pub fn observe(&mut self, point: Point) -> Verdict {
        let verdict = match self {
            // These decide what to learn from their own verdict: one pass does both.
            Self::Art(d) => return d.observe(point),
            Self::Adaptive(d) => return d.observe(point),
            _ => self.score(point),
        };
        match self {
            Self::Zscore(_) | Self::Art(_) | Self::Adaptive(_) => {}
            Self::Ewma(d) => d.learn(point.value),
            Self::Robust(d) => d.learn(point.value),
            Self::Seasonal(d) => d.learn(point),
        }
        verdict
    }
}

/// The verdict on one point and the evidence for it. `score` ≤ 1 is normal, > 1 anomalous, and
/// a value outside `[lower, upper]` on a side the detector watches is always anomalous (an
/// unwatched side has no bound). For every detector but `art` the converse holds too: `art` also
/// flags a novel pattern inside the band.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub anomaly: bool,
    pub score: f64,
    pub expected: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl Verdict {
    /// The verdict for `value` against a band of `half_width` around `expected`.
    pub fn against_band(value: f64, expected: f64, half_width: f64, direction: Direction) -> Self {
        // Values near the ends of f64 must not overflow into infinities (JSON has none).
        let finite = |x: f64| x.clamp(-f64::MAX, f64::MAX);
        let half_width = finite(half_width);
        let deviation = finite(value - expected);
        let watched = match direction {
            Direction::Both => deviation.abs(),
            Direction::Above => deviation.max(0.0),
            Direction::Below => (-deviation).max(0.0),
        };
        let score = if half_width > 0.0 {
            watched / half_width
        } else if watched > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        // JSON has no infinity: a value off a zero-width band scores "very anomalous".
        let score = score.min(1e12);
        let (low, high) = (finite(expected - half_width), finite(expected + half_width));
        let (lower, upper) = match direction {
            Direction::Both => (Some(low), Some(high)),
            Direction::Above => (None, Some(high)),
            Direction::Below => (Some(low), None),
        };
        Verdict {
            anomaly: score > 1.0,
            score,
            expected,
            lower,
            upper,
        }
    }

    /// The score mapped onto [0, 1) (0.5 at the boundary), as NAB's results files want it.
    pub fn unit_score(&self) -> f64 {
        self.score / (1.0 + self.score)
    }
}

/// Options every kind understands: thresholds must be positive and finite.
fn check_threshold(threshold: f64) -> Result<(), InvalidInput> {
    if threshold.is_finite() && threshold > 0.0 {
        Ok(())
    } else {
        Err(InvalidInput(
            "threshold must be a positive finite number".into(),
        ))
    }
}

#[cfg(test)]
mod poisoning;
#[cfg(test)]
pub(crate) mod testing;
