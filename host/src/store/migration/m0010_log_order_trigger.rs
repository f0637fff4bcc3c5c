//! The event log's commit order on PostgreSQL, kept by the database itself: a
//! statement trigger takes the log lock before any row of an insert into
//! `event_log` draws its `seq`, and the lock is held until that transaction
//! commits. So `seq` grows in commit order whoever inserts, and an append is
//! one statement (one round trip) instead of lock, insert and commit. SQLite
//! has one writer and needs none of this.

use crate::bus::log::LOG_LOCK;
use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

pub struct M0010LogOrderTrigger;

impl MigrationName for M0010LogOrderTrigger {
    fn name(&self) -> &str {
        "m0010_log_order_trigger"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0010LogOrderTrigger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE FUNCTION event_log_take_order_lock() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_advisory_xact_lock({LOG_LOCK}); RETURN NULL; END $$"
        ))
        .await?;
        // Statement-level BEFORE triggers fire before the first row is formed,
        // so before its `seq` default is drawn.
        db.execute_unprepared(
            "CREATE TRIGGER event_log_commit_order BEFORE INSERT ON event_log \
             FOR EACH STATEMENT EXECUTE FUNCTION event_log_take_order_lock()",
        )
        .await?;
        Ok(())
    }
}
