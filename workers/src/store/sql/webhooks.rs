//! The webhook tables (`webhook`, `webhook_delivery`): registered endpoints and every delivery
//! with its attempts, for `SqlStore` (SQLite and PostgreSQL alike).

use async_trait::async_trait;
use entity::{webhook, webhook_delivery};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;

use super::SqlStore;
use crate::store::{Delivery, StoreError, Webhook, Webhooks};

fn uuid(text: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| {
        StoreError::Corrupt(crate::cause::Cause::context(format!("{what} {text:?}"), e))
    })
}

pub async fn create(db: &DatabaseConnection, hook: &Webhook) -> Result<(), StoreError> {
    webhook::Entity::insert(webhook::ActiveModel {
        id: Set(hook.id.to_string()),
        url: Set(hook.url.clone()),
        secret: Set(hook.secret.clone()),
        created_at_ms: Set(hook.created_at_ms),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn all(db: &DatabaseConnection) -> Result<Vec<Webhook>, StoreError> {
    webhook::Entity::find()
        .order_by_asc(webhook::Column::CreatedAtMs)
        .order_by_asc(webhook::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Webhook {
                id: uuid(&row.id, "webhook id")?,
                url: row.url,
                secret: row.secret,
                created_at_ms: row.created_at_ms,
            })
        })
        .collect()
}

pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::WebhookId.eq(id.to_string()))
        .exec(&txn)
        .await?;
    let deleted = webhook::Entity::delete_by_id(id.to_string())
        .exec(&txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    Ok(deleted > 0)
}

fn row(delivery: &Delivery) -> Result<webhook_delivery::ActiveModel, StoreError> {
    let attempts = serde_json::to_string(&delivery.attempts)
        .map_err(|e| StoreError::Corrupt(crate::cause::Cause::new(e)))?;
    Ok(webhook_delivery::ActiveModel {
        id: Set(delivery.id.to_string()),
        webhook_id: Set(delivery.webhook_id.to_string()),
        created_at_ms: Set(delivery.created_at_ms),
        delivered: Set(delivery.delivered),
        payload: Set(delivery.payload.clone()),
        attempts: Set(attempts),
    })
}

pub async fn create_delivery(
    db: &DatabaseConnection,
    delivery: &Delivery,
) -> Result<bool, StoreError> {
    let inserted = webhook_delivery::Entity::insert(row(delivery)?)
        .on_conflict(
            OnConflict::column(webhook_delivery::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

pub async fn undelivered(db: &DatabaseConnection, limit: u64) -> Result<Vec<Delivery>, StoreError> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Delivered.eq(false))
        .order_by_asc(webhook_delivery::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(delivery_of)
        .collect()
}

pub async fn save_delivery(db: &DatabaseConnection, delivery: &Delivery) -> Result<(), StoreError> {
    webhook_delivery::Entity::insert(row(delivery)?)
        .on_conflict(
            OnConflict::column(webhook_delivery::Column::Id)
                .update_columns([
                    webhook_delivery::Column::Delivered,
                    webhook_delivery::Column::Attempts,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

fn delivery_of(row: webhook_delivery::Model) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: uuid(&row.id, "delivery id")?,
        webhook_id: uuid(&row.webhook_id, "webhook id")?,
        created_at_ms: row.created_at_ms,
        delivered: row.delivered,
        attempts: serde_json::from_str(&row.attempts).map_err(|e| {
            StoreError::Corrupt(crate::cause::Cause::context(
                format!("delivery {}", row.id),
                e,
            ))
        })?,
        payload: row.payload,
    })
}

pub async fn deliveries(
    db: &DatabaseConnection,
    webhook: Uuid,
    limit: u64,
) -> Result<Vec<Delivery>, StoreError> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::WebhookId.eq(webhook.to_string()))
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(delivery_of)
        .collect()
}

pub async fn delivery(db: &DatabaseConnection, id: Uuid) -> Result<Option<Delivery>, StoreError> {
    webhook_delivery::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .map(delivery_of)
        .transpose()
}

#[async_trait]
impl Webhooks for SqlStore {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        create(&self.db, webhook).await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        all(&self.db).await
    }

    async fn delete_webhook(&self, id: uuid::Uuid) -> Result<bool, StoreError> {
        delete(&self.db, id).await
    }

    async fn create_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        create_delivery(&self.db, delivery).await
    }

    async fn save_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        save_delivery(&self.db, delivery).await
    }

    async fn undelivered(&self, limit: u64) -> Result<Vec<Delivery>, StoreError> {
        undelivered(&self.db, limit).await
    }

    async fn deliveries(
        &self,
        webhook: uuid::Uuid,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        deliveries(&self.db, webhook, limit).await
    }

    async fn delivery(&self, id: uuid::Uuid) -> Result<Option<Delivery>, StoreError> {
        delivery(&self.db, id).await
    }
}
