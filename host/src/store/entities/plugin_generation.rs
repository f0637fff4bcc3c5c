//! Which generation of a plugin's state serves reads in an org, and the rebuild in progress.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugin_generation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub plugin: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub org: String,
    pub live: i64,
    /// The generation a rebuild is writing, until it switches over.
    pub building: Option<i64>,
    pub rebuild_started_at: Option<i64>,
    /// The log head when the rebuild started, for progress.
    pub rebuild_target_seq: Option<i64>,
    pub rebuild_finished_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
