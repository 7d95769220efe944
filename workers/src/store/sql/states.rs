//! The `model_state` table: the latest checkpoint of each version's online learning state.

use async_trait::async_trait;
use entity::model_state;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};

use super::{SqlStore, version_column};
use crate::domain::{SeriesId, Version};
use crate::live::LiveState;
use crate::store::{LiveStates, StoreError};

#[async_trait]
impl LiveStates for SqlStore {
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
}
