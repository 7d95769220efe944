//! Hand-made series every detector is checked on (a spike, a dip, a level shift, a flat series, a
//! step-valued series), and the rule that a verdict always agrees with its band.

use super::{DetectorParams, DetectorSpec, Verdict};
use crate::domain::{Point, TrainingSet};

pub fn points(values: &[f64]) -> Vec<Point> {
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| Point {
            timestamp: 60 * i as i64,
            value,
        })
        .collect()
}

pub fn training(values: &[f64]) -> TrainingSet {
    TrainingSet::parse(points(values)).expect("a valid training set")
}

/// Deterministic noise in [-1, 1] (a small LCG), so tests need no random crate and never flake.
pub fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// 10 ± 0.5 noise.
pub fn baseline(n: usize, seed: u64) -> Vec<f64> {
    noise(n, seed).into_iter().map(|e| 10.0 + 0.5 * e).collect()
}

/// The verdict is anomalous exactly when the value is outside a bound that exists.
pub fn assert_band_agrees(v: &Verdict, value: f64) {
    assert_verdict_holds(v, value, false);
}

/// A value outside a bound that exists is anomalous, `anomaly` is `score` > 1, and (unless the
/// detector also flags patterns) an anomaly lies outside the band.
pub fn assert_verdict_holds(v: &Verdict, value: f64, flags_patterns: bool) {
    let outside = v.lower.is_some_and(|l| value < l) || v.upper.is_some_and(|u| value > u);
    if flags_patterns {
        assert!(!outside || v.anomaly, "value {value}, verdict {v:?}");
    } else {
        assert_eq!(v.anomaly, outside, "value {value}, verdict {v:?}");
    }
    assert_eq!(v.anomaly, v.score > 1.0, "{v:?}");
    assert!(v.score.is_finite() && v.score >= 0.0, "{v:?}");
    assert!(v.expected.is_finite(), "{v:?}");
}

/// Feeds `values` through the predictor's path, checking every verdict against its band.
pub fn observe_all(model: &mut DetectorParams, values: &[f64], first: usize) -> Vec<Verdict> {
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let v = model.observe(Point {
                timestamp: 60 * (first + i) as i64,
                value,
            });
            assert_verdict_holds(&v, value, model.flags_patterns());
            v
        })
        .collect()
}

fn fitted(spec: &DetectorSpec, values: &[f64]) -> DetectorParams {
    spec.fit(&training(values)).expect("fit")
}

pub fn flags_a_spike_and_a_dip(spec: &DetectorSpec) {
    let history = baseline(400, 1);
    let mut model = fitted(spec, &history[..300]);
    let calm = observe_all(&mut model, &history[300..], 300);
    let false_alarms = calm.iter().filter(|v| v.anomaly).count();
    assert!(
        false_alarms <= 2,
        "{false_alarms} false alarms on plain noise"
    );
    let spike = observe_all(&mut model, &[30.0], 400)[0];
    assert!(
        spike.anomaly && spike.upper.is_some_and(|u| u < 30.0),
        "spike: {spike:?}"
    );
    observe_all(&mut model, &baseline(20, 2), 401);
    let dip = observe_all(&mut model, &[-10.0], 421)[0];
    assert!(
        dip.anomaly && dip.lower.is_some_and(|l| l > -10.0),
        "dip: {dip:?}"
    );
}

pub fn flags_a_level_shift(spec: &DetectorSpec) {
    let history = baseline(300, 3);
    let mut model = fitted(spec, &history);
    let shifted: Vec<f64> = baseline(5, 4).into_iter().map(|v| v + 15.0).collect();
    let verdicts = observe_all(&mut model, &shifted, 300);
    assert!(
        verdicts[0].anomaly,
        "the first shifted point: {:?}",
        verdicts[0]
    );
}

/// A flat series with one tiny step, and a two-level series: neither explodes.
pub fn stays_calm_on_a_step_valued_series(spec: &DetectorSpec) {
    let mut flat = vec![5.0; 299];
    flat.push(5.001);
    let mut model = fitted(spec, &flat);
    let verdicts = observe_all(&mut model, &[5.0, 5.0, 5.001, 5.0], 300);
    assert!(verdicts.iter().all(|v| !v.anomaly), "{verdicts:?}");
    let jump = observe_all(&mut model, &[50.0], 304)[0];
    assert!(
        jump.anomaly && jump.score.is_finite(),
        "a real jump off a flat line: {jump:?}"
    );

    let levels: Vec<f64> = (0..300)
        .map(|i| if i % 4 == 0 { 100.0 } else { 0.0 })
        .collect();
    let mut model = fitted(spec, &levels);
    let verdicts = observe_all(&mut model, &[0.0, 0.0, 0.0, 100.0], 300);
    assert!(verdicts.iter().all(|v| v.score.is_finite()), "{verdicts:?}");
}
