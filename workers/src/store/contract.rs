//! The behaviour every database backend must show; instantiate with
//! `store_contract!(name, async-expression-giving-(store, guard))` where the guard keeps the
//! test's private database alive.

use super::{AlertOrder, AlertQuery, ModelStore, NewModel};
use crate::detector::{DetectorParams, Direction, ZScoreParams};
use crate::domain::{Point, SeriesId, Version};

fn series(id: &str) -> SeriesId {
    SeriesId::parse(id).expect("valid id")
}

fn new_model(id: &str) -> NewModel {
    NewModel {
        series_id: series(id),
        detector: DetectorParams::Zscore(ZScoreParams {
            mean: 10.5,
            std: 0.5,
            threshold: 3.0,
            direction: Direction::Both,
        }),
        alerts: Default::default(),
        points_used: 3,
        created_at_ms: 1_700_000_000_000,
    }
}

/// The stored training points of series `a`'s first version.
async fn first_version_of_a(store: &impl ModelStore) -> Vec<Point> {
    store
        .training_points(&series("a"), Version::FIRST)
        .await
        .unwrap()
}

fn points(n: usize) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            timestamp: 1_693_459_200 + 60 * i as i64,
            value: i as f64 * 0.5,
        })
        .collect()
}

pub async fn versions_count_up_per_series(store: impl ModelStore) {
    let v1 = store.create_model(new_model("a")).await.unwrap();
    let v2 = store.create_model(new_model("a")).await.unwrap();
    let b1 = store.create_model(new_model("b")).await.unwrap();
    assert_eq!(
        (v1.version, v2.version, b1.version),
        (Version::FIRST, Version::FIRST.next(), Version::FIRST)
    );
    let latest = store.latest_model(&series("a")).await.unwrap().unwrap();
    assert_eq!(latest, v2);
    assert_eq!(latest.detector, new_model("a").detector);
    assert!(store.latest_model(&series("nope")).await.unwrap().is_none());
}

pub async fn concurrent_fits_get_distinct_versions(store: impl ModelStore) {
    let store = std::sync::Arc::new(store);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store.create_model(new_model("race")).await
                } else {
                    store
                        .create_model_with_points(new_model("race"), &points(200))
                        .await
                }
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap().version.number());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=32).collect::<Vec<_>>());
}

pub async fn a_model_and_its_points_are_stored_together(store: impl ModelStore) {
    let model = store
        .create_model_with_points(new_model("together"), &points(2500))
        .await
        .unwrap();
    let stored = store
        .training_points(&series("together"), model.version)
        .await
        .unwrap();
    assert_eq!(stored, points(2500));
    let next = store
        .create_model_with_points(new_model("together"), &points(3))
        .await
        .unwrap();
    assert_eq!(next.version, model.version.next());
}

pub async fn chunks_of_a_version_land_in_place_and_its_number_is_never_reused(
    store: impl ModelStore,
) {
    let v1 = store.create_model(new_model("chunked")).await.unwrap();
    let all = points(7);
    // Chunks may arrive in any order; each lands at its own positions.
    store
        .save_training_points(&series("chunked"), v1.version, 4, &all[4..])
        .await
        .unwrap();
    store
        .save_training_points(&series("chunked"), v1.version, 0, &all[..4])
        .await
        .unwrap();
    let stored = store
        .training_points(&series("chunked"), v1.version)
        .await
        .unwrap();
    assert_eq!(stored, all);
    // A version taken back after a half-published fit keeps its rows; the next fit gets a new
    // number, never those rows.
    store
        .delete_model(&series("chunked"), v1.version)
        .await
        .unwrap();
    let next = store.create_model(new_model("chunked")).await.unwrap();
    assert_eq!(next.version, v1.version.next());
    // So does a fit that writes its points with its model, past rows of a version taken back.
    store
        .delete_model(&series("chunked"), next.version)
        .await
        .unwrap();
    store
        .save_training_points(&series("chunked"), next.version, 0, &all)
        .await
        .unwrap();
    let with_points = store
        .create_model_with_points(new_model("chunked"), &points(3))
        .await
        .unwrap();
    assert_eq!(with_points.version, next.version.next());
    let stored = store
        .training_points(&series("chunked"), with_points.version)
        .await
        .unwrap();
    assert_eq!(stored, points(3));
}

pub async fn series_with_models_are_counted(store: impl ModelStore) {
    assert_eq!(store.count_series().await.unwrap(), 0);
    for id in ["c1", "c2", "c1"] {
        store.create_model(new_model(id)).await.unwrap();
    }
    assert_eq!(store.count_series().await.unwrap(), 2);
}

pub async fn deleting_a_version_leaves_the_others(store: impl ModelStore) {
    store.create_model(new_model("a")).await.unwrap();
    let v2 = store.create_model(new_model("a")).await.unwrap();
    store.delete_model(&series("a"), v2.version).await.unwrap();
    let latest = store.latest_model(&series("a")).await.unwrap().unwrap();
    assert_eq!(latest.version, Version::FIRST);
}

pub async fn training_points_round_trip_in_order(store: impl ModelStore) {
    let sent = points(2500); // spans several INSERT statements
    let inserted = store
        .save_training_points(&series("a"), Version::FIRST, 0, &sent)
        .await
        .unwrap();
    assert_eq!(inserted, 2500);
    assert_eq!(first_version_of_a(&store).await, sent);
    assert!(
        store
            .training_points(&series("a"), Version::FIRST.next())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Values and timestamps at the edges of what a point may hold come back bit for bit, past the
/// size of one insert statement. (Not -0.0: SQLite stores an integral REAL as an integer, and
/// gives back 0.)
pub async fn awkward_points_round_trip_exactly(store: impl ModelStore) {
    let awkward = [
        0.1,
        1e-300,
        5e-324,
        f64::MAX,
        f64::MIN,
        -123_456.789_012_345_67,
        1.0 / 3.0,
    ];
    let sent: Vec<Point> = (0..12_500)
        .map(|i| Point {
            timestamp: if i % 2 == 0 {
                -(i as i64)
            } else {
                i64::MAX - i as i64
            },
            value: awkward[i % awkward.len()],
        })
        .collect();
    let inserted = store
        .save_training_points(&series("awkward"), Version::FIRST, 0, &sent)
        .await
        .unwrap();
    assert_eq!(inserted, sent.len() as u64);
    let back = store
        .training_points(&series("awkward"), Version::FIRST)
        .await
        .unwrap();
    assert_eq!(back.len(), sent.len());
    for (got, want) in back.iter().zip(&sent) {
        assert_eq!(got.timestamp, want.timestamp);
        assert_eq!(got.value.to_bits(), want.value.to_bits(), "{want:?}");
    }
}

pub async fn a_redelivered_batch_adds_nothing(store: impl ModelStore) {
    let sent = points(10);
    store
        .save_training_points(&series("a"), Version::FIRST, 0, &sent)
        .await
        .unwrap();
    let again = store
        .save_training_points(&series("a"), Version::FIRST, 0, &sent)
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(first_version_of_a(&store).await, sent);
}

pub async fn a_partly_redelivered_batch_adds_only_its_new_rows(store: impl ModelStore) {
    let sent = points(15);
    store
        .save_training_points(&series("a"), Version::FIRST, 0, &sent[..10])
        .await
        .unwrap();
    let added = store
        .save_training_points(&series("a"), Version::FIRST, 5, &sent[5..])
        .await
        .unwrap();
    assert_eq!(added, 5);
    assert_eq!(first_version_of_a(&store).await, sent);
}

pub async fn the_latest_state_checkpoint_wins(store: impl ModelStore) {
    use crate::live::LiveState;
    let model = store.create_model(new_model("a")).await.unwrap();
    assert!(
        store
            .load_state(&model.series_id, model.version)
            .await
            .unwrap()
            .is_none()
    );
    let mut state = LiveState::fresh(&model);
    state.seen = 200;
    store
        .save_state(&model.series_id, model.version, &state)
        .await
        .unwrap();
    let mut older = state.clone();
    older.seen = 100;
    store
        .save_state(&model.series_id, model.version, &older)
        .await
        .unwrap();
    assert_eq!(
        store
            .load_state(&model.series_id, model.version)
            .await
            .unwrap(),
        Some(state.clone())
    );
    let mut newer = state.clone();
    newer.seen = 300;
    store
        .save_state(&model.series_id, model.version, &newer)
        .await
        .unwrap();
    assert_eq!(
        store
            .load_state(&model.series_id, model.version)
            .await
            .unwrap(),
        Some(newer)
    );
}

pub async fn models_and_training_points_load_in_batches(store: impl ModelStore) {
    for id in ["b", "a", "c"] {
        for _ in 0..2 {
            let model = store.create_model(new_model(id)).await.unwrap();
            let pts = points(3 + model.version.number() as usize);
            store
                .save_training_points(&model.series_id, model.version, 0, &pts)
                .await
                .unwrap();
        }
    }
    let models = store
        .models_for(&[series("a"), series("c"), series("zz")])
        .await
        .unwrap();
    let keys: Vec<(String, String)> = models
        .iter()
        .map(|m| (m.series_id.to_string(), m.version.to_string()))
        .collect();
    let expected: Vec<(String, String)> = [("a", "v1"), ("a", "v2"), ("c", "v1"), ("c", "v2")]
        .iter()
        .map(|(s, v)| (s.to_string(), v.to_string()))
        .collect();
    assert_eq!(keys, expected);
    let v1 = Version::FIRST;
    let v2 = v1.next();
    let asked = [
        (series("c"), v2),
        (series("a"), v1),
        (series("b"), Version::from_number(9).unwrap()),
    ];
    let loaded = store.training_points_for(&asked).await.unwrap();
    assert_eq!(
        loaded,
        vec![
            ((series("c"), v2), points(5)),
            ((series("a"), v1), points(4))
        ]
    );
}

pub async fn series_are_listed_in_pages(store: impl ModelStore) {
    for id in ["s3", "s1", "s2", "s1"] {
        store.create_model(new_model(id)).await.unwrap();
    }
    let first = store.list_series(None, 2).await.unwrap();
    assert_eq!(first, vec![series("s1"), series("s2")]);
    let rest = store.list_series(Some(&series("s2")), 2).await.unwrap();
    assert_eq!(rest, vec![series("s3")]);
}

/// An alert of series `id` (a fresh event id each call), for tests here and elsewhere.
pub fn alert(id: &str, value: f64, at_ms: i64) -> crate::events::Scored {
    crate::events::Scored {
        id: uuid::Uuid::now_v7(),
        series_id: series(id),
        model_version: Version::FIRST,
        detector: "zscore".into(),
        point: Point {
            timestamp: at_ms / 1000,
            value,
        },
        verdict: crate::detector::Verdict {
            anomaly: true,
            score: 3.0,
            expected: 10.0,
            lower: Some(9.0),
            upper: Some(11.0),
        },
        alert: true,
        at_ms,
    }
}

pub async fn an_alert_is_stored_once_however_often_it_is_delivered(store: impl ModelStore) {
    let raised = alert("a", 40.0, 1_000);
    assert!(store.save_alert(&raised).await.unwrap());
    assert!(!store.save_alert(&raised).await.unwrap(), "a redelivery");
    assert_eq!(newest_alerts(&store).await, vec![raised]);
}

pub async fn webhooks_and_their_delivery_log_are_kept(store: impl ModelStore) {
    use super::{Attempt, Delivery, Webhook};
    let hook = |i: u128| Webhook {
        id: uuid::Uuid::from_u128(i),
        url: format!("http://receiver-{i}.example/hook"),
        secret: format!("whsec_c2VjcmV0LXtpfQ=={i}"),
        created_at_ms: 1_000 + i as i64,
    };
    let (a, b) = (hook(1), hook(2));
    store.create_webhook(&b).await.unwrap();
    store.create_webhook(&a).await.unwrap();
    assert_eq!(store.webhooks().await.unwrap(), vec![a.clone(), b.clone()]);
    let delivery = |i: u128, webhook: &Webhook| Delivery {
        id: uuid::Uuid::from_u128(100 + i),
        webhook_id: webhook.id,
        created_at_ms: 5_000 + i as i64,
        delivered: false,
        payload: format!("{{\"n\":{i}}}"),
        attempts: vec![Attempt {
            at_ms: 5_000,
            status: Some(503),
            error: None,
        }],
    };
    let mut first = delivery(1, &a);
    assert!(store.create_delivery(&first).await.unwrap());
    assert!(
        !store.create_delivery(&first).await.unwrap(),
        "a redelivered alert"
    );
    store.save_delivery(&delivery(2, &a)).await.unwrap();
    store.save_delivery(&delivery(3, &b)).await.unwrap();
    let pending: Vec<_> = store
        .undelivered(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        pending,
        [first.id, delivery(2, &a).id, delivery(3, &b).id],
        "oldest first"
    );
    first.attempts.push(Attempt {
        at_ms: 6_000,
        status: Some(200),
        error: None,
    });
    first.delivered = true;
    store.save_delivery(&first).await.unwrap();
    assert_eq!(store.delivery(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.undelivered(10).await.unwrap().len(),
        2,
        "the delivered one is done"
    );
    let log = store.deliveries(a.id, 10).await.unwrap();
    assert_eq!(log, vec![delivery(2, &a), first.clone()], "newest first");
    assert_eq!(store.deliveries(a.id, 1).await.unwrap().len(), 1);
    assert!(store.delete_webhook(a.id).await.unwrap());
    assert!(!store.delete_webhook(a.id).await.unwrap());
    assert_eq!(store.webhooks().await.unwrap(), vec![b.clone()]);
    assert_eq!(
        store.delivery(first.id).await.unwrap(),
        None,
        "its log goes with it"
    );
    assert_eq!(store.deliveries(b.id, 10).await.unwrap().len(), 1);
}

/// The ten newest stored alerts of every series.
pub async fn newest_alerts(store: &(impl ModelStore + ?Sized)) -> Vec<crate::events::Scored> {
    store
        .alerts(&AlertQuery {
            series: None,
            order: AlertOrder::NewestBefore(None),
            since_ms: None,
            limit: 10,
        })
        .await
        .unwrap()
}

pub async fn alerts_page_newest_first_and_replay_oldest_first(store: impl ModelStore) {
    let a: Vec<_> = (0..5).map(|i| alert("a", i as f64, 1_000 * i)).collect();
    let b = alert("b", 99.0, 2_500);
    for raised in a.iter().chain([&b]) {
        store.save_alert(raised).await.unwrap();
    }
    let query = |order, series: Option<&str>, since_ms, limit| AlertQuery {
        series: series.map(self::series),
        order,
        since_ms,
        limit,
    };
    let newest = store
        .alerts(&query(AlertOrder::NewestBefore(None), Some("a"), None, 2))
        .await
        .unwrap();
    assert_eq!(newest, vec![a[4].clone(), a[3].clone()]);
    let older = store
        .alerts(&query(
            AlertOrder::NewestBefore(Some(a[3].id)),
            Some("a"),
            None,
            2,
        ))
        .await
        .unwrap();
    assert_eq!(older, vec![a[2].clone(), a[1].clone()]);
    let replay = store
        .alerts(&query(
            AlertOrder::OldestAfter(a[1].id),
            Some("a"),
            None,
            10,
        ))
        .await
        .unwrap();
    assert_eq!(replay, a[2..].to_vec());
    let every_series = store
        .alerts(&query(AlertOrder::OldestAfter(a[4].id), None, None, 10))
        .await
        .unwrap();
    assert_eq!(every_series, vec![b.clone()]);
    let since = store
        .alerts(&query(
            AlertOrder::NewestBefore(None),
            None,
            Some(2_000),
            10,
        ))
        .await
        .unwrap();
    assert_eq!(since, vec![b, a[4].clone(), a[3].clone(), a[2].clone()]);
}

macro_rules! store_contract {
    ($(#[$attr:meta])* $backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            use crate::store::contract;

            #[tokio::test]
            $(#[$attr])*
            async fn versions_count_up_per_series() {
                let (store, _guard) = $make;
                contract::versions_count_up_per_series(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn concurrent_fits_get_distinct_versions() {
                let (store, _guard) = $make;
                contract::concurrent_fits_get_distinct_versions(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn a_model_and_its_points_are_stored_together() {
                let (store, _guard) = $make;
                contract::a_model_and_its_points_are_stored_together(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn chunks_of_a_version_land_in_place_and_its_number_is_never_reused() {
                let (store, _guard) = $make;
                contract::chunks_of_a_version_land_in_place_and_its_number_is_never_reused(store)
                    .await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn series_with_models_are_counted() {
                let (store, _guard) = $make;
                contract::series_with_models_are_counted(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn deleting_a_version_leaves_the_others() {
                let (store, _guard) = $make;
                contract::deleting_a_version_leaves_the_others(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn training_points_round_trip_in_order() {
                let (store, _guard) = $make;
                contract::training_points_round_trip_in_order(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn awkward_points_round_trip_exactly() {
                let (store, _guard) = $make;
                contract::awkward_points_round_trip_exactly(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn the_latest_state_checkpoint_wins() {
                let (store, _guard) = $make;
                contract::the_latest_state_checkpoint_wins(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn models_and_training_points_load_in_batches() {
                let (store, _guard) = $make;
                contract::models_and_training_points_load_in_batches(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn series_are_listed_in_pages() {
                let (store, _guard) = $make;
                contract::series_are_listed_in_pages(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn a_redelivered_batch_adds_nothing() {
                let (store, _guard) = $make;
                contract::a_redelivered_batch_adds_nothing(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn a_partly_redelivered_batch_adds_only_its_new_rows() {
                let (store, _guard) = $make;
                contract::a_partly_redelivered_batch_adds_only_its_new_rows(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn an_alert_is_stored_once_however_often_it_is_delivered() {
                let (store, _guard) = $make;
                contract::an_alert_is_stored_once_however_often_it_is_delivered(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn alerts_page_newest_first_and_replay_oldest_first() {
                let (store, _guard) = $make;
                contract::alerts_page_newest_first_and_replay_oldest_first(store).await;
            }
            #[tokio::test]
            $(#[$attr])*
            async fn webhooks_and_their_delivery_log_are_kept() {
                let (store, _guard) = $make;
                contract::webhooks_and_their_delivery_log_are_kept(store).await;
            }
        }
    };
}
pub(crate) use store_contract;
