//! The ordered event log, delivery cursors, dead letters, webhook sources,
//! schedule runs, and generations of plugin state for rebuilds.
//!
//! `event` becomes `event_log` with an integer `seq`: the log position that
//! delivery cursors point at. Writers take the log lock before inserting, so
//! `seq` order is commit order and a cursor never skips a late commit.
//! `plugin_document` gains `generation` in its key and `metric_point` a
//! `generation` column: a rebuild writes a new generation beside the live one.

use super::byte_ordered_key;
use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub struct M0003EventLog;

impl MigrationName for M0003EventLog {
    fn name(&self) -> &str {
        "m0003_event_log"
    }
}

#[derive(Iden)]
enum EventLog {
    Table,
    Seq,
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

#[derive(Iden)]
enum PluginDocument {
    Table,
    Plugin,
    Org,
    Generation,
    Key,
    Value,
    UpdatedAt,
}

#[derive(Iden)]
enum MetricPoint {
    Table,
    Plugin,
    Org,
    Generation,
    Name,
    Time,
}

#[derive(Iden)]
enum DeliveryCursor {
    Table,
    Plugin,
    Org,
    Generation,
    Position,
    FailingSeq,
    Attempts,
    LastError,
    RetryAt,
    UpdatedAt,
}

#[derive(Iden)]
enum PluginGeneration {
    Table,
    Plugin,
    Org,
    Live,
    Building,
    RebuildStartedAt,
    RebuildTargetSeq,
    RebuildFinishedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum DeadLetter {
    Table,
    Id,
    Plugin,
    Org,
    EventSeq,
    EventId,
    Attempts,
    Error,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum HookSource {
    Table,
    Org,
    Source,
    Secret,
    PreviousSecret,
    PreviousUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum ScheduleRun {
    Table,
    Plugin,
    Org,
    Schedule,
    LastRunAt,
}

fn text<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.string().not_null();
    column
}

fn big<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.big_integer().not_null();
    column
}

#[async_trait::async_trait]
impl MigrationTrait for M0003EventLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();

        manager
            .create_table(
                Table::create()
                    .table(EventLog::Table)
                    .col(ColumnDef::new(EventLog::Seq).big_integer().not_null().auto_increment().primary_key())
                    .col(byte_ordered_key(backend, EventLog::Id).unique_key())
                    .col(text(EventLog::Org))
                    .col(text(EventLog::Source))
                    .col(text(EventLog::Kind))
                    .col(ColumnDef::new(EventLog::DedupeKey).string().null())
                    .col(big(EventLog::OccurredAt))
                    .col(big(EventLog::ReceivedAt))
                    .col(ColumnDef::new(EventLog::Payload).json_binary().not_null())
                    .col(ColumnDef::new(EventLog::Cause).string().null())
                    .col(ColumnDef::new(EventLog::Depth).integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("event_log_org_seq", vec![EventLog::Org, EventLog::Seq]),
            ("event_log_org_kind_seq", vec![EventLog::Org, EventLog::Kind, EventLog::Seq]),
        ] {
            let mut index = Index::create();
            index.name(name).table(EventLog::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("event_log_org_source_dedupe")
                    .table(EventLog::Table)
                    .col(EventLog::Org)
                    .col(EventLog::Source)
                    .col(EventLog::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO event_log (id, org, source, kind, dedupe_key, occurred_at, received_at, payload, cause, depth) \
             SELECT id, org, source, kind, dedupe_key, occurred_at, received_at, payload, cause, depth FROM event ORDER BY id",
        )
        .await?;
        manager.drop_table(Table::drop().table(Alias::new("event")).to_owned()).await?;

        // Re-key plugin documents by generation: a new table, the rows copied at generation 0.
        manager
            .rename_table(Table::rename().table(PluginDocument::Table, Alias::new("plugin_document_v1")).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginDocument::Table)
                    .col(text(PluginDocument::Plugin))
                    .col(text(PluginDocument::Org))
                    .col(big(PluginDocument::Generation))
                    .col(byte_ordered_key(backend, PluginDocument::Key))
                    .col(ColumnDef::new(PluginDocument::Value).json_binary().not_null())
                    .col(big(PluginDocument::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(PluginDocument::Plugin)
                            .col(PluginDocument::Org)
                            .col(PluginDocument::Generation)
                            .col(PluginDocument::Key),
                    )
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO plugin_document (plugin, org, generation, key, value, updated_at) \
             SELECT plugin, org, 0, key, value, updated_at FROM plugin_document_v1",
        )
        .await?;
        manager.drop_table(Table::drop().table(Alias::new("plugin_document_v1")).to_owned()).await?;

        manager
            .alter_table(
                Table::alter()
                    .table(MetricPoint::Table)
                    .add_column(ColumnDef::new(MetricPoint::Generation).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("metric_point_plugin_generation")
                    .table(MetricPoint::Table)
                    .col(MetricPoint::Plugin)
                    .col(MetricPoint::Org)
                    .col(MetricPoint::Generation)
                    .col(MetricPoint::Name)
                    .col(MetricPoint::Time)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeliveryCursor::Table)
                    .col(text(DeliveryCursor::Plugin))
                    .col(text(DeliveryCursor::Org))
                    .col(big(DeliveryCursor::Generation))
                    .col(big(DeliveryCursor::Position))
                    .col(ColumnDef::new(DeliveryCursor::FailingSeq).big_integer().null())
                    .col(ColumnDef::new(DeliveryCursor::Attempts).integer().not_null())
                    .col(ColumnDef::new(DeliveryCursor::LastError).string().null())
                    .col(ColumnDef::new(DeliveryCursor::RetryAt).big_integer().null())
                    .col(big(DeliveryCursor::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(DeliveryCursor::Plugin)
                            .col(DeliveryCursor::Org)
                            .col(DeliveryCursor::Generation),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginGeneration::Table)
                    .col(text(PluginGeneration::Plugin))
                    .col(text(PluginGeneration::Org))
                    .col(big(PluginGeneration::Live))
                    .col(ColumnDef::new(PluginGeneration::Building).big_integer().null())
                    .col(ColumnDef::new(PluginGeneration::RebuildStartedAt).big_integer().null())
                    .col(ColumnDef::new(PluginGeneration::RebuildTargetSeq).big_integer().null())
                    .col(ColumnDef::new(PluginGeneration::RebuildFinishedAt).big_integer().null())
                    .col(big(PluginGeneration::UpdatedAt))
                    .primary_key(Index::create().col(PluginGeneration::Plugin).col(PluginGeneration::Org))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeadLetter::Table)
                    .col(byte_ordered_key(backend, DeadLetter::Id).primary_key())
                    .col(text(DeadLetter::Plugin))
                    .col(text(DeadLetter::Org))
                    .col(big(DeadLetter::EventSeq))
                    .col(text(DeadLetter::EventId))
                    .col(ColumnDef::new(DeadLetter::Attempts).integer().not_null())
                    .col(ColumnDef::new(DeadLetter::Error).text().not_null())
                    .col(text(DeadLetter::Status))
                    .col(big(DeadLetter::CreatedAt))
                    .col(big(DeadLetter::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("dead_letter_plugin_event")
                    .table(DeadLetter::Table)
                    .col(DeadLetter::Plugin)
                    .col(DeadLetter::Org)
                    .col(DeadLetter::EventSeq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HookSource::Table)
                    .col(text(HookSource::Org))
                    .col(text(HookSource::Source))
                    .col(text(HookSource::Secret))
                    .col(ColumnDef::new(HookSource::PreviousSecret).string().null())
                    .col(ColumnDef::new(HookSource::PreviousUntil).big_integer().null())
                    .col(big(HookSource::CreatedAt))
                    .col(big(HookSource::UpdatedAt))
                    .primary_key(Index::create().col(HookSource::Org).col(HookSource::Source))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScheduleRun::Table)
                    .col(text(ScheduleRun::Plugin))
                    .col(text(ScheduleRun::Org))
                    .col(text(ScheduleRun::Schedule))
                    .col(big(ScheduleRun::LastRunAt))
                    .primary_key(
                        Index::create().col(ScheduleRun::Plugin).col(ScheduleRun::Org).col(ScheduleRun::Schedule),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
