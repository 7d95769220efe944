//! Schema migrations, written with SeaQuery so the same migration runs on SQLite (the embedded
//! default) and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_models_and_training_points;
mod m20261124_000002_create_model_state;
mod m20261126_000003_create_alert;
mod m20261205_000004_create_webhooks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_models_and_training_points::Migration),
            Box::new(m20261124_000002_create_model_state::Migration),
            Box::new(m20261126_000003_create_alert::Migration),
            Box::new(m20261205_000004_create_webhooks::Migration),
        ]
    }
}
