//! The store on sea-orm: SQLite for the embedded default, PostgreSQL in production. The same
//! queries run on both; `connect` runs the migrations.

use std::time::Duration;

use async_trait::async_trait;
use entity::{alert, model, model_state, training_point};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Set, SqlErr, Statement,
    TransactionTrait,
};

use super::{
    AlertOrder, AlertQuery, Delivery, ModelStore, NewModel, StoreError, Webhook, pg_copy,
    sql_webhooks,
};
use crate::domain::{Point, SeriesId, Version};
use crate::events::Scored;
use crate::live::LiveState;
use crate::model::{StoredParameters, TrainedModel};

/// Rows per INSERT: well under SQLite's 32,766 bound parameters at five columns a row.
const ROWS_PER_STATEMENT: usize = 1000;
/// Fits of one series in different processes race for the next version; the unique key settles
/// it and the loser tries the next number.
const VERSION_ATTEMPTS: usize = 64;

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

fn to_trained(row: model::Model) -> Result<TrainedModel, StoreError> {
    let corrupt = |what: String| {
        StoreError::Corrupt(crate::cause::Cause::message(format!(
            "model {}: {what}",
            row.id
        )))
    };
    let series_id = SeriesId::parse(&row.series_id).map_err(|e| corrupt(e.0))?;
    let version = u32::try_from(row.version)
        .map_err(|e| e.to_string())
        .and_then(|n| Version::from_number(n).map_err(|e| e.0))
        .map_err(corrupt)?;
    let parameters: StoredParameters =
        serde_json::from_str(&row.parameters).map_err(|e| corrupt(e.to_string()))?;
    Ok(TrainedModel {
        series_id,
        version,
        detector: parameters.detector,
        alerts: parameters.alerts,
        points_used: u32::try_from(row.points_used).unwrap_or(0),
        created_at_ms: row.created_at_ms,
    })
}

/// What one attempt at claiming a version came to.
pub(super) enum Claim {
    Claimed(model::Model),
    /// Another process took the version first: try the next one.
    Taken,
}

/// The model row a claim inserts: everything but the version, which the claim picks.
pub(super) struct ModelRow<'a> {
    pub series_id: &'a SeriesId,
    pub detector: &'a str,
    pub parameters: &'a str,
    pub points_used: i32,
    pub created_at_ms: i64,
}

impl SqlStore {
    /// Stores `new` as its series' next version, with its training `points` in the same
    /// transaction when given (on PostgreSQL by binary `COPY`: `pg_copy`). Claims of one series
    /// are serialised within the process (no race at all in one process); across processes the
    /// unique key settles a race and the loser claims the next number.
    async fn claim_version(
        &self,
        new: NewModel,
        points: Option<&[Point]>,
    ) -> Result<TrainedModel, StoreError> {
        let parameters = StoredParameters {
            detector: new.detector.clone(),
            alerts: new.alerts,
        };
        let parameters = serde_json::to_string(&parameters)
            .map_err(|e| StoreError::Corrupt(crate::cause::Cause::new(e)))?;
        let row = ModelRow {
            series_id: &new.series_id,
            detector: new.detector.name(),
            parameters: &parameters,
            points_used: i32::try_from(new.points_used).unwrap_or(i32::MAX),
            created_at_ms: new.created_at_ms,
        };
        let _claim = self.claims.lock(&new.series_id).await;
        for _ in 0..VERSION_ATTEMPTS {
            let attempt = match (points, self.db.get_database_backend()) {
                (Some(points), DbBackend::Postgres) => {
                    let pool = self.db.get_postgres_connection_pool();
                    pg_copy::claim_with_points(pool, &row, points).await?
                }
                _ => self.claim_once(&row, points).await?,
            };
            if let Claim::Claimed(row) = attempt {
                return to_trained(row);
            }
        }
        Err(StoreError::Unavailable(crate::cause::Cause::message(
            format!(
                "could not claim a version for {} after {VERSION_ATTEMPTS} attempts",
                new.series_id
            ),
        )))
    }

    /// One attempt of `claim_version` through sea-orm: the next number past the latest version
    /// and past any version left by a failed publish, its row, and its points when given.
    async fn claim_once(
        &self,
        new: &ModelRow<'_>,
        points: Option<&[Point]>,
    ) -> Result<Claim, StoreError> {
        let txn = self.db.begin().await?;
        let latest = model::Entity::find()
            .filter(model::Column::SeriesId.eq(new.series_id.as_str()))
            .order_by_desc(model::Column::Version)
            .one(&txn)
            .await?;
        let latest = match latest {
            Some(latest) => Some(to_trained(latest)?.version),
            None => None,
        };
        // A version taken back after a failed publish may have left rows (a chunked publish
        // that failed half way): its number is never given out again.
        let orphaned = training_point::Entity::find()
            .filter(training_point::Column::SeriesId.eq(new.series_id.as_str()))
            .order_by_desc(training_point::Column::Version)
            .one(&txn)
            .await?
            .and_then(|row| u32::try_from(row.version).ok())
            .and_then(|n| Version::from_number(n).ok());
        let next = match latest.max(orphaned) {
            Some(latest) => latest.next(),
            None => Version::FIRST,
        };
        let row = model::ActiveModel {
            series_id: Set(new.series_id.to_string()),
            version: Set(version_column(next)),
            detector: Set(new.detector.to_owned()),
            parameters: Set(new.parameters.to_owned()),
            points_used: Set(new.points_used),
            created_at_ms: Set(new.created_at_ms),
            ..Default::default()
        };
        let row = match row.insert(&txn).await {
            Ok(row) => row,
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await?;
                return Ok(Claim::Taken);
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(points) = points {
            insert_points(&txn, new.series_id, next, 0, points).await?;
        }
        txn.commit().await?;
        Ok(Claim::Claimed(row))
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

/// Inserts a version's training points (again: nothing), returning how many rows were new.
async fn insert_points(
    db: &impl ConnectionTrait,
    series: &SeriesId,
    version: Version,
    first_seq: u32,
    points: &[Point],
) -> Result<u64, StoreError> {
    if db.get_database_backend() == DbBackend::Postgres {
        return insert_points_as_arrays(db, series, version, first_seq, points).await;
    }
    let rows = points
        .iter()
        .enumerate()
        .map(|(i, point)| training_point::ActiveModel {
            series_id: Set(series.to_string()),
            version: Set(version_column(version)),
            seq: Set(i32::try_from(first_seq as usize + i).unwrap_or(i32::MAX)),
            timestamp: Set(point.timestamp),
            value: Set(point.value),
        })
        .collect::<Vec<_>>();
    let mut inserted = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        inserted += training_point::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([
                    training_point::Column::SeriesId,
                    training_point::Column::Version,
                    training_point::Column::Seq,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(inserted)
}

/// Rows PostgreSQL takes in one `UNNEST` statement.
const ROWS_PER_ARRAY_STATEMENT: usize = 10_000;

/// PostgreSQL's insert: a chunk goes as three arrays (sequence numbers, timestamps, values) in one
/// statement of five parameters, not as thousands of bound values: far less to build, send, parse
/// and plan per row. Arrays travel as text (Rust writes every finite f64 in its shortest form that
/// reads back exactly, and PostgreSQL reads it back exactly).
async fn insert_points_as_arrays(
    db: &impl ConnectionTrait,
    series: &SeriesId,
    version: Version,
    first_seq: u32,
    points: &[Point],
) -> Result<u64, StoreError> {
    fn array<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
        use std::fmt::Write;
        let mut text = String::from("{");
        for (i, item) in items.enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{item}");
        }
        text.push('}');
        text
    }
    let mut inserted = 0;
    for (n, chunk) in points.chunks(ROWS_PER_ARRAY_STATEMENT).enumerate() {
        let first = first_seq as usize + n * ROWS_PER_ARRAY_STATEMENT;
        let seqs =
            array((first..first + chunk.len()).map(|seq| i32::try_from(seq).unwrap_or(i32::MAX)));
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            r#"INSERT INTO training_point (series_id, version, seq, "timestamp", value)
               SELECT $1, $2, s, t, v
               FROM UNNEST($3::text::int4[], $4::text::int8[], $5::text::float8[]) AS u (s, t, v)
               ON CONFLICT (series_id, version, seq) DO NOTHING"#,
            [
                series.as_str().into(),
                version_column(version).into(),
                seqs.into(),
                array(chunk.iter().map(|p| p.timestamp)).into(),
                array(chunk.iter().map(|p| p.value)).into(),
            ],
        );
        inserted += db.execute_raw(statement).await?.rows_affected();
    }
    Ok(inserted)
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

#[async_trait]
impl ModelStore for SqlStore {
    async fn create_model(&self, new: NewModel) -> Result<TrainedModel, StoreError> {
        self.claim_version(new, None).await
    }

    async fn create_model_with_points(
        &self,
        new: NewModel,
        points: &[Point],
    ) -> Result<TrainedModel, StoreError> {
        self.claim_version(new, Some(points)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    async fn count_series(&self) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT COUNT(DISTINCT series_id) AS n FROM model",
            ))
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(crate::cause::Cause::message("COUNT returned no row"))
            })?;
        let n: i64 = row.try_get("", "n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete_model(&self, series: &SeriesId, version: Version) -> Result<(), StoreError> {
        model::Entity::delete_many()
            .filter(model::Column::SeriesId.eq(series.as_str()))
            .filter(model::Column::Version.eq(version_column(version)))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn latest_model(&self, series: &SeriesId) -> Result<Option<TrainedModel>, StoreError> {
        model::Entity::find()
            .filter(model::Column::SeriesId.eq(series.as_str()))
            .order_by_desc(model::Column::Version)
            .one(&self.db)
            .await?
            .map(to_trained)
            .transpose()
    }

    async fn save_training_points(
        &self,
        series: &SeriesId,
        version: Version,
        first_seq: u32,
        points: &[Point],
    ) -> Result<u64, StoreError> {
        if self.db.get_database_backend() == DbBackend::Postgres {
            let pool = self.db.get_postgres_connection_pool();
            // Fast unless a row is there already (a redelivered chunk): then the idempotent insert.
            if let Some(rows) =
                pg_copy::copy_points(pool, series, version, first_seq, points).await?
            {
                return Ok(rows);
            }
        }
        let txn = self.db.begin().await?;
        let inserted = insert_points(&txn, series, version, first_seq, points).await?;
        txn.commit().await?;
        Ok(inserted)
    }

    async fn save_state(
        &self,
        series: &SeriesId,
        version: Version,
        state: &LiveState,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(state)
            .map_err(|e| StoreError::Corrupt(crate::cause::Cause::new(e)))?;
        let seen = i64::try_from(state.seen).unwrap_or(i64::MAX);
        let key = (series.to_string(), version_column(version));
        let existing = model_state::Entity::find_by_id(key.clone())
            .one(&self.db)
            .await?;
        match existing {
            Some(row) if row.seen >= seen => Ok(()),
            Some(_) => {
                model_state::Entity::update_many()
                    .col_expr(model_state::Column::Seen, seen.into())
                    .col_expr(model_state::Column::State, json.into())
                    .col_expr(
                        model_state::Column::UpdatedAtMs,
                        crate::events::now_ms().into(),
                    )
                    .filter(model_state::Column::SeriesId.eq(key.0))
                    .filter(model_state::Column::Version.eq(key.1))
                    .filter(model_state::Column::Seen.lt(seen))
                    .exec(&self.db)
                    .await?;
                Ok(())
            }
            None => {
                let row = model_state::ActiveModel {
                    series_id: Set(key.0),
                    version: Set(key.1),
                    seen: Set(seen),
                    state: Set(json),
                    updated_at_ms: Set(crate::events::now_ms()),
                };
                match model_state::Entity::insert(row)
                    .exec_without_returning(&self.db)
                    .await
                {
                    Ok(_) => Ok(()),
                    // A concurrent first checkpoint won; ours is retried by the next one.
                    Err(err)
                        if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
                    {
                        Ok(())
                    }
                    Err(err) => Err(err.into()),
                }
            }
        }
    }

    async fn load_state(
        &self,
        series: &SeriesId,
        version: Version,
    ) -> Result<Option<LiveState>, StoreError> {
        let key = (series.to_string(), version_column(version));
        let Some(row) = model_state::Entity::find_by_id(key).one(&self.db).await? else {
            return Ok(None);
        };
        serde_json::from_str(&row.state).map(Some).map_err(|e| {
            StoreError::Corrupt(crate::cause::Cause::context(
                format!("state of {series} {version}"),
                e,
            ))
        })
    }

    async fn models_for(&self, series: &[SeriesId]) -> Result<Vec<TrainedModel>, StoreError> {
        if series.is_empty() {
            return Ok(Vec::new());
        }
        model::Entity::find()
            .filter(model::Column::SeriesId.is_in(series.iter().map(|s| s.as_str())))
            .order_by_asc(model::Column::SeriesId)
            .order_by_asc(model::Column::Version)
            .all(&self.db)
            .await?
            .into_iter()
            .map(to_trained)
            .collect()
    }

    async fn training_points_for(
        &self,
        keys: &[(SeriesId, Version)],
    ) -> Result<Vec<((SeriesId, Version), Vec<Point>)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One query over the series and versions asked for; pairs not asked for are dropped.
        let rows = training_point::Entity::find()
            .filter(training_point::Column::SeriesId.is_in(keys.iter().map(|(s, _)| s.as_str())))
            .filter(
                training_point::Column::Version.is_in(keys.iter().map(|(_, v)| version_column(*v))),
            )
            .order_by_asc(training_point::Column::SeriesId)
            .order_by_asc(training_point::Column::Version)
            .order_by_asc(training_point::Column::Seq)
            .all(&self.db)
            .await?;
        let mut grouped: std::collections::HashMap<(String, i32), Vec<Point>> =
            std::collections::HashMap::new();
        for row in rows {
            grouped
                .entry((row.series_id, row.version))
                .or_default()
                .push(Point {
                    timestamp: row.timestamp,
                    value: row.value,
                });
        }
        Ok(keys
            .iter()
            .filter_map(|(series, version)| {
                grouped
                    .remove(&(series.to_string(), version_column(*version)))
                    .map(|points| ((series.clone(), *version), points))
            })
            .collect())
    }

    async fn list_series(
        &self,
        after: Option<&SeriesId>,
        limit: u64,
    ) -> Result<Vec<SeriesId>, StoreError> {
        use sea_orm::QuerySelect;
        let mut query = model::Entity::find()
            .select_only()
            .column(model::Column::SeriesId)
            .distinct()
            .order_by_asc(model::Column::SeriesId)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(model::Column::SeriesId.gt(after.as_str()));
        }
        let ids: Vec<String> = query.into_tuple().all(&self.db).await?;
        ids.iter()
            .map(|id| {
                SeriesId::parse(id)
                    .map_err(|e| StoreError::Corrupt(crate::cause::Cause::context("series id", e)))
            })
            .collect()
    }

    async fn save_alert(&self, alert: &Scored) -> Result<bool, StoreError> {
        let event = serde_json::to_string(alert)
            .map_err(|e| StoreError::Corrupt(crate::cause::Cause::new(e)))?;
        let row = alert::ActiveModel {
            id: Set(alert.id.to_string()),
            series_id: Set(alert.series_id.to_string()),
            at_ms: Set(alert.at_ms),
            event: Set(event),
        };
        let inserted = alert::Entity::insert(row)
            .on_conflict(
                OnConflict::column(alert::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(inserted > 0)
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<Scored>, StoreError> {
        use sea_orm::QuerySelect;
        let mut select = alert::Entity::find().limit(query.limit);
        if let Some(series) = &query.series {
            select = select.filter(alert::Column::SeriesId.eq(series.as_str()));
        }
        if let Some(since) = query.since_ms {
            select = select.filter(alert::Column::AtMs.gte(since));
        }
        select = match query.order {
            AlertOrder::NewestBefore(before) => {
                if let Some(before) = before {
                    select = select.filter(alert::Column::Id.lt(before.to_string()));
                }
                select.order_by_desc(alert::Column::Id)
            }
            AlertOrder::OldestAfter(after) => select
                .filter(alert::Column::Id.gt(after.to_string()))
                .order_by_asc(alert::Column::Id),
        };
        select
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                serde_json::from_str(&row.event).map_err(|e| {
                    StoreError::Corrupt(crate::cause::Cause::context(
                        format!("alert {}", row.id),
                        e,
                    ))
                })
            })
            .collect()
    }

    async fn training_points(
        &self,
        series: &SeriesId,
        version: Version,
    ) -> Result<Vec<Point>, StoreError> {
        let rows = training_point::Entity::find()
            .filter(training_point::Column::SeriesId.eq(series.as_str()))
            .filter(training_point::Column::Version.eq(version_column(version)))
            .order_by_asc(training_point::Column::Seq)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Point {
                timestamp: row.timestamp,
                value: row.value,
            })
            .collect())
    }

    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        sql_webhooks::create(&self.db, webhook).await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        sql_webhooks::all(&self.db).await
    }

    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<bool, StoreError> {
        sql_webhooks::delete(&self.db, id).await
    }

    async fn create_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        sql_webhooks::create_delivery(&self.db, delivery).await
    }

    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        sql_webhooks::save_delivery(&self.db, delivery).await
    }

    async fn undelivered(&self, limit: u64) -> Result<Vec<Delivery>, StoreError> {
        sql_webhooks::undelivered(&self.db, limit).await
    }

    async fn deliveries(
        &self,
        webhook: uuid::Uuid,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        sql_webhooks::deliveries(&self.db, webhook, limit).await
    }

    async fn delivery(&self, id: uuid::Uuid) -> Result<Option<Delivery>, StoreError> {
        sql_webhooks::delivery(&self.db, id).await
    }
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
            assert_eq!(
                crate::store::ModelStore::count_series(&store)
                    .await
                    .unwrap(),
                0
            );
        }
    }

    store_contract!(
        #[ignore = "needs PostgreSQL: run bash .ci/run"]
        postgres,
        postgres().await
    );
}
