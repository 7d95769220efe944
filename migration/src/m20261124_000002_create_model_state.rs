//! Checkpoints of online learning state, one row per model version.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ModelState {
    Table,
    SeriesId,
    Version,
    Seen,
    State,
    UpdatedAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ModelState::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ModelState::SeriesId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ModelState::Version).integer().not_null())
                    .col(ColumnDef::new(ModelState::Seen).big_integer().not_null())
                    .col(ColumnDef::new(ModelState::State).text().not_null())
                    .col(
                        ColumnDef::new(ModelState::UpdatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ModelState::SeriesId)
                            .col(ModelState::Version),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ModelState::Table).to_owned())
            .await
    }
}
