//! One training point of one model version. The key (series, version, seq) is what makes a
//! redelivered training batch idempotent: inserting it again adds nothing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "training_point")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub series_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    /// Position of the point in the batch it was trained on.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    pub timestamp: i64,
    #[sea_orm(column_type = "Double")]
    pub value: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
