//! The behaviour every metrics store backend must show; instantiate with
//! `metrics_contract!(name, expression-making-a-fresh-store)`.

use uuid::Uuid;

use super::{HEARTBEAT_TTL_MS, LatencySummary, StatsStore};
use crate::domain::SeriesId;
use crate::events::{Heartbeat, InferenceBatch, Metric, MetricKind, Role};

const NOW: i64 = 1_700_000_000_000;
/// Every used series.
const ALL: usize = usize::MAX;

fn metric(kind: MetricKind, series: &str, latency_ms: f64, at_ms: i64) -> Metric {
    Metric {
        id: Uuid::new_v4(),
        kind,
        series_id: SeriesId::parse(series).expect("valid id"),
        latency_ms,
        at_ms,
    }
}

fn batch(uses: &[(&str, u64)], latencies_ms: Vec<f64>, at_ms: i64) -> InferenceBatch {
    InferenceBatch {
        id: Uuid::new_v4(),
        source: "predictor-1".into(),
        at_ms,
        uses: uses
            .iter()
            .map(|(series, n)| (SeriesId::parse(series).expect("valid id"), *n))
            .collect(),
        latencies_ms,
    }
}

fn heartbeat(role: Role, instance: &str, cpu: f64, at_ms: i64) -> Heartbeat {
    Heartbeat {
        role,
        instance: instance.into(),
        cpu_percent: cpu,
        memory_percent: 40.0,
        load_avg: [1.0, 0.5, 0.25],
        at_ms,
        serves: None,
    }
}

pub async fn an_empty_store_reports_zeros(store: impl StatsStore) {
    let snap = store.snapshot(NOW, ALL).await.unwrap();
    assert_eq!(snap.series_trained, 0);
    assert_eq!(snap.inference_latency, LatencySummary::default());
    assert_eq!(snap.training_per_minute, 0.0);
    assert!(snap.model_usage.is_empty() && snap.instances.is_empty());
}

pub async fn latencies_usage_and_series_are_counted(store: impl StatsStore) {
    for (series, latency) in [("a", 2.0), ("b", 4.0), ("a", 6.0)] {
        let m = metric(MetricKind::Training, series, latency, NOW);
        store.record(&m).await.unwrap();
    }
    for latency in 1..=20 {
        let m = metric(MetricKind::Inference, "a", f64::from(latency), NOW);
        store.record(&m).await.unwrap();
    }
    let snap = store.snapshot(NOW, ALL).await.unwrap();
    assert_eq!(snap.series_trained, 2);
    assert_eq!(snap.training_latency, LatencySummary { avg: 4.0, p95: 6.0 });
    assert_eq!(
        snap.inference_latency,
        LatencySummary {
            avg: 10.5,
            p95: 19.0
        }
    );
    assert_eq!(snap.training_per_minute, 3.0);
    assert_eq!(snap.inference_per_minute, 20.0);
    assert_eq!(snap.model_usage.get("a"), Some(&20));
    assert_eq!(snap.model_usage.get("b"), None);
}

pub async fn a_redelivered_metric_counts_once(store: impl StatsStore) {
    let m = metric(MetricKind::Inference, "a", 1.0, NOW);
    store.record(&m).await.unwrap();
    store.record(&m).await.unwrap();
    let snap = store.snapshot(NOW, ALL).await.unwrap();
    assert_eq!(snap.model_usage.get("a"), Some(&1));
    assert_eq!(snap.inference_per_minute, 1.0);
}

pub async fn a_batch_of_predictions_counts_like_its_predictions_one_by_one(store: impl StatsStore) {
    store
        .record(&metric(MetricKind::Inference, "a", 100.0, NOW))
        .await
        .unwrap();
    let first = batch(&[("a", 3), ("b", 2)], vec![1.0, 2.0, 3.0, 4.0, 5.0], NOW);
    store.record_inferences(&first).await.unwrap();
    store.record_inferences(&first).await.unwrap(); // redelivered: counted once
    let mut snap = store.snapshot(NOW, ALL).await.unwrap();
    assert_eq!(snap.inference_per_minute, 6.0);
    assert_eq!(
        snap.inference_latency,
        LatencySummary {
            avg: 115.0 / 6.0,
            p95: 100.0
        }
    );
    assert_eq!(snap.model_usage.remove("a"), Some(4));
    assert_eq!(snap.model_usage.remove("b"), Some(2));
    assert!(snap.model_usage.is_empty());

    // A batch larger than the window leaves only its newest latencies.
    let window = super::LATENCY_WINDOW;
    let big: Vec<f64> = (0..window + 10).map(|i| i as f64).collect();
    let n = big.len() as u64;
    store
        .record_inferences(&batch(&[("b", n)], big, NOW))
        .await
        .unwrap();
    let snap = store.snapshot(NOW, ALL).await.unwrap();
    let newest: Vec<f64> = (10..window + 10).map(|i| i as f64).collect();
    assert_eq!(snap.inference_latency, LatencySummary::of(&newest));
    assert_eq!(snap.model_usage.get("b"), Some(&(2 + n)));
    assert_eq!(snap.inference_per_minute, (6 + n) as f64);
}

pub async fn usage_lists_the_most_used_series_ties_by_smaller_id(store: impl StatsStore) {
    let uses = [("a", 5), ("b", 9), ("c", 1), ("d", 9), ("e", 5)];
    store
        .record_inferences(&batch(&uses, vec![1.0], NOW))
        .await
        .unwrap();
    store
        .record(&metric(MetricKind::Inference, "c", 1.0, NOW))
        .await
        .unwrap();
    let top = |n: usize| {
        let store = &store;
        async move {
            let snap = store.snapshot(NOW, n).await.unwrap();
            snap.model_usage
                .into_iter()
                .map(|(series, uses)| format!("{series}:{uses}"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(top(2).await, ["b:9", "d:9"]);
    assert_eq!(top(3).await, ["a:5", "b:9", "d:9"]);
    assert_eq!(top(4).await, ["a:5", "b:9", "d:9", "e:5"]);
    assert_eq!(top(5).await, ["a:5", "b:9", "c:2", "d:9", "e:5"]);
    assert_eq!(top(ALL).await, top(5).await);
    assert!(top(0).await.is_empty());
}

pub async fn throughput_spreads_over_the_minutes_since_the_first(store: impl StatsStore) {
    for at in [NOW - 120_000, NOW - 120_000, NOW - 60_000, NOW] {
        let m = metric(MetricKind::Inference, "a", 1.0, at);
        store.record(&m).await.unwrap();
    }
    let snap = store.snapshot(NOW, ALL).await.unwrap();
    assert!((snap.inference_per_minute - 4.0 / 3.0).abs() < 1e-9);
}

pub async fn heartbeats_list_live_instances_only(store: impl StatsStore) {
    store
        .record_heartbeat(&heartbeat(Role::Trainer, "t1", 10.0, NOW - 1000))
        .await
        .unwrap();
    store
        .record_heartbeat(&heartbeat(Role::Trainer, "t1", 12.0, NOW))
        .await
        .unwrap();
    store
        .record_heartbeat(&heartbeat(Role::Predictor, "p1", 5.0, NOW))
        .await
        .unwrap();
    store
        .record_heartbeat(&heartbeat(
            Role::Predictor,
            "gone",
            5.0,
            NOW - HEARTBEAT_TTL_MS - 1,
        ))
        .await
        .unwrap();
    let snap = store.snapshot(NOW, ALL).await.unwrap();
    let listed: Vec<(Role, &str, f64)> = snap
        .instances
        .iter()
        .map(|h| (h.role, h.instance.as_str(), h.cpu_percent))
        .collect();
    assert_eq!(
        listed,
        vec![(Role::Trainer, "t1", 12.0), (Role::Predictor, "p1", 5.0)]
    );
}

macro_rules! metrics_contract {
    ($(#[$attr:meta])* $backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            use crate::stats::contract;

            #[tokio::test]
            $(#[$attr])*
            async fn an_empty_store_reports_zeros() {
                contract::an_empty_store_reports_zeros($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn latencies_usage_and_series_are_counted() {
                contract::latencies_usage_and_series_are_counted($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn a_redelivered_metric_counts_once() {
                contract::a_redelivered_metric_counts_once($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn a_batch_of_predictions_counts_like_its_predictions_one_by_one() {
                contract::a_batch_of_predictions_counts_like_its_predictions_one_by_one($make)
                    .await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn usage_lists_the_most_used_series_ties_by_smaller_id() {
                contract::usage_lists_the_most_used_series_ties_by_smaller_id($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn throughput_spreads_over_the_minutes_since_the_first() {
                contract::throughput_spreads_over_the_minutes_since_the_first($make).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn heartbeats_list_live_instances_only() {
                contract::heartbeats_list_live_instances_only($make).await;
            }
        }
    };
}
pub(crate) use metrics_contract;
