//! A silence: alerts whose labels match are recorded but not notified while it lasts.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "silence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org: String,
    /// A list of `{name, value, op}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub matchers: Json,
    pub starts_at: i64,
    /// Deleting a silence ends it now; it stays listed as expired.
    pub ends_at: i64,
    pub created_by: String,
    pub comment: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
