//! Isolation for tests that talk to real services: each test gets its own PostgreSQL schema (and
//! Redis key prefixes and Kafka topic names, made where they are used).

use sea_orm::{ConnectionTrait, Database};

/// A private schema in the PostgreSQL database at `TEST_POSTGRES_URL`, dropped with the guard.
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    pub async fn create() -> Self {
        let url = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let db = Database::connect(&url)
            .await
            .expect("PostgreSQL at TEST_POSTGRES_URL (bash .ci/run starts it)");
        db.execute_unprepared(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create schema");
        Self { url, name }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(db) = Database::connect(&url).await {
                    let _ = db
                        .execute_unprepared(&format!("DROP SCHEMA \"{name}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A store on a fresh SQLite file, kept while the directory lives.
pub async fn sqlite_store() -> (
    std::sync::Arc<dyn crate::store::ModelStore>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = crate::store::SqlStore::connect(&url).await.expect("store");
    (std::sync::Arc::new(store), dir)
}

/// A training set of `values`, a minute apart.
pub fn training(values: &[f64]) -> crate::domain::TrainingSet {
    let points = values
        .iter()
        .enumerate()
        .map(|(i, v)| crate::domain::Point::parse(60 * i as i64, *v).expect("a point"))
        .collect();
    crate::domain::TrainingSet::parse(points).expect("a training set")
}

/// What `fit` is asked to build: the `zscore` detector with its defaults.
pub fn zscore() -> crate::detector::ModelSpec {
    crate::detector::ModelSpec {
        detector: crate::detector::DetectorSpec::named("zscore").expect("zscore"),
        alerts: Default::default(),
    }
}
