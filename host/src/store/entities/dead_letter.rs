//! An event a plugin failed to handle after every attempt.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_letter")]
pub struct Model {
    /// A ULID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub plugin: String,
    pub org: String,
    pub event_seq: i64,
    pub event_id: String,
    pub attempts: i32,
    pub error: String,
    /// `dead`, `replaying` (queued for its plugin) or `replayed`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
