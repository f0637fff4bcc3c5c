//! The `watched_object` rows: what each watch last saw, changed in the
//! transaction that appends the watch's events.

use crate::store::StoreError;
use crate::store::entities::watched_object::{ActiveModel, Column, Entity, Model};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;

/// Every object the watch last saw.
pub async fn all(db: &impl ConnectionTrait, plugin: &str, watch: &str) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find().filter(Column::Plugin.eq(plugin)).filter(Column::Watch.eq(watch)).all(db).await?)
}

/// Records the object's state as the watch's latest.
pub async fn put(
    db: &impl ConnectionTrait,
    plugin: &str,
    watch: &str,
    uid: &str,
    org: &str,
    resource_version: &str,
    object: &Value,
) -> Result<(), StoreError> {
    let row = ActiveModel {
        plugin: Set(plugin.to_owned()),
        watch: Set(watch.to_owned()),
        uid: Set(uid.to_owned()),
        org: Set(org.to_owned()),
        resource_version: Set(resource_version.to_owned()),
        object: Set(object.clone()),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Plugin, Column::Watch, Column::Uid])
                .update_columns([Column::Org, Column::ResourceVersion, Column::Object])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn remove(db: &impl ConnectionTrait, plugin: &str, watch: &str, uid: &str) -> Result<(), StoreError> {
    Entity::delete_many()
        .filter(Column::Plugin.eq(plugin))
        .filter(Column::Watch.eq(watch))
        .filter(Column::Uid.eq(uid))
        .exec(db)
        .await?;
    Ok(())
}
