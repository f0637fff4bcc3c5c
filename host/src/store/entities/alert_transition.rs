//! Something that happened to an alert, with who and when: its history.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_transition")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub alert_id: String,
    pub org: String,
    pub at: i64,
    /// `raised`, `updated`, `acknowledged` or `resolved`.
    pub kind: String,
    /// A user id, the source's name, or `timeout`.
    pub actor: String,
    pub comment: Option<String>,
    /// For updates: the fields that changed, before and after.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub changes: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
