//! A distributed gateway whose trainer or predictor is down answers 503 naming which, and works
//! again as soon as it is back: the HTTP clients keep no broken state.

use std::sync::Arc;

use anomaly_api::process::parts;
use anomaly_api::roles::internal::{predictor_routes, trainer_routes};
use anomaly_api::roles::remote::{RemotePredictors, RemoteTrainer};
use anomaly_workers::bus::MemoryBus;
use anomaly_workers::predictor::Predictor;
use anomaly_workers::stats::MemoryStats;
use anomaly_workers::store::SqlStore;
use anomaly_workers::trainer::Trainer;
use serde_json::json;
use tokio::net::TcpListener;

use crate::demo_scenario::{T0, fit_body};
use crate::support::Http;

async fn serve(listener: TcpListener, service: impl anomaly_api::listen::HttpService) {
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(service);
    tokio::spawn(async move { axum::serve(listener, service).await });
}

#[tokio::test]
async fn a_missing_trainer_or_predictor_gets_503_and_recovery_is_automatic() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let bus = Arc::new(MemoryBus::new(64));
    // Reserve the roles' addresses, but nobody answers there yet.
    let trainer_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let predictor_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trainer_url = format!("http://{}", trainer_listener.local_addr().unwrap());
    let predictor_url = format!("http://{}", predictor_listener.local_addr().unwrap());
    drop((trainer_listener, predictor_listener));

    // The gateway's own wiring, on remote roles nobody answers for yet.
    let config = anomaly_api::config::Config::from_lookup(|_| None).unwrap();
    let router = parts::gateway(
        Arc::new(config),
        parts::Gateway {
            training: Arc::new(RemoteTrainer::new(&trainer_url)),
            scoring: Arc::new(RemotePredictors::new(std::slice::from_ref(&predictor_url))),
            store: store.clone(),
            stats: Arc::new(MemoryStats::new()),
            bus: bus.clone(),
        },
        Default::default(),
    )
    .await
    .unwrap();
    let gateway_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = Http::new(format!("http://{}", gateway_listener.local_addr().unwrap()));
    serve(gateway_listener, router).await;

    let fit = gateway.fit("sensor_01", &fit_body(1)).await;
    assert_eq!(
        (fit.status, fit.detail().as_str()),
        (503, "The trainer is unavailable, try again shortly")
    );
    let predict = gateway.predict("sensor_01", T0, 10.5).await;
    assert_eq!(
        (predict.status, predict.detail().as_str()),
        (503, "The predictor is unavailable, try again shortly")
    );

    // The roles come up on their addresses: the same gateway now works, errors included.
    let trainer = Arc::new(Trainer::new(store.clone(), bus.clone()));
    let predictor = Arc::new(Predictor::new(store.clone(), bus.clone(), 100));
    let trainer_listener = TcpListener::bind(trainer_url.trim_start_matches("http://"))
        .await
        .unwrap();
    let predictor_listener = TcpListener::bind(predictor_url.trim_start_matches("http://"))
        .await
        .unwrap();
    serve(trainer_listener, trainer_routes(trainer, 1 << 20)).await;
    serve(predictor_listener, predictor_routes(predictor, 1 << 20)).await;

    let fit = gateway.fit("sensor_01", &fit_body(1)).await;
    assert_eq!(fit.status, 200, "{}", String::from_utf8_lossy(&fit.bytes));
    assert_eq!(fit.json()["version"], "v1");
    let predict = gateway.predict("sensor_01", T0, 22.5).await.json();
    assert_eq!(
        (
            predict["model_version"].as_str(),
            predict["anomaly"].as_bool()
        ),
        (Some("v1"), Some(true))
    );
    let constant = gateway
        .fit(
            "flat",
            &json!({ "timestamps": [T0, T0 + 60, T0 + 120], "values": [5.0, 5.0, 5.0] }),
        )
        .await;
    assert_eq!(constant.status, 400);
    assert!(constant.detail().contains("constant"));
    let untrained = gateway.predict("sensor_99", T0, 1.0).await;
    assert_eq!(
        (untrained.status, untrained.detail().as_str()),
        (404, "Model not found")
    );
}
