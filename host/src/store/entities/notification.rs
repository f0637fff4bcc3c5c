//! The notification outbox: queued with the transition it announces, sent at
//! least once, its id stable across attempts so receivers can dedupe.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notification")]
pub struct Model {
    /// A ULID, sent with every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org: String,
    pub channel_id: String,
    pub alert_id: Option<String>,
    /// `firing`, `repeat`, `acknowledged` or `resolved`.
    pub reason: String,
    /// Unique per channel: the same reason for the same alert is queued once,
    /// however many replicas notice it.
    pub dedupe: String,
    /// The alert as it was at the transition.
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub created_at: i64,
    pub due_at: i64,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// `pending`, `delivered` or `failed` (given up after the retry window).
    pub state: String,
    pub delivered_at: Option<i64>,
    /// A replica sending it holds it until then.
    pub claimed_until: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
