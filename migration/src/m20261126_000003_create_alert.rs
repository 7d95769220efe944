//! Stored alerts: every event of the `anomalies` topic, once (keyed by its id, a UUIDv7 whose
//! text sorts in time order), so alerts survive restarts and a subscriber can replay from a cursor.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Alert {
    Table,
    Id,
    SeriesId,
    AtMs,
    Event,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alert::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Alert::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Alert::SeriesId).string_len(128).not_null())
                    .col(ColumnDef::new(Alert::AtMs).big_integer().not_null())
                    .col(ColumnDef::new(Alert::Event).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("alert_series_id_id")
                    .table(Alert::Table)
                    .col(Alert::SeriesId)
                    .col(Alert::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alert::Table).to_owned())
            .await
    }
}
