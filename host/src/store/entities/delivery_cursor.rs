//! How far one plugin got in one org's event log, per generation of its state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_cursor")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub plugin: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub generation: i64,
    /// The `seq` of the last event handled (or dead-lettered); 0 before the first.
    pub position: i64,
    /// The event being retried, if the last attempt failed.
    pub failing_seq: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// When the failing event is tried again, in milliseconds since the epoch.
    pub retry_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
