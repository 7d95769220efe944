//! Models (unique per series and version) and their training points (keyed for idempotent
//! redelivery).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Model {
    Table,
    Id,
    SeriesId,
    Version,
    Detector,
    Parameters,
    PointsUsed,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum TrainingPoint {
    Table,
    SeriesId,
    Version,
    Seq,
    Timestamp,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Model::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Model::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Model::SeriesId).string_len(128).not_null())
                    .col(ColumnDef::new(Model::Version).integer().not_null())
                    .col(ColumnDef::new(Model::Detector).string_len(64).not_null())
                    .col(ColumnDef::new(Model::Parameters).text().not_null())
                    .col(ColumnDef::new(Model::PointsUsed).integer().not_null())
                    .col(ColumnDef::new(Model::CreatedAtMs).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("model_series_version_key")
                    .table(Model::Table)
                    .col(Model::SeriesId)
                    .col(Model::Version)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TrainingPoint::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(TrainingPoint::SeriesId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(TrainingPoint::Version).integer().not_null())
                    .col(ColumnDef::new(TrainingPoint::Seq).integer().not_null())
                    .col(
                        ColumnDef::new(TrainingPoint::Timestamp)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TrainingPoint::Value).double().not_null())
                    .primary_key(
                        Index::create()
                            .col(TrainingPoint::SeriesId)
                            .col(TrainingPoint::Version)
                            .col(TrainingPoint::Seq),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TrainingPoint::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Model::Table).to_owned())
            .await
    }
}
