//! One message to one webhook endpoint and every attempt to deliver it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    /// The message id (UUIDv7 text, in time order): the `webhook-id` header of every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub webhook_id: String,
    pub created_at_ms: i64,
    pub delivered: bool,
    /// The JSON body sent.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// The attempts so far, as a JSON array.
    #[sea_orm(column_type = "Text")]
    pub attempts: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
