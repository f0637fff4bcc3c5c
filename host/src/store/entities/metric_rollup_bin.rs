//! One DDSketch bin of a rollup: how many points of the bucket fell into it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_rollup_bin")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub series_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub level: i16,
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub bin: i32,
    pub count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
