//! Two predictors behind one gateway client: when one goes away its series are scored by the
//! other (from the shared database) with no failed predict, only its series move, and they come
//! back once it is up again.

use std::sync::Arc;

use anomaly_api::listen::ServerLimits;
use anomaly_api::roles::internal::predictor_routes;
use anomaly_api::roles::remote::RemotePredictors;
use anomaly_workers::bus::MemoryBus;
use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{Point, SeriesId, TrainingSet};
use anomaly_workers::predictor::{Predictor, Scoring};
use anomaly_workers::store::{ModelStore, SqlStore};
use anomaly_workers::trainer::{Trainer, Training};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::demo_scenario::T0;
use crate::support::eventually;

/// A predictor role serving on `listener` until `stop` fires.
fn start_predictor(
    store: Arc<dyn ModelStore>,
    listener: TcpListener,
    stop: CancellationToken,
) -> JoinHandle<std::io::Result<()>> {
    let predictor = Arc::new(Predictor::new(store, Arc::new(MemoryBus::new(1024)), 100));
    let router = predictor_routes(predictor, 1 << 20);
    tokio::spawn(async move {
        anomaly_api::listen::serve(listener, router, &ServerLimits::default(), stop).await
    })
}

#[tokio::test]
async fn a_stopped_predictors_series_are_scored_by_the_other_and_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let store: Arc<dyn ModelStore> = Arc::new(SqlStore::connect(&url).await.unwrap());
    let trainer = Trainer::storing_points(store.clone(), Arc::new(MemoryBus::new(1024)));
    let series: Vec<SeriesId> = (0..24)
        .map(|n| SeriesId::parse(&format!("failover_{n}")).unwrap())
        .collect();
    for id in &series {
        let points = (0..100)
            .map(|i| Point::parse(T0 + 60 * i, 10.0 + (i % 5) as f64).unwrap())
            .collect();
        trainer
            .fit(
                id.clone(),
                TrainingSet::parse(points).unwrap(),
                ModelSpec::default(),
            )
            .await
            .unwrap();
    }
    let (a, b) = (
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let (a_address, b_address) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let urls = [format!("http://{a_address}"), format!("http://{b_address}")];
    let stop_a = CancellationToken::new();
    let serving_a = start_predictor(store.clone(), a, stop_a.clone());
    let _serving_b = start_predictor(store.clone(), b, CancellationToken::new());
    let predictors = RemotePredictors::new(&urls);
    let predict_all = |round: i64| {
        let predictors = &predictors;
        let series = &series;
        async move {
            for id in series {
                let point = Point::parse(T0 + 60 * (1000 + round), 11.0).unwrap();
                let answer = predictors.predict(id, point).await;
                assert!(answer.is_ok(), "{id} in round {round}: {answer:?}");
            }
        }
    };
    predict_all(0).await;
    let owners: Vec<String> = series
        .iter()
        .map(|s| predictors.owner(s).unwrap())
        .collect();
    let on_a = owners.iter().filter(|o| **o == urls[0]).count();
    assert!(
        (1..series.len()).contains(&on_a),
        "both predictors own series: {on_a} on a"
    );

    // Predictor a goes away: every predict still answers, from b.
    stop_a.cancel();
    serving_a.await.unwrap().unwrap();
    predict_all(1).await;
    for id in &series {
        assert_eq!(
            predictors.owner(id).as_ref(),
            Some(&urls[1]),
            "{id} is on b while a is down"
        );
    }

    // a is back on its address: its series return to it, and still answer.
    let a = TcpListener::bind(a_address).await.unwrap();
    let _serving_a = start_predictor(store.clone(), a, CancellationToken::new());
    eventually("a's series come back to it", || {
        let (predictors, series, owners) = (&predictors, &series, &owners);
        async move {
            let mut back = true;
            for (id, owner) in series.iter().zip(owners) {
                let point = Point::parse(T0 + 60 * 2000, 11.0).unwrap();
                assert!(predictors.predict(id, point).await.is_ok(), "{id}");
                back &= predictors.owner(id).as_ref() == Some(owner);
            }
            back
        }
    })
    .await;
}
