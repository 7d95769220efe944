//! The store on sea-orm: SQLite for the embedded default, PostgreSQL in production. The same
//! queries run on both; `connect` runs the migrations. One file per table, each implementing the
//! port its callers use: `models`, `training_points` (with `pg_copy`, PostgreSQL's binary
//! `COPY`), `states`, `alerts`, `webhooks`.

mod alerts;
mod models;
mod pg_copy;
mod states;
mod training_points;
mod webhooks;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

use super::StoreError;
use crate::domain::{SeriesId, Version};

#[derive(Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
    claims: std::sync::Arc<ClaimLocks>,
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        StoreError::Unavailable(crate::cause::Cause::new(err))
    }
}

impl SqlStore {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`) and brings the schema up
    /// to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(Self::options(url)).await
    }

    /// The connection options `connect` uses, for callers that adjust them (tests put each run
    /// in its own PostgreSQL schema).
    pub fn options(url: &str) -> ConnectOptions {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        options
    }

    /// Connects with `options` and brings the schema up to date.
    pub async fn connect_with(options: ConnectOptions) -> Result<Self, StoreError> {
        let db = Database::connect(options).await?;
        if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
            // WAL lets the plot and health readers run beside the writers.
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        }
        if db.get_database_backend() == DbBackend::Postgres {
            migrate_one_process_at_a_time(&db).await?;
        } else {
            Migrator::up(&db, None).await?;
        }
        Ok(Self::from_connection(db))
    }

    /// A store on a connection whose schema is already up to date (tests wrap a connection to
    /// count its statements).
    pub fn from_connection(db: DatabaseConnection) -> Self {
        Self {
            db,
            claims: Default::default(),
        }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// The advisory lock key PostgreSQL migrations run under ("anomaly" in ASCII).
const MIGRATION_LOCK: i64 = 0x0061_6e6f_6d61_6c79;

/// Runs the migrations while holding a database-wide advisory lock: roles started together on a
/// fresh database would otherwise race to create the same tables, and the loser's
/// `CREATE TABLE IF NOT EXISTS` fails on PostgreSQL's catalog (`pg_type_typname_nsp_index`). The
/// lock is held by a session of its own, closed afterwards, so it is released whatever happens.
async fn migrate_one_process_at_a_time(db: &DatabaseConnection) -> Result<(), StoreError> {
    use sea_orm::sqlx;
    let unavailable =
        |e: sqlx::Error| StoreError::Unavailable(crate::cause::Cause::context("migration lock", e));
    let mut session = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(unavailable)?
        .detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut session)
        .await
        .map_err(unavailable)?;
    let migrated = Migrator::up(db, None).await;
    let _ = sqlx::Connection::close(session).await;
    Ok(migrated?)
}

/// Per-series locks for version claims, striped: two series may share a stripe and then wait for
/// each other briefly, which is harmless.
struct ClaimLocks {
    stripes: [tokio::sync::Mutex<()>; 64],
}

impl Default for ClaimLocks {
    fn default() -> Self {
        Self {
            stripes: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
        }
    }
}

impl ClaimLocks {
    async fn lock(&self, series: &SeriesId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        series.as_str().hash(&mut hasher);
        let stripe = (hasher.finish() % self.stripes.len() as u64) as usize;
        self.stripes[stripe].lock().await
    }
}

fn version_column(version: Version) -> i32 {
    // Versions come from the database (i32) or from Version::parse (at most nine digits).
    i32::try_from(version.number()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::contract::store_contract;
    use super::SqlStore;

    /// A fresh SQLite file per test; the directory lives as long as the store.
    async fn sqlite() -> (SqlStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        (SqlStore::connect(&url).await.expect("connect"), dir)
    }

    store_contract!(sqlite, sqlite().await);

    /// A fresh PostgreSQL schema per test, dropped when the guard goes.
    async fn postgres() -> (SqlStore, crate::testing::PgSchema) {
        let schema = crate::testing::PgSchema::create().await;
        let mut options = SqlStore::options(&schema.url);
        options.set_schema_search_path(schema.name.clone());
        (
            SqlStore::connect_with(options).await.expect("connect"),
            schema,
        )
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: run bash .ci/run"]
    async fn roles_starting_together_on_a_fresh_database_all_migrate_it() {
        let schema = crate::testing::PgSchema::create().await;
        let connect = || {
            let mut options = SqlStore::options(&schema.url);
            options.set_schema_search_path(schema.name.clone());
            SqlStore::connect_with(options)
        };
        let started = tokio::join!(connect(), connect(), connect(), connect());
        for store in [started.0, started.1, started.2, started.3] {
            let store = store.expect("every process migrates or finds the schema migrated");
            assert_eq!(crate::store::Models::count_series(&store).await.unwrap(), 0);
        }
    }

    store_contract!(
        #[ignore = "needs PostgreSQL: run bash .ci/run"]
        postgres,
        postgres().await
    );
}
