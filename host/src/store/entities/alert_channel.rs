//! Where an org's alerts are notified: a signed webhook, Slack or Alertmanager.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_channel")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org: String,
    pub name: String,
    /// `webhook`, `slack` or `alertmanager`.
    pub kind: String,
    pub url: String,
    /// The webhook's HMAC key; never shown again.
    pub secret: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub matchers: Json,
    pub min_severity: String,
    /// How often an alert still firing and unacknowledged is notified again; 0 never.
    pub repeat_interval_s: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub last_error: Option<String>,
    /// Notifications delivered, and given up on, since the channel was created.
    pub delivered: i64,
    pub failed: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
