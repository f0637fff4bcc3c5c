//! An entry of the event log: every input, and every event a plugin emits.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "event_log")]
pub struct Model {
    /// The log position: commit order, what delivery cursors point at.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// A ULID: the public id, sortable by creation time.
    #[sea_orm(unique)]
    pub id: String,
    pub org: String,
    pub source: String,
    pub kind: String,
    pub dedupe_key: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// The event that caused this one, if a plugin emitted it while handling another.
    pub cause: Option<String>,
    /// Length of the cause chain: 0 for external inputs.
    pub depth: i32,
    /// The user the event is about; only they see it in the log.
    pub subject: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
