//! The `model` table: versions claimed per series (a race between processes is settled by the
//! unique key), read back as `TrainedModel`s.

use async_trait::async_trait;
use entity::{model, training_point};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Set, SqlErr, Statement, TransactionTrait,
};

use super::training_points::insert_points;
use super::{SqlStore, pg_copy, version_column};
use crate::domain::{Point, SeriesId, Version};
use crate::model::{StoredParameters, TrainedModel};
use crate::store::{Models, NewModel, StoreError};

/// Fits of one series in different processes race for the next version; the unique key settles
/// it and the loser tries the next number.
const VERSION_ATTEMPTS: usize = 64;

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

#[async_trait]
impl Models for SqlStore {
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
}
