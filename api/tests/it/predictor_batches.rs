//! The gateway reaches a predictor with batches of points: concurrent predicts share HTTP calls,
//! and each caller still gets the answer (or the error) of its own point. Calls that hang do not
//! hold back the points behind them. A batch over the limit is refused whole, with a clear error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anomaly_api::roles::internal::{MAX_PREDICT_BATCH, PREDICT_BATCH_PATH, predictor_routes};
use anomaly_api::roles::remote::RemotePredictors;
use anomaly_workers::bus::MemoryBus;
use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{Point, SeriesId, TrainingSet};
use anomaly_workers::predictor::{PredictError, Prediction, Predictor, Scoring};
use anomaly_workers::store::SqlStore;
use anomaly_workers::trainer::{Trainer, Training};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::demo_scenario::T0;
use crate::support::DEADLINE;

/// A predictor role on a fresh SQLite file, with `series` trained; its URL and a count of the
/// HTTP calls it has answered.
async fn predictor_with(series: &[&str]) -> (String, Arc<AtomicUsize>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let bus = Arc::new(MemoryBus::new(1024));
    let trainer = Trainer::storing_points(store.clone(), bus.clone());
    for name in series {
        let points = (0..200)
            .map(|i| Point::parse(T0 + 60 * i, 10.0 + (i % 7) as f64).unwrap())
            .collect();
        trainer
            .fit(
                SeriesId::parse(name).unwrap(),
                TrainingSet::parse(points).unwrap(),
                ModelSpec::default(),
            )
            .await
            .unwrap();
    }
    let predictor = Arc::new(Predictor::new(store, bus, 100));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let router = predictor_routes(predictor, 1 << 20).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counted.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, calls, dir)
}

#[tokio::test]
async fn concurrent_predicts_share_calls_and_each_gets_its_own_answer() {
    let (url, calls, _dir) = predictor_with(&["batch_a", "batch_b"]).await;
    let predictors = RemotePredictors::new(&[url]);
    let names = ["batch_a", "batch_b", "batch_untrained"];
    const POINTS: usize = 300;
    let asks = (0..POINTS).map(|n| {
        let series = SeriesId::parse(names[n % names.len()]).unwrap();
        let point = Point::parse(T0 + 100_000 + n as i64, n as f64).unwrap();
        let predictors = &predictors;
        async move {
            (
                series.clone(),
                point,
                predictors.predict(&series, point).await,
            )
        }
    });
    let answers = futures_util::future::join_all(asks).await;

    for (series, point, answer) in answers {
        match (series.as_str(), answer) {
            ("batch_untrained", Err(PredictError::ModelNotFound(missing))) => {
                assert_eq!(missing, series)
            }
            ("batch_untrained", other) => panic!("an untrained series answered {other:?}"),
            (_, Ok(prediction)) => {
                assert_eq!((prediction.series_id, prediction.point), (series, point))
            }
            (_, Err(err)) => panic!("{series} failed: {err}"),
        }
    }
    // All points were waiting before the first call went out: full batches.
    assert_eq!(
        calls.load(Ordering::SeqCst),
        POINTS.div_ceil(MAX_PREDICT_BATCH),
        "HTTP calls for {POINTS} points"
    );
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let (url, _calls, _dir) = predictor_with(&["batch_a"]).await;
    let item = json!({ "series_id": "batch_a", "point": { "timestamp": T0, "value": 1.0 } });
    let client = reqwest::Client::new();
    let send = |items: usize| {
        client
            .post(format!("{url}{PREDICT_BATCH_PATH}"))
            .json(&vec![item.clone(); items])
            .send()
    };

    let answer = send(MAX_PREDICT_BATCH + 1).await.unwrap();
    assert_eq!(answer.status(), 400);
    let failure: Value = answer.json().await.unwrap();
    assert_eq!(failure["kind"], "invalid", "{failure}");

    let answer = send(MAX_PREDICT_BATCH).await.unwrap();
    assert_eq!(answer.status(), 200);
    let answers: Vec<Value> = answer.json().await.unwrap();
    assert_eq!(answers.len(), MAX_PREDICT_BATCH);
    assert!(
        answers
            .iter()
            .all(|a| a["scored"]["series_id"] == "batch_a")
    );
}

/// A predictor on which series `stuck` never answers (a model load hanging on the database) and
/// every other series at once (as untrained); it reports each call of `stuck`.
struct StuckSeries {
    stuck_calls: tokio::sync::mpsc::UnboundedSender<()>,
}

#[async_trait::async_trait]
impl Scoring for StuckSeries {
    async fn predict(&self, series: &SeriesId, _point: Point) -> Result<Prediction, PredictError> {
        if series.as_str() == "stuck" {
            let _ = self.stuck_calls.send(());
            std::future::pending::<()>().await;
        }
        Err(PredictError::ModelNotFound(series.clone()))
    }
}

#[tokio::test]
async fn calls_that_hang_do_not_hold_back_the_points_behind_them() {
    let (stuck_calls, mut stuck_called) = tokio::sync::mpsc::unbounded_channel();
    let router = predictor_routes(Arc::new(StuckSeries { stuck_calls }), 1 << 20);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let predictors = Arc::new(RemotePredictors::new(&[url]));
    let point = Point::parse(T0, 1.0).unwrap();

    let waited = tokio::time::timeout(DEADLINE, async {
        // More hanging calls than may be out at once, each in its own batch.
        for _ in 0..8 {
            let predictors = predictors.clone();
            tokio::spawn(async move {
                let stuck = SeriesId::parse("stuck").unwrap();
                let _ = predictors.predict(&stuck, point).await;
            });
            stuck_called.recv().await.expect("the predictor is called");
        }
        let free = SeriesId::parse("free").unwrap();
        predictors.predict(&free, point).await
    })
    .await;
    match waited {
        Ok(Err(PredictError::ModelNotFound(series))) => assert_eq!(series.as_str(), "free"),
        Ok(other) => panic!("the free series answered {other:?}"),
        Err(_) => panic!("points queued behind hanging calls were never sent"),
    }
}
