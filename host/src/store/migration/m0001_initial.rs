//! Plugin state, plugin documents, metric points and the event log.

use super::byte_ordered_key;
use sea_orm_migration::prelude::*;

pub struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[derive(Iden)]
enum PluginState {
    Table,
    Name,
    Enabled,
    UpdatedAt,
}

#[derive(Iden)]
enum PluginDocument {
    Table,
    Plugin,
    Org,
    Key,
    Value,
    UpdatedAt,
}

#[derive(Iden)]
enum MetricPoint {
    Table,
    Id,
    Plugin,
    Org,
    Name,
    Labels,
    Time,
    Value,
}

#[derive(Iden)]
enum Event {
    Table,
    Id,
    Org,
    Source,
    Kind,
    DedupeKey,
    OccurredAt,
    ReceivedAt,
    Payload,
    Cause,
    Depth,
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(PluginState::Table)
                    .col(ColumnDef::new(PluginState::Name).string().not_null().primary_key())
                    .col(ColumnDef::new(PluginState::Enabled).boolean().not_null())
                    .col(ColumnDef::new(PluginState::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginDocument::Table)
                    .col(ColumnDef::new(PluginDocument::Plugin).string().not_null())
                    .col(ColumnDef::new(PluginDocument::Org).string().not_null())
                    .col(byte_ordered_key(backend, PluginDocument::Key))
                    .col(ColumnDef::new(PluginDocument::Value).json_binary().not_null())
                    .col(ColumnDef::new(PluginDocument::UpdatedAt).big_integer().not_null())
                    .primary_key(
                        Index::create().col(PluginDocument::Plugin).col(PluginDocument::Org).col(PluginDocument::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MetricPoint::Table)
                    .col(ColumnDef::new(MetricPoint::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(MetricPoint::Plugin).string().not_null())
                    .col(ColumnDef::new(MetricPoint::Org).string().not_null())
                    .col(ColumnDef::new(MetricPoint::Name).string().not_null())
                    .col(ColumnDef::new(MetricPoint::Labels).json_binary().not_null())
                    .col(ColumnDef::new(MetricPoint::Time).big_integer().not_null())
                    .col(ColumnDef::new(MetricPoint::Value).double().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("metric_point_org_name_time")
                    .table(MetricPoint::Table)
                    .col(MetricPoint::Org)
                    .col(MetricPoint::Name)
                    .col(MetricPoint::Time)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Event::Table)
                    .col(byte_ordered_key(backend, Event::Id).primary_key())
                    .col(ColumnDef::new(Event::Org).string().not_null())
                    .col(ColumnDef::new(Event::Source).string().not_null())
                    .col(ColumnDef::new(Event::Kind).string().not_null())
                    .col(ColumnDef::new(Event::DedupeKey).string().null())
                    .col(ColumnDef::new(Event::OccurredAt).big_integer().not_null())
                    .col(ColumnDef::new(Event::ReceivedAt).big_integer().not_null())
                    .col(ColumnDef::new(Event::Payload).json_binary().not_null())
                    .col(ColumnDef::new(Event::Cause).string().null())
                    .col(ColumnDef::new(Event::Depth).integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("event_org_source_dedupe")
                    .table(Event::Table)
                    .col(Event::Org)
                    .col(Event::Source)
                    .col(Event::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Event::Table.into_iden(),
            MetricPoint::Table.into_iden(),
            PluginDocument::Table.into_iden(),
            PluginState::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
