//! Which replica runs a piece of work (a delivery partition, a schedule) until when.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lease")]
pub struct Model {
    /// `partition/{plugin}/{org}/{generation}` or `schedule/{plugin}/{org}`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The replica's id.
    pub holder: String,
    pub acquired_at: i64,
    /// Past this (milliseconds since the epoch) any replica may take the work over.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
