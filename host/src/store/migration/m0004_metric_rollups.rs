//! Rollups of metric points, maintained as points arrive so that dashboards
//! never scan raw points.
//!
//! `metric_series` names each (plugin, org, generation, metric, label set) once.
//! `metric_rollup` holds count, sum, min and max per series and bucket (an hour
//! or a UTC day) and `metric_rollup_bin` the DDSketch bins of the same bucket,
//! so percentiles merge across buckets and series. Both are updated with
//! upserts that add to what is there, so concurrent writers never lose a point.
//! `metric_point` gains its series and an optional key: a point recorded under
//! a key replaces the earlier one (figures that change as late facts arrive).

use sea_orm_migration::prelude::*;

pub struct M0004MetricRollups;

impl MigrationName for M0004MetricRollups {
    fn name(&self) -> &str {
        "m0004_metric_rollups"
    }
}

#[derive(Iden)]
enum MetricSeries {
    Table,
    Id,
    Plugin,
    Org,
    Generation,
    Name,
    Labels,
    LabelsKey,
}

#[derive(Iden)]
enum MetricPoint {
    Table,
    Plugin,
    Org,
    Generation,
    SeriesId,
    Key,
    Time,
}

#[derive(Iden)]
enum MetricRollup {
    Table,
    SeriesId,
    Level,
    Bucket,
    Count,
    Sum,
    Min,
    Max,
}

#[derive(Iden)]
enum MetricRollupBin {
    Table,
    SeriesId,
    Level,
    Bucket,
    Bin,
    Count,
}

#[async_trait::async_trait]
impl MigrationTrait for M0004MetricRollups {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MetricSeries::Table)
                    .col(ColumnDef::new(MetricSeries::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(MetricSeries::Plugin).string().not_null())
                    .col(ColumnDef::new(MetricSeries::Org).string().not_null())
                    .col(ColumnDef::new(MetricSeries::Generation).big_integer().not_null())
                    .col(ColumnDef::new(MetricSeries::Name).string().not_null())
                    .col(ColumnDef::new(MetricSeries::Labels).json_binary().not_null())
                    .col(ColumnDef::new(MetricSeries::LabelsKey).string().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("metric_series_identity")
                    .table(MetricSeries::Table)
                    .col(MetricSeries::Plugin)
                    .col(MetricSeries::Org)
                    .col(MetricSeries::Generation)
                    .col(MetricSeries::Name)
                    .col(MetricSeries::LabelsKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MetricRollup::Table)
                    .col(ColumnDef::new(MetricRollup::SeriesId).big_integer().not_null())
                    .col(ColumnDef::new(MetricRollup::Level).small_integer().not_null())
                    .col(ColumnDef::new(MetricRollup::Bucket).big_integer().not_null())
                    .col(ColumnDef::new(MetricRollup::Count).big_integer().not_null())
                    .col(ColumnDef::new(MetricRollup::Sum).double().not_null())
                    .col(ColumnDef::new(MetricRollup::Min).double().not_null())
                    .col(ColumnDef::new(MetricRollup::Max).double().not_null())
                    .primary_key(
                        Index::create().col(MetricRollup::SeriesId).col(MetricRollup::Level).col(MetricRollup::Bucket),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MetricRollupBin::Table)
                    .col(ColumnDef::new(MetricRollupBin::SeriesId).big_integer().not_null())
                    .col(ColumnDef::new(MetricRollupBin::Level).small_integer().not_null())
                    .col(ColumnDef::new(MetricRollupBin::Bucket).big_integer().not_null())
                    .col(ColumnDef::new(MetricRollupBin::Bin).integer().not_null())
                    .col(ColumnDef::new(MetricRollupBin::Count).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(MetricRollupBin::SeriesId)
                            .col(MetricRollupBin::Level)
                            .col(MetricRollupBin::Bucket)
                            .col(MetricRollupBin::Bin),
                    )
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            ColumnDef::new(MetricPoint::SeriesId).big_integer().null().to_owned(),
            ColumnDef::new(MetricPoint::Key).string().null().to_owned(),
        ] {
            manager.alter_table(Table::alter().table(MetricPoint::Table).add_column(column).to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("metric_point_key")
                    .table(MetricPoint::Table)
                    .col(MetricPoint::Plugin)
                    .col(MetricPoint::Org)
                    .col(MetricPoint::Generation)
                    .col(MetricPoint::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("metric_point_series_time")
                    .table(MetricPoint::Table)
                    .col(MetricPoint::SeriesId)
                    .col(MetricPoint::Time)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in
            [MetricRollupBin::Table.into_iden(), MetricRollup::Table.into_iden(), MetricSeries::Table.into_iden()]
        {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
