//! A trained model: one row per (series, version). The detector's fitted parameters are kept as
//! JSON so new detectors need no migration.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "model")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub series_id: String,
    /// 1 for `v1`, 2 for `v2`, ...; unique together with `series_id`.
    pub version: i32,
    pub detector: String,
    #[sea_orm(column_type = "Text")]
    pub parameters: String,
    pub points_used: i32,
    /// Unix time in milliseconds.
    pub created_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
