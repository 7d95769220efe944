use super::*;
use crate::detector::testing::{self, training};
use crate::detector::{DetectorParams, DetectorSpec};
use crate::live::LiveState;
use crate::model::TrainedModel;

fn spec() -> DetectorSpec {
    DetectorSpec::Art(ArtOptions::default())
}

fn point(i: usize, value: f64) -> Point {
    Point {
        timestamp: 60 * i as i64,
        value,
    }
}

/// A daily rhythm with noise: what most monitored series look like.
fn rhythm(n: usize, seed: u64) -> Vec<f64> {
    let noise = testing::noise(n, seed);
    (0..n)
        .map(|i| 50.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 96.0).sin() + noise[i])
        .collect()
}

#[test]
fn passes_the_hand_made_series() {
    testing::flags_a_spike_and_a_dip(&spec());
    testing::flags_a_level_shift(&spec());
    testing::stays_calm_on_a_step_valued_series(&spec());
}

/// The seed README's example: three training points are too few for the network, and the
/// new-extreme rule gives the seed's verdicts.
#[test]
fn gives_the_seed_verdicts_on_three_points() {
    let mut model = spec().fit(&training(&[10.0, 10.5, 11.0])).unwrap();
    let normal = model.observe(point(3, 10.5));
    assert!(!normal.anomaly, "{normal:?}");
    assert_eq!((normal.lower, normal.upper), (Some(9.98), Some(11.02)));
    assert_eq!(normal.expected, 10.5);
    let spike = model.observe(point(4, 22.5));
    assert!(spike.anomaly && spike.score > 1.0, "{spike:?}");
}

#[test]
fn a_short_fit_warms_up_then_fits_the_network() {
    let values = rhythm(400, 3);
    let mut model = spec().fit(&training(&values[..3])).unwrap();
    testing::observe_all(&mut model, &values[3..MIN_PROBATION - 1], 3);
    let DetectorParams::Art(art) = &model else {
        panic!("art")
    };
    assert!(art.engine.is_none());
    assert_eq!(art.warming.len(), MIN_PROBATION - 1);
    testing::observe_all(&mut model, &values[MIN_PROBATION - 1..], MIN_PROBATION - 1);
    let DetectorParams::Art(art) = &model else {
        panic!("art")
    };
    assert!(art.engine.is_some() && art.warming.is_empty());
    assert_eq!(art.quiet_points(), (MIN_PROBATION / 5) as u64);
}

#[test]
fn scores_are_sparse_and_alerts_rare_on_a_plain_rhythm() {
    let values = rhythm(20_000, 5);
    let points = testing::points(&values);
    let observed =
        crate::live::score_series(&crate::detector::ModelSpec::default(), &points, 750).unwrap();
    let nonzero = observed.iter().filter(|o| o.verdict.score > 0.0).count();
    let alerts = observed.iter().filter(|o| o.alert).count();
    assert!(nonzero < 200, "{nonzero} non-zero scores of 19,250");
    assert!(alerts <= 5, "{alerts} alerts on a plain rhythm");
}

#[test]
fn a_novel_pattern_inside_the_range_is_flagged_once() {
    // The rhythm flattens at its midline for a while: every value is in range, the shape is new.
    let mut values = rhythm(6000, 7);
    for v in &mut values[4000..4200] {
        *v = 50.0;
    }
    let points = testing::points(&values);
    let observed =
        crate::live::score_series(&crate::detector::ModelSpec::default(), &points, 750).unwrap();
    let alerts: Vec<usize> = (0..observed.len())
        .filter(|&i| observed[i].alert)
        .map(|i| i + 750)
        .collect();
    assert!(
        alerts.iter().any(|&i| (4000..4200).contains(&i)),
        "alerts at {alerts:?}"
    );
    let inside = alerts
        .iter()
        .filter(|&&i| (4000..4200).contains(&i))
        .count();
    assert_eq!(inside, 1, "one alert per event: {alerts:?}");
}

/// Memory per series stays bounded whatever the series' length and however wild it is, with the
/// default cap and with the largest one allowed.
#[test]
fn the_state_stays_under_64_kb() {
    let noise = testing::noise(60_000, 9);
    let values: Vec<f64> = noise
        .iter()
        .enumerate()
        .map(|(i, e)| e * (1.0 + (i % 977) as f64) + if i % 313 == 0 { 500.0 } else { 0.0 })
        .collect();
    for max_categories in [ArtOptions::default().max_categories, MAX_CATEGORIES] {
        let options = ArtOptions {
            max_categories,
            ..Default::default()
        };
        let mut model = DetectorSpec::Art(options)
            .fit(&training(&values[..750]))
            .unwrap();
        for (i, &v) in values[750..].iter().enumerate() {
            model.observe(point(750 + i, v));
        }
        let DetectorParams::Art(art) = &model else {
            panic!("art")
        };
        let engine = art.engine.as_ref().unwrap();
        assert_eq!(
            engine.art.categories.len(),
            max_categories,
            "the cap is reached"
        );
        let bytes = model.state_bytes();
        assert!(bytes <= 64 * 1024, "{bytes} bytes in memory");
        // What the JSON checkpoint costs, restored: the same state, no larger.
        let restored: DetectorParams =
            serde_json::from_slice(&serde_json::to_vec(&model).unwrap()).unwrap();
        assert!(restored.state_bytes() <= bytes);
    }
}

/// A checkpoint (JSON) restores the exact state: scores carry on as if uninterrupted.
#[test]
fn a_checkpoint_restores_the_exact_state() {
    let values = rhythm(5000, 11);
    let mut straight = spec().fit(&training(&values[..750])).unwrap();
    let mut restored = straight.clone();
    for (i, &v) in values[750..3000].iter().enumerate() {
        straight.observe(point(750 + i, v));
        restored.observe(point(750 + i, v));
    }
    let json = serde_json::to_string(&restored).unwrap();
    let mut restored: DetectorParams = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, straight);
    for (i, &v) in values[3000..].iter().enumerate() {
        assert_eq!(
            restored.observe(point(3000 + i, v)),
            straight.observe(point(3000 + i, v))
        );
    }
}

#[test]
fn a_huge_value_does_not_blind_it() {
    let values = rhythm(3000, 13);
    let model = spec().fit(&training(&values[..750])).unwrap();
    let trained = TrainedModel {
        series_id: crate::domain::SeriesId::parse("s").unwrap(),
        version: crate::domain::Version::FIRST,
        detector: model,
        alerts: Default::default(),
        points_used: 750,
        created_at_ms: 0,
    };
    let mut state = LiveState::fresh(&trained);
    for (i, &v) in values[750..2000].iter().enumerate() {
        state.observe(point(750 + i, v));
    }
    assert!(state.observe(point(2000, 1.7e308)).verdict.anomaly);
    assert!(state.observe(point(2001, -1.7e308)).verdict.anomaly);
    let after = state.observe(point(2002, 11.0 + 40.0));
    assert!(after.verdict.score.is_finite() && after.verdict.expected.is_finite());
    assert!(!after.verdict.anomaly, "{after:?}");
    assert!(
        state.observe(point(2003, 1000.0)).verdict.anomaly,
        "the range did not swallow everything"
    );
}

#[test]
fn refuses_bad_options() {
    let bad = [
        ArtOptions {
            threshold: 0.0,
            ..Default::default()
        },
        ArtOptions {
            threshold: 1.5,
            ..Default::default()
        },
        ArtOptions {
            extreme_margin: -0.1,
            ..Default::default()
        },
        ArtOptions {
            max_categories: 0,
            ..Default::default()
        },
        ArtOptions {
            max_categories: MAX_CATEGORIES + 1,
            ..Default::default()
        },
    ];
    for options in bad {
        assert!(
            Art::fit(&options, &training(&testing::baseline(300, 1))).is_err(),
            "{options:?}"
        );
    }
}
