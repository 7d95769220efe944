//! Nested GraphQL fields load through DataLoaders: listing 50 series with all their versions and
//! training data costs a few SQL statements, not one per series or per version.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anomaly_api::process::parts;
use anomaly_workers::bus::MemoryBus;
use anomaly_workers::detector::{DetectorParams, Direction, ZScoreParams};
use anomaly_workers::domain::{Point, SeriesId};
use anomaly_workers::predictor::Predictor;
use anomaly_workers::stats::MemoryStats;
use anomaly_workers::store::{ModelStore, Models, NewModel, SqlStore, TrainingPoints};
use anomaly_workers::trainer::Trainer;

const SERIES: usize = 50;
const VERSIONS: usize = 3;
const POINTS: usize = 4;
/// One statement lists the page of series, one loads their models, one their training data;
/// a little room is left for a store that splits a large key list.
const MOST_STATEMENTS: usize = 5;

fn model_of(series: &SeriesId) -> NewModel {
    NewModel {
        series_id: series.clone(),
        detector: DetectorParams::Zscore(ZScoreParams {
            mean: 1.0,
            std: 0.5,
            threshold: 3.0,
            direction: Direction::Both,
        }),
        alerts: Default::default(),
        points_used: POINTS as u32,
        created_at_ms: 1_700_000_000_000,
    }
}

#[tokio::test]
async fn fifty_series_with_versions_and_training_data_cost_a_few_statements() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("loader.db").display()
    );
    let setup = SqlStore::connect(&url).await.expect("database");
    for s in 0..SERIES {
        let series = SeriesId::parse(&format!("series_{s:02}")).unwrap();
        for _ in 0..VERSIONS {
            let model = setup.create_model(model_of(&series)).await.unwrap();
            let points: Vec<Point> = (0..POINTS)
                .map(|i| Point {
                    timestamp: 1_693_459_200 + 60 * i as i64,
                    value: i as f64,
                })
                .collect();
            setup
                .save_training_points(&series, model.version, 0, &points)
                .await
                .unwrap();
        }
    }

    let statements = Arc::new(AtomicUsize::new(0));
    let mut counted = setup.connection().clone();
    let counter = statements.clone();
    counted.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let store: Arc<dyn ModelStore> = Arc::new(SqlStore::from_connection(counted));
    let bus = Arc::new(MemoryBus::new(16));
    let config = anomaly_api::config::Config::from_lookup(|_| None).unwrap();
    let state = parts::gateway_state(
        Arc::new(config),
        parts::Gateway {
            training: Arc::new(Trainer::new(store.clone(), bus.clone())),
            scoring: Arc::new(Predictor::new(store.clone(), bus.clone(), 100)),
            store,
            stats: Arc::new(MemoryStats::new()),
            bus,
        },
    )
    .await
    .unwrap();
    let schema = anomaly_api::graphql::schema(state, &Default::default());

    let answer = schema
        .execute(
            "{ seriesList(first: 50) { edges { node { id
                models { version pointsUsed trainingData(first: 10) { timestamp value } } } } } }",
        )
        .await;
    assert!(answer.errors.is_empty(), "{:?}", answer.errors);
    let data = answer.data.into_json().unwrap();
    let edges = data["seriesList"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), SERIES);
    for edge in edges {
        let models = edge["node"]["models"].as_array().unwrap();
        assert_eq!(models.len(), VERSIONS, "{edge}");
        for model in models {
            assert_eq!(model["trainingData"].as_array().unwrap().len(), POINTS);
        }
    }
    let counted = statements.load(Ordering::SeqCst);
    println!("{SERIES} series x {VERSIONS} versions with training data: {counted} SQL statements");
    assert!(
        (1..=MOST_STATEMENTS).contains(&counted),
        "{counted} SQL statements for one listing (at most {MOST_STATEMENTS})"
    );
}
