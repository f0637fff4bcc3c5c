//! Series identity: each (plugin, org, generation, metric, label set) gets one
//! id, created on first use, so rollups refer to a small integer.

use crate::store::StoreError;
use crate::store::documents::Scope;
use crate::store::entities::metric_series::{ActiveModel, Column, Entity, Model};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::NotSet, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Set};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Labels of a point or series, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// The canonical text of a label set: its JSON with keys in order.
pub fn labels_key(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_default()
}

/// The ids of these (name, labels key) series, creating the ones that do not exist yet.
pub async fn ensure(
    db: &impl ConnectionTrait,
    scope: &Scope,
    wanted: &BTreeSet<(String, String)>,
) -> Result<HashMap<(String, String), i64>, StoreError> {
    let mut ids = find(db, scope, wanted).await?;
    let missing: Vec<&(String, String)> = wanted.iter().filter(|key| !ids.contains_key(*key)).collect();
    if missing.is_empty() {
        return Ok(ids);
    }
    let rows = missing.iter().map(|(name, key)| ActiveModel {
        id: NotSet,
        plugin: Set(scope.plugin.clone()),
        org: Set(scope.org.clone()),
        generation: Set(scope.generation),
        name: Set(name.clone()),
        labels: Set(serde_json::from_str(key).unwrap_or_default()),
        labels_key: Set(key.clone()),
    });
    Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([Column::Plugin, Column::Org, Column::Generation, Column::Name, Column::LabelsKey])
                .do_nothing()
                .to_owned(),
        )
        .do_nothing()
        .exec(db)
        .await?;
    ids.extend(find(db, scope, wanted).await?);
    Ok(ids)
}

async fn find(
    db: &impl ConnectionTrait,
    scope: &Scope,
    wanted: &BTreeSet<(String, String)>,
) -> Result<HashMap<(String, String), i64>, StoreError> {
    let names: BTreeSet<&str> = wanted.iter().map(|(name, _)| name.as_str()).collect();
    let keys: BTreeSet<&str> = wanted.iter().map(|(_, key)| key.as_str()).collect();
    let rows = Entity::find()
        .filter(in_scope(scope))
        .filter(Column::Name.is_in(names))
        .filter(Column::LabelsKey.is_in(keys))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.name, row.labels_key), row.id))
        .filter(|key_id| wanted.contains(&key_id.0))
        .collect())
}

/// Every series of one metric in a scope.
pub async fn of_metric(db: &impl ConnectionTrait, scope: &Scope, name: &str) -> Result<Vec<Model>, StoreError> {
    Ok(Entity::find().filter(in_scope(scope)).filter(Column::Name.eq(name)).all(db).await?)
}

/// Rows of `scope`'s plugin, org and generation.
pub fn in_scope(scope: &Scope) -> Condition {
    Condition::all()
        .add(Column::Plugin.eq(scope.plugin.as_str()))
        .add(Column::Org.eq(scope.org.as_str()))
        .add(Column::Generation.eq(scope.generation))
}

/// The labels of a stored series.
pub fn labels_of(row: &Model) -> Labels {
    serde_json::from_value(row.labels.clone()).unwrap_or_default()
}
