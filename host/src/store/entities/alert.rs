//! One occurrence of an alert: raised, maybe acknowledged, and resolved.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert")]
pub struct Model {
    /// A ULID: newest first is id order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org: String,
    /// The plugin that raised it, or `api`.
    pub source: String,
    /// The source's own identity for the alert.
    pub key: String,
    /// 1 for the first occurrence of a key, then one more each time it fires again after resolving.
    pub occurrence: i32,
    pub previous_id: Option<String>,
    /// `firing`, `acknowledged` or `resolved`.
    pub state: String,
    pub severity: String,
    pub summary: String,
    /// Label name to value.
    #[sea_orm(column_type = "JsonBinary")]
    pub labels: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub details: Option<Json>,
    /// `{"event_ids": [...], "urls": [...]}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub links: Json,
    /// The `user` label: the person the alert is about.
    pub subject: Option<String>,
    pub started_at: i64,
    pub updated_at: i64,
    pub last_raised_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub ack_comment: Option<String>,
    pub resolved_at: Option<i64>,
    /// A user id, `source` or `timeout`.
    pub resolved_by: Option<String>,
    pub resolve_comment: Option<String>,
    pub resolve_after_ms: Option<i64>,
    /// When the resolve timeout runs out unless raised again.
    pub expires_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
