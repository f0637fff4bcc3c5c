//! Count, sum, min and max of one series over one bucket (an hour or a UTC day).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_rollup")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub series_id: i64,
    /// 0: hours, 1: UTC days.
    #[sea_orm(primary_key, auto_increment = false)]
    pub level: i16,
    /// Start of the bucket, milliseconds since the epoch.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket: i64,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
