//! Alerts: each occurrence with its labels and every transition it went
//! through, silences, notification channels, and the notification outbox
//! that is written in the same transaction as the transition it announces.
//!
//! One occurrence of a (org, source, key) is open at a time: a partial unique
//! index over the ones not resolved.

use super::byte_ordered_key;
use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub struct M0007Alerts;

impl MigrationName for M0007Alerts {
    fn name(&self) -> &str {
        "m0007_alerts"
    }
}

#[derive(Iden)]
enum Alert {
    Table,
    Id,
    Org,
    Source,
    Key,
    Occurrence,
    PreviousId,
    State,
    Severity,
    Summary,
    Labels,
    Details,
    Links,
    Subject,
    StartedAt,
    UpdatedAt,
    LastRaisedAt,
    AcknowledgedAt,
    AcknowledgedBy,
    AckComment,
    ResolvedAt,
    ResolvedBy,
    ResolveComment,
    ResolveAfterMs,
    ExpiresAt,
}

#[derive(Iden)]
enum AlertLabel {
    Table,
    AlertId,
    Org,
    Name,
    Value,
}

#[derive(Iden)]
enum AlertTransition {
    Table,
    Seq,
    AlertId,
    Org,
    At,
    Kind,
    Actor,
    Comment,
    Changes,
}

#[derive(Iden)]
enum Silence {
    Table,
    Id,
    Org,
    Matchers,
    StartsAt,
    EndsAt,
    CreatedBy,
    Comment,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden)]
enum AlertChannel {
    Table,
    Id,
    Org,
    Name,
    Kind,
    Url,
    Secret,
    Matchers,
    MinSeverity,
    RepeatIntervalS,
    CreatedAt,
    UpdatedAt,
    LastSuccessAt,
    LastFailureAt,
    LastError,
    Delivered,
    Failed,
}

#[derive(Iden)]
enum Notification {
    Table,
    Id,
    Org,
    ChannelId,
    AlertId,
    Reason,
    Dedupe,
    Payload,
    CreatedAt,
    DueAt,
    Attempts,
    LastError,
    State,
    DeliveredAt,
    ClaimedUntil,
}

fn text<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.string().not_null();
    column
}

fn optional_text<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.string().null();
    column
}

fn big<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.big_integer().not_null();
    column
}

fn optional_big<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.big_integer().null();
    column
}

fn json<T: IntoIden>(name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.json_binary().not_null();
    column
}

async fn index<T: Iden + 'static>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: Vec<Alias>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column);
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

fn cols(names: &[&str]) -> Vec<Alias> {
    names.iter().map(|name| Alias::new(*name)).collect()
}

#[async_trait::async_trait]
impl MigrationTrait for M0007Alerts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Alert::Table)
                    .col(byte_ordered_key(backend, Alert::Id).primary_key())
                    .col(text(Alert::Org))
                    .col(text(Alert::Source))
                    .col(byte_ordered_key(backend, Alert::Key))
                    .col(ColumnDef::new(Alert::Occurrence).integer().not_null())
                    .col(optional_text(Alert::PreviousId))
                    .col(text(Alert::State))
                    .col(text(Alert::Severity))
                    .col(text(Alert::Summary))
                    .col(json(Alert::Labels))
                    .col(ColumnDef::new(Alert::Details).json_binary().null())
                    .col(json(Alert::Links))
                    .col(optional_text(Alert::Subject))
                    .col(big(Alert::StartedAt))
                    .col(big(Alert::UpdatedAt))
                    .col(big(Alert::LastRaisedAt))
                    .col(optional_big(Alert::AcknowledgedAt))
                    .col(optional_text(Alert::AcknowledgedBy))
                    .col(optional_text(Alert::AckComment))
                    .col(optional_big(Alert::ResolvedAt))
                    .col(optional_text(Alert::ResolvedBy))
                    .col(optional_text(Alert::ResolveComment))
                    .col(optional_big(Alert::ResolveAfterMs))
                    .col(optional_big(Alert::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "alert_org_id", Alert::Table, cols(&["org", "id"]), false).await?;
        index(manager, "alert_org_state", Alert::Table, cols(&["org", "state", "id"]), false).await?;
        index(manager, "alert_org_subject", Alert::Table, cols(&["org", "subject", "id"]), false).await?;
        index(manager, "alert_expires", Alert::Table, cols(&["expires_at"]), false).await?;
        index(manager, "alert_previous", Alert::Table, cols(&["previous_id"]), false).await?;
        index(manager, "alert_org_source_key", Alert::Table, cols(&["org", "source", "key", "occurrence"]), false)
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX alert_open_key ON alert (org, source, key) WHERE state <> 'resolved'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AlertLabel::Table)
                    .col(byte_ordered_key(backend, AlertLabel::AlertId))
                    .col(text(AlertLabel::Org))
                    .col(text(AlertLabel::Name))
                    .col(text(AlertLabel::Value))
                    .primary_key(Index::create().col(AlertLabel::AlertId).col(AlertLabel::Name))
                    .to_owned(),
            )
            .await?;
        index(manager, "alert_label_lookup", AlertLabel::Table, cols(&["org", "name", "value", "alert_id"]), false)
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AlertTransition::Table)
                    .col(ColumnDef::new(AlertTransition::Seq).big_integer().not_null().auto_increment().primary_key())
                    .col(text(AlertTransition::AlertId))
                    .col(text(AlertTransition::Org))
                    .col(big(AlertTransition::At))
                    .col(text(AlertTransition::Kind))
                    .col(text(AlertTransition::Actor))
                    .col(optional_text(AlertTransition::Comment))
                    .col(ColumnDef::new(AlertTransition::Changes).json_binary().null())
                    .to_owned(),
            )
            .await?;
        index(manager, "alert_transition_alert", AlertTransition::Table, cols(&["alert_id", "seq"]), false).await?;

        manager
            .create_table(
                Table::create()
                    .table(Silence::Table)
                    .col(byte_ordered_key(backend, Silence::Id).primary_key())
                    .col(text(Silence::Org))
                    .col(json(Silence::Matchers))
                    .col(big(Silence::StartsAt))
                    .col(big(Silence::EndsAt))
                    .col(text(Silence::CreatedBy))
                    .col(text(Silence::Comment))
                    .col(big(Silence::CreatedAt))
                    .col(big(Silence::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "silence_org_ends", Silence::Table, cols(&["org", "ends_at"]), false).await?;

        manager
            .create_table(
                Table::create()
                    .table(AlertChannel::Table)
                    .col(byte_ordered_key(backend, AlertChannel::Id).primary_key())
                    .col(text(AlertChannel::Org))
                    .col(byte_ordered_key(backend, AlertChannel::Name))
                    .col(text(AlertChannel::Kind))
                    .col(text(AlertChannel::Url))
                    .col(optional_text(AlertChannel::Secret))
                    .col(json(AlertChannel::Matchers))
                    .col(text(AlertChannel::MinSeverity))
                    .col(big(AlertChannel::RepeatIntervalS))
                    .col(big(AlertChannel::CreatedAt))
                    .col(big(AlertChannel::UpdatedAt))
                    .col(optional_big(AlertChannel::LastSuccessAt))
                    .col(optional_big(AlertChannel::LastFailureAt))
                    .col(optional_text(AlertChannel::LastError))
                    .col(big(AlertChannel::Delivered))
                    .col(big(AlertChannel::Failed))
                    .to_owned(),
            )
            .await?;
        index(manager, "alert_channel_org_name", AlertChannel::Table, cols(&["org", "name"]), true).await?;

        manager
            .create_table(
                Table::create()
                    .table(Notification::Table)
                    .col(byte_ordered_key(backend, Notification::Id).primary_key())
                    .col(text(Notification::Org))
                    .col(text(Notification::ChannelId))
                    .col(optional_text(Notification::AlertId))
                    .col(text(Notification::Reason))
                    .col(text(Notification::Dedupe))
                    .col(json(Notification::Payload))
                    .col(big(Notification::CreatedAt))
                    .col(big(Notification::DueAt))
                    .col(ColumnDef::new(Notification::Attempts).integer().not_null())
                    .col(optional_text(Notification::LastError))
                    .col(text(Notification::State))
                    .col(optional_big(Notification::DeliveredAt))
                    .col(optional_big(Notification::ClaimedUntil))
                    .to_owned(),
            )
            .await?;
        index(manager, "notification_channel_dedupe", Notification::Table, cols(&["channel_id", "dedupe"]), true)
            .await?;
        index(manager, "notification_due", Notification::Table, cols(&["state", "due_at"]), false).await?;
        index(
            manager,
            "notification_alert",
            Notification::Table,
            cols(&["channel_id", "alert_id", "created_at"]),
            false,
        )
        .await?;
        Ok(())
    }
}
