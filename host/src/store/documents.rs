//! Plugin documents. A call stages its writes in memory and the bus commits
//! them together (`crate::bus::commit`), through [`put_many`] and [`delete_many`].

use super::entities::plugin_document::{ActiveModel, Column, Entity, Model};
use super::{ROWS_PER_STATEMENT, StoreError, now_ms};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::Value;

/// Where a plugin's state lives: its name, the caller's org, and the generation
/// (the live one, or the one a rebuild is writing).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub plugin: String,
    pub org: String,
    pub generation: i64,
}

/// The document at `key`, as JSON.
pub async fn get(db: &impl ConnectionTrait, scope: &Scope, key: &str) -> Result<Option<Value>, StoreError> {
    Ok(Entity::find_by_id((scope.plugin.clone(), scope.org.clone(), scope.generation, key.to_owned()))
        .one(db)
        .await?
        .map(|model| model.value))
}

/// Up to `limit` documents with keys starting with `prefix` and greater than
/// `after`, in byte order of the key.
pub async fn scan(
    db: &impl ConnectionTrait,
    scope: &Scope,
    prefix: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<(String, Value)>, StoreError> {
    let mut query = in_prefix(scope, prefix);
    if let Some(after) = after {
        query = query.filter(Column::Key.gt(after));
    }
    let rows: Vec<Model> = query.order_by_asc(Column::Key).limit(limit).all(db).await?;
    Ok(rows.into_iter().filter(|row| row.key.starts_with(prefix)).map(|row| (row.key, row.value)).collect())
}

/// How many documents have keys starting with `prefix`.
pub async fn count(db: &impl ConnectionTrait, scope: &Scope, prefix: &str) -> Result<u64, StoreError> {
    Ok(in_prefix(scope, prefix).count(db).await?)
}

/// Keys starting with `prefix` sort between `prefix` and `prefix` followed by the
/// largest code point; a range keeps the primary-key index in use on both backends.
fn in_prefix(scope: &Scope, prefix: &str) -> sea_orm::Select<Entity> {
    let query = Entity::find()
        .filter(Column::Plugin.eq(scope.plugin.as_str()))
        .filter(Column::Org.eq(scope.org.as_str()))
        .filter(Column::Generation.eq(scope.generation));
    if prefix.is_empty() {
        return query;
    }
    query.filter(Column::Key.gte(prefix)).filter(Column::Key.lt(format!("{prefix}{}", char::MAX)))
}

/// Writes `documents` (key, value), replacing what the keys held, many rows a
/// statement: a batch of events writes hundreds of documents.
pub async fn put_many(
    db: &impl ConnectionTrait,
    scope: &Scope,
    documents: Vec<(String, Value)>,
) -> Result<(), StoreError> {
    let now = now_ms();
    let rows: Vec<ActiveModel> = documents
        .into_iter()
        .map(|(key, value)| ActiveModel {
            plugin: Set(scope.plugin.clone()),
            org: Set(scope.org.clone()),
            generation: Set(scope.generation),
            key: Set(key),
            value: Set(value),
            updated_at: Set(now),
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([Column::Plugin, Column::Org, Column::Generation, Column::Key])
                    .update_columns([Column::Value, Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Deletes the documents at `keys`.
pub async fn delete_many(db: &impl ConnectionTrait, scope: &Scope, keys: Vec<String>) -> Result<(), StoreError> {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        Entity::delete_many()
            .filter(Column::Plugin.eq(scope.plugin.as_str()))
            .filter(Column::Org.eq(scope.org.as_str()))
            .filter(Column::Generation.eq(scope.generation))
            .filter(Column::Key.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    Ok(())
}
