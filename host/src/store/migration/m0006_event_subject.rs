//! Events about one person: `event_log.subject` names the user an event is
//! about (attendance records, for example). The log shows such an event to
//! that user alone; the rest of the org sees what plugins derive from it.

use sea_orm_migration::prelude::*;

pub struct M0006EventSubject;

impl MigrationName for M0006EventSubject {
    fn name(&self) -> &str {
        "m0006_event_subject"
    }
}

#[derive(Iden)]
enum EventLog {
    Table,
    Subject,
}

#[async_trait::async_trait]
impl MigrationTrait for M0006EventSubject {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let subject = ColumnDef::new(EventLog::Subject).string().null().to_owned();
        manager.alter_table(Table::alter().table(EventLog::Table).add_column(subject).to_owned()).await
    }
}
