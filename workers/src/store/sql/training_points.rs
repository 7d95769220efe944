//! The `training_point` table: a version's points, written idempotently (a redelivered chunk adds
//! nothing), read back in their original order.

use async_trait::async_trait;
use entity::training_point;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Set, Statement,
    TransactionTrait,
};

use super::{SqlStore, pg_copy, version_column};
use crate::domain::{Point, SeriesId, Version};
use crate::store::{StoreError, TrainingPoints};

/// Rows per INSERT: well under SQLite's 32,766 bound parameters at five columns a row.
const ROWS_PER_STATEMENT: usize = 1000;

/// Inserts a version's training points (again: nothing), returning how many rows were new.
pub(super) async fn insert_points(
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

#[async_trait]
impl TrainingPoints for SqlStore {
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
}
