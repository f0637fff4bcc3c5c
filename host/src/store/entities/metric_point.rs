//! One recorded metric point.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_point")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plugin: String,
    pub org: String,
    /// Which build of the plugin's state recorded it.
    pub generation: i64,
    pub name: String,
    /// Labels as a JSON object of strings.
    #[sea_orm(column_type = "JsonBinary")]
    pub labels: Json,
    /// Milliseconds since the epoch.
    pub time: i64,
    pub value: f64,
    /// The series in the rollups (absent on points recorded before rollups existed).
    pub series_id: Option<i64>,
    /// A point recorded under a key replaces the earlier point with that key.
    pub key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
