//! The operator's enable/disable switch per plugin, kept across restarts.

use super::entities::plugin_state::{ActiveModel, Column, Entity};
use super::{StoreError, now_ms};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use std::collections::BTreeSet;

/// Names of the plugins the operator disabled.
pub async fn disabled(db: &impl ConnectionTrait) -> Result<BTreeSet<String>, StoreError> {
    Ok(Entity::find().all(db).await?.into_iter().filter(|row| !row.enabled).map(|row| row.name).collect())
}

/// Records the operator's choice for `name`.
pub async fn set_enabled(db: &impl ConnectionTrait, name: &str, enabled: bool) -> Result<(), StoreError> {
    let row = ActiveModel { name: Set(name.to_owned()), enabled: Set(enabled), updated_at: Set(now_ms()) };
    Entity::insert(row)
        .on_conflict(OnConflict::column(Column::Name).update_columns([Column::Enabled, Column::UpdatedAt]).to_owned())
        .exec(db)
        .await?;
    Ok(())
}
