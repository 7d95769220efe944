//! The latest checkpoint of a model version's online learning state, so a restarted predictor
//! carries on where it stopped.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "model_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub series_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    /// Points observed since the fit; a checkpoint never replaces a later one.
    pub seen: i64,
    #[sea_orm(column_type = "Text")]
    pub state: String,
    pub updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
