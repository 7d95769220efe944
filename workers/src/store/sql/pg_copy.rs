//! PostgreSQL's fast path for training points: binary `COPY`, which skips the parsing and planning
//! of an `INSERT` per chunk. `COPY` has no `ON CONFLICT`, so it is used only where a row cannot be
//! there already, or where finding one is a cheap signal to fall back:
//! - a fit writes its points in the transaction that claims their version (`claim_with_points`):
//!   the version is new, so are its rows;
//! - the training-data consumer copies a chunk (`copy_points`) and, if any of its rows is already
//!   there (a redelivered chunk), reports it so the caller writes it with the idempotent insert.
//!
//! sea-orm has no `COPY` and does not lend its transaction's connection, so these run on its sqlx
//! pool.

use entity::model;
use sea_orm::sqlx::{self, PgPool, Row, postgres::PgConnection};

use super::models::{Claim, ModelRow};
use crate::domain::{Point, SeriesId, Version};
use crate::store::StoreError;

/// Bytes of `COPY` data sent in one message.
const SEND_BYTES: usize = 1 << 20;

const COPY_POINTS: &str = r#"COPY training_point (series_id, version, seq, "timestamp", value)
    FROM STDIN (FORMAT binary)"#;

fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(crate::cause::Cause::new(err))
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// One attempt of `SqlStore::claim_version` on PostgreSQL: the next version of `row.series_id`
/// (past any version left by a failed publish) and `points` as its training set, in one
/// transaction.
pub(super) async fn claim_with_points(
    pool: &PgPool,
    row: &ModelRow<'_>,
    points: &[Point],
) -> Result<Claim, StoreError> {
    let mut txn = pool.begin().await.map_err(unavailable)?;
    let latest: Option<i32> = sqlx::query_scalar(
        "SELECT GREATEST(
            (SELECT max(version) FROM model WHERE series_id = $1),
            (SELECT max(version) FROM training_point WHERE series_id = $1))",
    )
    .bind(row.series_id.as_str())
    .fetch_one(&mut *txn)
    .await
    .map_err(unavailable)?;
    let next = match latest {
        None => Version::FIRST,
        Some(n) => u32::try_from(n)
            .ok()
            .and_then(|n| Version::from_number(n).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(crate::cause::Cause::message(format!(
                    "series {}: version {n}",
                    row.series_id
                )))
            })?
            .next(),
    };
    let version = i32::try_from(next.number()).unwrap_or(i32::MAX);
    let inserted = sqlx::query(
        "INSERT INTO model (series_id, version, detector, parameters, points_used, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(row.series_id.as_str())
    .bind(version)
    .bind(row.detector)
    .bind(row.parameters)
    .bind(row.points_used)
    .bind(row.created_at_ms)
    .fetch_one(&mut *txn)
    .await;
    let id: i64 = match inserted {
        Ok(inserted) => inserted.try_get(0).map_err(unavailable)?,
        Err(err) if is_unique_violation(&err) => return Ok(Claim::Taken),
        Err(err) => return Err(unavailable(err)),
    };
    copy(&mut txn, row.series_id, next, 0, points)
        .await
        .map_err(unavailable)?;
    txn.commit().await.map_err(unavailable)?;
    Ok(Claim::Claimed(model::Model {
        id,
        series_id: row.series_id.to_string(),
        version,
        detector: row.detector.to_owned(),
        parameters: row.parameters.to_owned(),
        points_used: row.points_used,
        created_at_ms: row.created_at_ms,
    }))
}

/// Copies a chunk of a version's points in its own transaction: `Some(rows)` when written,
/// `None` when one of its rows was already there (nothing is written then).
pub(super) async fn copy_points(
    pool: &PgPool,
    series: &SeriesId,
    version: Version,
    first_seq: u32,
    points: &[Point],
) -> Result<Option<u64>, StoreError> {
    let mut txn = pool.begin().await.map_err(unavailable)?;
    match copy(&mut txn, series, version, first_seq, points).await {
        Ok(rows) => {
            txn.commit().await.map_err(unavailable)?;
            Ok(Some(rows))
        }
        Err(err) if is_unique_violation(&err) => Ok(None),
        Err(err) => Err(unavailable(err)),
    }
}

async fn copy(
    connection: &mut PgConnection,
    series: &SeriesId,
    version: Version,
    first_seq: u32,
    points: &[Point],
) -> Result<u64, sqlx::Error> {
    let mut copy = connection.copy_in_raw(COPY_POINTS).await?;
    let rows = BinaryRows::new(series, version, first_seq);
    let mut buffer = Vec::with_capacity(SEND_BYTES + 256);
    rows.header(&mut buffer);
    for (i, point) in points.iter().enumerate() {
        rows.row(&mut buffer, i, point);
        if buffer.len() >= SEND_BYTES {
            copy.send(std::mem::take(&mut buffer)).await?;
            buffer.reserve(SEND_BYTES + 256);
        }
    }
    BinaryRows::trailer(&mut buffer);
    copy.send(buffer).await?;
    copy.finish().await
}

/// `COPY … (FORMAT binary)` encoding of training points: a header, then per row the field count
/// and each field as its length and big-endian bytes, then a trailer.
struct BinaryRows<'a> {
    series: &'a [u8],
    version: i32,
    first_seq: u32,
}

impl<'a> BinaryRows<'a> {
    fn new(series: &'a SeriesId, version: Version, first_seq: u32) -> Self {
        Self {
            series: series.as_str().as_bytes(),
            version: i32::try_from(version.number()).unwrap_or(i32::MAX),
            first_seq,
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        out.extend_from_slice(&0i32.to_be_bytes()); // flags
        out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    }

    fn row(&self, out: &mut Vec<u8>, index: usize, point: &Point) {
        let seq = i32::try_from(self.first_seq as usize + index).unwrap_or(i32::MAX);
        out.extend_from_slice(&5i16.to_be_bytes());
        out.extend_from_slice(&(self.series.len() as i32).to_be_bytes());
        out.extend_from_slice(self.series);
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&point.timestamp.to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&point.value.to_bits().to_be_bytes());
    }

    fn trailer(out: &mut Vec<u8>) {
        out.extend_from_slice(&(-1i16).to_be_bytes());
    }
}
