//! `spawn_app()`: a running platform on a random port with a private database, and typed helpers
//! for its routes. Logs stay silent unless `TEST_LOG` is set.
//!
//! By default the platform runs on the embedded backends (a SQLite file, the in-process bus and
//! metrics store). With `TEST_BACKENDS=services` every app runs on the real ones instead: a
//! fresh PostgreSQL database (`TEST_POSTGRES_URL`), Kafka (`TEST_KAFKA_BROKERS`, topics and
//! groups under a prefix of its own) and Redis (`TEST_REDIS_URL`, keys under a prefix of its
//! own); `bash .ci/run` runs the suite both ways. A test's own variables win over either.

use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use anomaly_api::config::Config;
use anomaly_workers::store::SqlStore;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct TestApp {
    pub http: Http,
    pub database_url: String,
    dir: Arc<TempDir>,
    vars: Vec<(String, String)>,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn detail(&self) -> String {
        self.json()["detail"].as_str().expect("a detail").to_owned()
    }
}

fn init_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            anomaly_api::telemetry::install(anomaly_api::config::LogFormat::Text, None);
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with extra configuration variables.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    // Chosen once per app (a restart finds the same database, topics and keys); the test's own
    // variables come last and win.
    let mut all = backends(&dir).await;
    all.push(("HEARTBEAT_INTERVAL_SECS".to_owned(), "1".to_owned()));
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    start(dir, all).await
}

/// Whether `TEST_BACKENDS=services` asks for PostgreSQL, Kafka and Redis.
pub fn on_services() -> bool {
    match std::env::var("TEST_BACKENDS").as_deref() {
        Ok("services") => true,
        Ok("embedded") | Err(_) => false,
        Ok(other) => panic!("TEST_BACKENDS is `services` or `embedded`, not {other:?}"),
    }
}

/// The backends of one app (kept across its restarts): a SQLite file in its directory, or a
/// fresh PostgreSQL database and prefixes of its own on Kafka and Redis.
async fn backends(dir: &TempDir) -> Vec<(String, String)> {
    if !on_services() {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("anomaly.db").display()
        );
        return vec![("DATABASE_URL".to_owned(), url)];
    }
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let database = crate::distributed::FreshDatabase::create().await;
    let prefix = format!("it-{}-", crate::distributed::uuid_like());
    vec![
        ("DATABASE_URL".to_owned(), database.url),
        (
            "KAFKA_BROKERS".to_owned(),
            env("TEST_KAFKA_BROKERS", "127.0.0.1:9092"),
        ),
        ("KAFKA_TOPIC_PREFIX".to_owned(), prefix.clone()),
        ("KAFKA_PARTITIONS".to_owned(), "1".to_owned()),
        (
            "REDIS_URL".to_owned(),
            env("TEST_REDIS_URL", "redis://127.0.0.1:6379"),
        ),
        ("REDIS_PREFIX".to_owned(), prefix),
    ]
}

/// Starts the app on `vars` (where a name repeats, the last value wins).
async fn start(dir: Arc<TempDir>, vars: Vec<(String, String)>) -> TestApp {
    init_logs();
    let database_url = vars
        .iter()
        .rev()
        .find(|(k, _)| k == "DATABASE_URL")
        .map(|(_, v)| v.clone())
        .expect("a database");
    let config = Config::from_lookup(|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test configuration");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(anomaly_api::process::run(
        config,
        anomaly_api::process::Roles::All,
        Some(listener),
        shutdown.clone(),
    ));
    let app = TestApp {
        http: Http::new(base),
        database_url,
        dir,
        vars,
        shutdown,
        server,
    };
    // The listener is bound before `run` starts, so requests queue until it serves.
    eventually("the app answers", || async {
        app.get("/healthcheck").await.status == 200
    })
    .await;
    app
}

impl TestApp {
    /// Shuts the app down gracefully and starts it again on the same database.
    pub async fn restart(self) -> TestApp {
        self.shutdown.cancel();
        self.server
            .await
            .expect("server task")
            .expect("server ended cleanly");
        start(self.dir, self.vars).await
    }

    /// Waits until the training points of `series`' version `version` are stored, `points` of
    /// them: on Kafka a fit answers once its points are in the broker, and the training-data
    /// consumer writes them a moment later (on the embedded backends they already are).
    pub async fn training_points_stored(&self, series: &str, version: &str, points: usize) {
        use anomaly_workers::store::TrainingPoints;
        let store = self.store().await;
        let series = anomaly_workers::domain::SeriesId::parse(series).expect("a series id");
        let version = anomaly_workers::domain::Version::parse(version).expect("a version");
        eventually("the fit's training points are stored", || async {
            store
                .training_points(&series, version)
                .await
                .is_ok_and(|stored| stored.len() == points)
        })
        .await;
    }

    /// A second connection to the app's database, for checking what reached it.
    pub async fn store(&self) -> SqlStore {
        SqlStore::connect(&self.database_url)
            .await
            .expect("database")
    }
}

impl std::ops::Deref for TestApp {
    type Target = Http;

    fn deref(&self) -> &Http {
        &self.http
    }
}

/// Typed calls to a gateway's routes, wherever it runs.
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(base: String) -> Self {
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    pub async fn answer(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.expect("body").to_vec();
        Answer {
            status,
            content_type,
            bytes,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.answer(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// POSTs a raw body, with no content type, as a hand-written client might.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.answer(self.client.post(format!("{}{path}", self.base)).body(body))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.answer(self.client.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn fit(&self, series: &str, body: &Value) -> Answer {
        self.post(&format!("/fit/{series}"), body).await
    }

    pub async fn predict(&self, series: &str, timestamp: i64, value: f64) -> Answer {
        let body = serde_json::json!({ "timestamp": timestamp, "value": value });
        self.post(&format!("/predict/{series}"), &body).await
    }

    pub async fn plot(&self, series: &str, version: &str) -> Answer {
        self.get(&format!("/plot?series_id={series}&version={version}"))
            .await
    }

    pub async fn health(&self) -> Value {
        let answer = self.get("/healthcheck").await;
        assert_eq!(answer.status, 200);
        answer.json()
    }
}

/// Serves `service` (a router, or the gateway's `app`) on a free port of 127.0.0.1; its URL.
pub async fn serve(service: impl anomaly_api::listen::HttpService) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(service);
    tokio::spawn(async move { axum::serve(listener, service).await });
    url
}

/// A port nothing listens on now, for a program that must be told its port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("address")
        .port()
}

/// Polls `check` until it holds, failing after `DEADLINE`.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(DEADLINE, what, check).await
}

/// Polls `check` until it holds, failing after `deadline`.
pub async fn eventually_within<F, Fut>(deadline: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_explained(deadline, what, check, || async { String::new() }).await
}

/// Polls `check` until it holds; past `deadline`, fails saying `what` and what `explain` finds
/// then (a count, a process's last log lines).
pub async fn eventually_explained<F, Fut, E, EFut>(
    deadline: Duration,
    what: &str,
    mut check: F,
    explain: E,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
    E: FnOnce() -> EFut,
    EFut: Future<Output = String>,
{
    let found = eventually_some(deadline, || {
        let checked = check();
        async move { checked.await.then_some(()) }
    })
    .await;
    if found.is_none() {
        panic!("timed out waiting until {what}\n{}", explain().await);
    }
}

/// Polls `find` until it finds something (backing off from 5 ms to 200 ms between tries); none
/// once `deadline` has passed. A try still running at the deadline is abandoned: a request that
/// never answers fails the wait instead of hanging it.
pub async fn eventually_some<T, F, Fut>(deadline: Duration, mut find: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    let mut wait = Duration::from_millis(5);
    loop {
        match tokio::time::timeout_at(until, find()).await {
            Ok(Some(found)) => return Some(found),
            Ok(None) => {}
            Err(_) => return None,
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}
