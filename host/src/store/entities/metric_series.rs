//! One metric series: a name, a projection and a label set, per plugin, org and generation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_series")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plugin: String,
    pub org: String,
    pub generation: i64,
    pub name: String,
    /// `""` for the series points are recorded in; for a projection of the
    /// metric, the JSON list of the labels it keeps (`metrics::series::Projection`).
    pub projection: String,
    /// Labels as a JSON object of strings.
    #[sea_orm(column_type = "JsonBinary")]
    pub labels: Json,
    /// The labels in canonical form (sorted `k=v` pairs), for uniqueness.
    pub labels_key: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
