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
//!
//! Each kind is one file whose fitted state implements [`Detector`], plus one line of the
//! registry below ([`for_each_detector!`](crate::for_each_detector)). Generated from it:
//! `DetectorSpec`, `DetectorParams` and their dispatch (`dispatch.rs`), GraphQL's `DetectorKind`
//! (`api/src/graphql/types.rs`) and OpenAPI's `kind` enum (`api/src/openapi.rs`). GraphQL's
//! `DetectorInput` and OpenAPI's `Detector` take the union of the options listed in
//! [`for_each_detector_option!`](crate::for_each_detector_option). A new detector touches:
//!
//! 1. `workers/src/detector/<name>.rs`: its options (serde, `Default`) and its fitted state,
//!    which implements [`Detector`];
//! 2. this file: `mod <name>;`, a `pub use` of its two types, and its line in the registry (and,
//!    only for an option name no kind has yet, a line in the options list);
//! 3. `schema.graphql`, regenerated (`cargo run -q -- schema > schema.graphql`) for the new
//!    `DetectorKind` value (a test compares it with the served schema).
//!
//! (An option of a type no option has yet, say a string, also needs its OpenAPI form in
//! `api/src/openapi.rs`: the build says so.) The code needs nothing more; users learn of the
//! kind from a row in the README's detection table.

mod adaptive;
mod art;
mod dispatch;
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
pub use dispatch::{DetectorParams, DetectorSpec};
pub use ewma::{Ewma, EwmaOptions};
pub use gate::{AlertGate, AlertOptions};
pub use robust::{Robust, RobustOptions};
pub use seasonal::{Seasonal, SeasonalOptions};
pub use zscore::{ZScoreOptions, ZScoreParams};

/// The registry: calls `$callback! { name => Variant(Options, Fitted), ... }` with every detector
/// kind, one line each. `name` is the kind's `kind` tag (the variant's snake_case: serde derives
/// the tag from the variant, a test checks they agree); the order is `DetectorSpec::NAMES`'
/// (error messages and docs list it). Other crates build on it (the GraphQL enum), so a kind is
/// declared nowhere else.
#[macro_export]
macro_rules! for_each_detector {
    ($($callback:ident)::+) => {
        $($callback)::+! {
            art => Art(ArtOptions, Art),
            zscore => Zscore(ZScoreOptions, ZScoreParams),
            ewma => Ewma(EwmaOptions, Ewma),
            robust => Robust(RobustOptions, Robust),
            seasonal => Seasonal(SeasonalOptions, Seasonal),
            adaptive => Adaptive(AdaptiveOptions, Adaptive),
        }
    };
}

/// Every option name any kind takes, with the type the APIs accept it as: GraphQL's
/// `DetectorInput` and OpenAPI's `Detector` are their union (a kind refuses the options it does
/// not know). `Direction` is the API's own direction type where the callback expands.
#[macro_export]
macro_rules! for_each_detector_option {
    ($($callback:ident)::+) => {
        $($callback)::+! {
            threshold: f64,
            direction: Direction,
            alpha: f64,
            window: u32,
            period: u32,
            seasonal: bool,
            max_growth: f64,
            relearn_after: u32,
            extreme_margin: f64,
            max_categories: u32,
        }
    };
}

/// One detector kind: its fitted state (plain data, serde) and how it scores and learns. The
/// defaults suit an online kind that flags values out of its band and keeps no heap state.
pub trait Detector: Sized {
    /// What `fit` is asked for; `Default` is what `DetectorSpec::named` gives.
    type Options: Default;

    /// Whether observing a point changes the state (and so whether it is worth checkpointing).
    const IS_ONLINE: bool = true;

    /// Whether a value inside the band can be anomalous (a novel pattern, not only a value out
    /// of range).
    const FLAGS_PATTERNS: bool = false;

    fn fit(options: &Self::Options, training: &TrainingSet) -> Result<Self, InvalidInput>;

    /// About how much work scoring and learning one point takes, in units of a few
    /// floating-point operations: what `/detect` and `predictBatch` budget by.
    fn point_cost(_options: &Self::Options) -> u64 {
        1
    }

    /// The verdict on `point` given everything learnt so far; changes nothing.
    fn score(&self, point: Point) -> Verdict;

    /// Learns from `point` once it is scored: nothing for a static kind.
    fn learn(&mut self, _point: Point) {}

    /// Scores `point`, then learns from it: the predictor's path. A kind that decides what to
    /// learn from its own verdict overrides it, so one pass does both.
    fn observe(&mut self, point: Point) -> Verdict {
        let verdict = self.score(point);
        self.learn(point);
        verdict
    }

    /// Bytes of memory the detector holds beyond its own struct.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Points to stay quiet after an alert when the alert options do not say.
    fn quiet_points(&self) -> u64 {
        0
    }
}

/// Which side of the expected band counts as anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Above,
    Below,
    #[default]
    Both,
}

/// Everything `fit` is asked to build: the detector and how its verdicts become alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    pub detector: DetectorSpec,
    pub alerts: AlertOptions,
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
