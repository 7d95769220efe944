//! A stored alert: one event of the `anomalies` topic, kept whole as JSON.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert")]
pub struct Model {
    /// The event id (UUIDv7 text): unique, and in time order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub series_id: String,
    pub at_ms: i64,
    #[sea_orm(column_type = "Text")]
    pub event: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
