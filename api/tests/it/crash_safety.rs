//! Nothing acknowledged is lost: `anomaly serve` as a real process, 16 clients fitting
//! 1,000-point series, SIGKILL after 100 acknowledgements, a restart on the same database, and
//! every acknowledged fit has its model and all of its points.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anomaly_workers::domain::{SeriesId, Version};
use anomaly_workers::store::{Models, SqlStore, TrainingPoints};
use serde_json::{Value, json};

use crate::demo_scenario::T0;
use crate::processes::{RoleProcess, message};
use crate::support::{Http, eventually};

const CLIENTS: usize = 16;
const POINTS: usize = 1000;
const KILL_AFTER: usize = 100;

fn body(seed: usize) -> Value {
    let data: Vec<Value> = (0..POINTS)
        .map(|i| json!({ "timestamp": T0 + 60 * i as i64, "value": ((i + seed) % 13) as f64 }))
        .collect();
    json!({ "data": data })
}

async fn start_serve(env: &[(String, String)]) -> (RoleProcess, Http) {
    let mut serve = RoleProcess::start("serve", &["serve"], env);
    let line = serve
        .wait_for_log("its address", |l| {
            message(l) == Some("serving every role in one process")
        })
        .await;
    let address = line["fields"]["address"].as_str().expect("address");
    (serve, Http::new(format!("http://{address}")))
}

/// 16 clients fit 1,000-point series (each its own) through `http` until `kill` (run after 100
/// acknowledgements) stops the server; returns every acknowledged `(series, version)`.
pub async fn fits_interrupted_by(http: Http, kill: impl FnOnce()) -> Vec<(String, String)> {
    let http = Arc::new(http);
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, acknowledged, count) = (http.clone(), acknowledged.clone(), count.clone());
            tokio::spawn(async move {
                for round in 0.. {
                    let series = format!("crash-{client}-{round}");
                    let sent = http
                        .client
                        .post(format!("{}/fit/{series}", http.base))
                        .json(&body(client + round))
                        .send()
                        .await;
                    // After the kill: the connection fails, or the answer is an error.
                    let Ok(response) = sent else { return };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(answer) = response.json::<Value>().await else {
                        return;
                    };
                    let version = answer["version"].as_str().expect("a version").to_owned();
                    acknowledged.lock().unwrap().push((series, version));
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    eventually("100 fits are acknowledged", || async {
        count.load(Ordering::SeqCst) >= KILL_AFTER
    })
    .await;
    kill();
    for client in clients {
        client.await.unwrap();
    }
    acknowledged.lock().unwrap().clone()
}

/// The acknowledged fits whose model or points are not all in `store`.
pub async fn incomplete(store: &SqlStore, acknowledged: &[(String, String)]) -> Vec<String> {
    let mut incomplete = Vec::new();
    for (series, version) in acknowledged {
        let id = SeriesId::parse(series).unwrap();
        let version = Version::parse(version).unwrap();
        let model = store.latest_model(&id).await.unwrap();
        let points = store.training_points(&id, version).await.unwrap();
        if model.is_none() || points.len() != POINTS {
            incomplete.push(format!("{series} {version}: {} points", points.len()));
        }
    }
    incomplete
}

#[tokio::test]
async fn acknowledged_fits_survive_a_sigkill_of_serve() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("crash.db").display()
    );
    let env = vec![
        ("APP_PORT".to_owned(), "0".to_owned()),
        ("APP_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("DATABASE_URL".to_owned(), database_url.clone()),
    ];
    let (mut serve, http) = start_serve(&env).await;
    let acknowledged = fits_interrupted_by(http, || serve.kill()).await;
    assert!(acknowledged.len() >= KILL_AFTER);

    // Restarted on the same database, it serves every acknowledged fit whole.
    let (mut serve, http) = start_serve(&env).await;
    let store = SqlStore::connect(&database_url).await.unwrap();
    let incomplete = incomplete(&store, &acknowledged).await;
    assert!(
        incomplete.is_empty(),
        "{} of {} acknowledged fits lost points: {incomplete:?}",
        incomplete.len(),
        acknowledged.len()
    );
    let (series, version) = &acknowledged[0];
    let plot = http.plot(series, version).await;
    assert_eq!(plot.status, 200, "the plot of {series} {version}");
    let answer = http.predict(series, T0 + 60 * POINTS as i64, 5.0).await;
    assert_eq!(answer.status, 200);
    serve.terminate().await;
}
