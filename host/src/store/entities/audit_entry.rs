//! Who changed what, when, and with which token.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_entry")]
pub struct Model {
    /// A ULID: entries sort by time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// The acting user; `None` for the system (bootstrap, CLI).
    pub actor_user_id: Option<String>,
    pub actor_token_id: Option<String>,
    /// For example `user.create`, `token.revoke`, `plugin.disable`.
    pub action: String,
    pub target: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub details: Json,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
