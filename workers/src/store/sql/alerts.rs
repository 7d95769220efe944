//! The `alert` table: every alert once, keyed by its event id (which orders them in time).

use async_trait::async_trait;
use entity::alert;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::SqlStore;
use crate::events::Scored;
use crate::store::{AlertOrder, AlertQuery, Alerts, StoreError};

#[async_trait]
impl Alerts for SqlStore {
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
}
