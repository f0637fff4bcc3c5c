//! An object a plugin's Kubernetes watch last saw, as the event it last emitted showed it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "watched_object")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub plugin: String,
    /// The watch's name in the plugin's `describe-watches`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub watch: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub uid: String,
    /// From the object's `devpulse.dev/org` label.
    pub org: String,
    pub resource_version: String,
    pub object: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
