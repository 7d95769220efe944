//! No client can poison a model: property tests over every detector. For any finite input
//! sequence the state and every answer stay finite, and after two wild values a normal value is
//! scored normal again within a bounded number of points.

use proptest::prelude::*;

use super::testing::{noise, training};
use super::{DetectorParams, DetectorSpec};
use crate::domain::Point;

/// A series around 10 whose noise (±2) makes 11 plainly normal for every detector.
fn calm(n: usize, seed: u64) -> Vec<f64> {
    noise(n, seed).into_iter().map(|e| 10.0 + 2.0 * e).collect()
}

fn fitted(name: &str) -> DetectorParams {
    DetectorSpec::named(name)
        .expect("a known detector")
        .fit(&training(&calm(800, 1)))
        .expect("fit")
}

fn observe(model: &mut DetectorParams, i: usize, value: f64) -> super::Verdict {
    let verdict = model.observe(Point {
        timestamp: 60 * i as i64,
        value,
    });
    let finite = |x: Option<f64>| x.is_none_or(f64::is_finite);
    assert!(
        verdict.score.is_finite()
            && verdict.expected.is_finite()
            && finite(verdict.lower)
            && finite(verdict.upper),
        "{}: {value} gave {verdict:?}",
        model.name()
    );
    verdict
}

/// The state's fields that may be absent (`null` in JSON); anywhere else `null` is what JSON
/// makes of a non-finite number.
const OPTIONAL_FIELDS: [&str; 7] = [
    "period",
    "quiet_points",
    "engine",
    "smoothed",
    "median_bin",
    "last_report",
    "last_alert_at",
];

/// Every number in the state is finite (its JSON has no `null` where a number belongs).
fn assert_state_finite(model: &DetectorParams) {
    let json = serde_json::to_value(model).expect("serialisable");
    fn walk(v: &serde_json::Value, name: &str) {
        match v {
            serde_json::Value::Null => panic!("{name}: a non-finite number in the state"),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, name)),
            serde_json::Value::Object(o) => o
                .iter()
                .filter(|(k, x)| !(x.is_null() && OPTIONAL_FIELDS.contains(&k.as_str())))
                .for_each(|(_, x)| walk(x, name)),
            _ => {}
        }
    }
    walk(&json, model.name());
}

/// The sequence: the largest finite values, then a normal one, on every detector.
#[test]
fn the_poisoning_sequence_leaves_11_normal() {
    for name in DetectorSpec::NAMES {
        let mut model = fitted(name);
        for (i, v) in calm(200, 2).into_iter().enumerate() {
            observe(&mut model, i, v);
        }
        observe(&mut model, 200, 1.7e308);
        observe(&mut model, 201, -1.7e308);
        assert_state_finite(&model);
        let after = observe(&mut model, 202, 11.0);
        assert!(!after.anomaly, "{name}: 11 after the poison: {after:?}");
        for (i, v) in calm(50, 3).into_iter().enumerate() {
            observe(&mut model, 203 + i, v);
        }
        let later = observe(&mut model, 253, 11.0);
        assert!(!later.anomaly, "{name}: 11 later: {later:?}");
    }
}

/// Any finite value, weighted towards the ends of the range and the awkward middle.
fn any_finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e3..1e3f64,
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(1.7e308),
        Just(-1.7e308),
    ]
}

/// Points after two wild values within which a normal value is normal again.
const RECOVERY_POINTS: usize = 300;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_finite_sequence_keeps_every_answer_and_the_state_finite(
        values in prop::collection::vec(any_finite(), 1..120),
    ) {
        for name in DetectorSpec::NAMES {
            let mut model = fitted(name);
            for (i, &v) in values.iter().enumerate() {
                observe(&mut model, i, v);
            }
            assert_state_finite(&model);
        }
    }

    #[test]
    fn a_normal_value_after_two_wild_ones_is_normal_again(
        first in any_finite(),
        second in any_finite(),
        calm_before in 0usize..200,
    ) {
        for name in DetectorSpec::NAMES {
            let mut model = fitted(name);
            let before = calm(calm_before, 4);
            for (i, &v) in before.iter().enumerate() {
                observe(&mut model, i, v);
            }
            observe(&mut model, calm_before, first);
            observe(&mut model, calm_before + 1, second);
            let start = calm_before + 2;
            let recovered = (0..RECOVERY_POINTS).any(|i| {
                // The series carries on as before; 11 is one of its normal values.
                let value = if i % 10 == 9 { 11.0 } else { 10.0 + (i % 7) as f64 * 0.2 };
                let verdict = observe(&mut model, start + i, value);
                value == 11.0 && !verdict.anomaly
            });
            prop_assert!(recovered, "{}: 11 still anomalous {} points after {} and {}",
                name, RECOVERY_POINTS, first, second);
            assert_state_finite(&model);
        }
    }
}
