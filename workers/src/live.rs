//! A model in use: its fitted detector with the learning state, and its alert gate. The predictor
//! keeps one per series and the NAB harness drives the very same type, so the benchmark measures
//! the path production runs.

use serde::{Deserialize, Serialize};

use crate::detector::{AlertGate, DetectorParams, ModelSpec, Verdict};
use crate::domain::{InvalidInput, Point, SeriesId, TrainingSet, Version};
use crate::model::TrainedModel;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub detector: DetectorParams,
    pub gate: AlertGate,
    /// Points observed since the model was fitted.
    pub seen: u64,
    /// For each predictor whose logged points this state learnt (`IngestedPoint::scored`), the
    /// highest `seq` of them: a logged point is in this state if and only if its `seq` is at most
    /// its scorer's entry. Each predictor numbers its points by its own state's `seen`, so after
    /// a handover two predictors' numbers overlap and only the pair tells them apart. At most
    /// `LEARNT_FROM_MAX` entries (the smallest go first).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub learnt_from: std::collections::BTreeMap<String, u64>,
}

/// Scorers a state remembers (`LiveState::learnt_from`): points of one evicted long ago were
/// committed long ago, and are not read again.
pub const LEARNT_FROM_MAX: usize = 8;

/// The outcome of observing one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub verdict: Verdict,
    /// Whether this point raises an anomaly event (the verdict after alert suppression).
    pub alert: bool,
}

impl LiveState {
    /// A fresh state for a newly fitted model.
    pub fn fresh(model: &TrainedModel) -> Self {
        Self {
            detector: model.detector.clone(),
            gate: AlertGate::new(model.alerts, model.detector.quiet_points()),
            seen: 0,
            learnt_from: Default::default(),
        }
    }

    /// Whether this state already holds the point `scorer` logged as its `seq`.
    pub fn holds(&self, scorer: &str, seq: u64) -> bool {
        self.learnt_from
            .get(scorer)
            .is_some_and(|&held| seq <= held)
    }

    /// Records that this state learnt `scorer`'s point `seq`.
    pub fn learnt(&mut self, scorer: &str, seq: u64) {
        match self.learnt_from.get_mut(scorer) {
            Some(held) => *held = (*held).max(seq),
            None => {
                self.learnt_from.insert(scorer.to_owned(), seq);
                if self.learnt_from.len() > LEARNT_FROM_MAX
                    && let Some(oldest) = self
                        .learnt_from
                        .iter()
                        .min_by_key(|(_, held)| **held)
                        .map(|(name, _)| name.clone())
                {
                    self.learnt_from.remove(&oldest);
                }
            }
        }
    }

    /// Scores `point`, learns from it, and decides whether it raises an alert.
    pub fn observe(&mut self, point: Point) -> Observation {
        let verdict = self.detector.observe(point);
        let alert = self.gate.admit(verdict.anomaly, point.timestamp);
        self.seen += 1;
        Observation { verdict, alert }
    }
}

/// How many leading points of a whole series train its model when the caller does not say: NAB's
/// probationary period (15%, at most 750), and never fewer than a model needs.
pub fn default_training_points(total: usize) -> usize {
    ((total as f64 * 0.15).floor() as usize).clamp(TrainingSet::MIN_POINTS, 750)
}

/// Whole-series mode: fits `spec` on the first `training_points` of `points`, then observes the
/// rest in order exactly as the predictor would, storing nothing.
pub fn score_series(
    spec: &ModelSpec,
    points: &[Point],
    training_points: usize,
) -> Result<Vec<Observation>, InvalidInput> {
    score_series_to_state(spec, points, training_points).map(|(observed, _)| observed)
}

/// `score_series`, also giving back the state it ends in.
pub fn score_series_to_state(
    spec: &ModelSpec,
    points: &[Point],
    training_points: usize,
) -> Result<(Vec<Observation>, LiveState), InvalidInput> {
    if training_points >= points.len() {
        return Err(InvalidInput(format!(
            "training_points ({training_points}) must leave at least one of the {} points to score",
            points.len()
        )));
    }
    let (training, rest) = points.split_at(training_points);
    let training = TrainingSet::parse(training.to_vec())?;
    let model = TrainedModel {
        series_id: SeriesId::parse("whole-series").map_err(|e| InvalidInput(e.0))?,
        version: Version::FIRST,
        detector: spec.detector.fit(&training)?,
        alerts: spec.alerts,
        points_used: u32::try_from(training_points).unwrap_or(u32::MAX),
        created_at_ms: 0,
    };
    let mut state = LiveState::fresh(&model);
    let observed = rest.iter().map(|&p| state.observe(p)).collect();
    Ok((observed, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::testing;

    #[test]
    fn whole_series_mode_scores_the_points_after_the_training_prefix() {
        let mut values = testing::baseline(100, 3);
        values[80] = 40.0;
        let points = testing::points(&values);
        let observed = score_series(&ModelSpec::default(), &points, 50).unwrap();
        assert_eq!(observed.len(), 50);
        let flagged: Vec<usize> = (0..50)
            .filter(|&i| observed[i].alert)
            .map(|i| i + 50)
            .collect();
        assert_eq!(flagged, vec![80]);
    }

    #[test]
    fn whole_series_mode_needs_points_left_to_score() {
        let points = testing::points(&[1.0, 2.0, 3.0]);
        assert!(score_series(&ModelSpec::default(), &points, 3).is_err());
        assert!(
            score_series(&ModelSpec::default(), &points, 2).is_err(),
            "two points cannot train"
        );
    }

    #[test]
    fn the_default_prefix_is_nabs_probation_with_a_minimum() {
        assert_eq!(default_training_points(10), 3);
        assert_eq!(default_training_points(1000), 150);
        assert_eq!(default_training_points(100_000), 750);
    }
}
