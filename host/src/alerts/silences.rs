//! Silences: label matchers over a time span. A silenced alert is still
//! recorded and listed (as silenced); it is only not notified.

use super::matchers::{Matcher, Matchers};
use super::model::AlertError;
use crate::store::entities::silence::{self, ActiveModel, Column, Entity};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use std::collections::BTreeMap;

/// Where a silence stands at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Active,
    Expired,
}

pub fn status(silence: &silence::Model, now: i64) -> Status {
    if now < silence.starts_at {
        Status::Pending
    } else if now < silence.ends_at {
        Status::Active
    } else {
        Status::Expired
    }
}

/// A silence to create.
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
    pub comment: String,
}

/// Longest silence comment.
const MAX_COMMENT_BYTES: usize = 4096;

/// Records a silence; one that ended already is kept, as expired.
pub async fn create(
    db: &impl ConnectionTrait,
    org: &str,
    new: NewSilence,
    now: i64,
) -> Result<silence::Model, AlertError> {
    let compiled = Matchers::compile(new.matchers).map_err(|err| AlertError::Invalid(err.to_string()))?;
    if compiled.is_empty() {
        return Err(AlertError::Invalid("a silence needs at least one matcher".into()));
    }
    if new.ends_at <= new.starts_at {
        return Err(AlertError::Invalid("a silence ends after it starts".into()));
    }
    if new.comment.trim().is_empty() || new.comment.len() > MAX_COMMENT_BYTES {
        return Err(AlertError::Invalid(format!("a silence needs a comment of at most {MAX_COMMENT_BYTES} bytes")));
    }
    let row = ActiveModel {
        id: Set(crate::store::ordered_id()),
        org: Set(org.to_owned()),
        matchers: Set(serde_json::to_value(compiled.list()).map_err(crate::store::StoreError::from)?),
        starts_at: Set(new.starts_at),
        ends_at: Set(new.ends_at),
        created_by: Set(new.created_by),
        comment: Set(new.comment),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(row.insert(db).await?)
}

/// Ends a silence now; it stays listed as expired. Ending an expired one changes nothing.
pub async fn expire(db: &impl ConnectionTrait, org: &str, id: &str, now: i64) -> Result<silence::Model, AlertError> {
    let found = get(db, org, id).await?.ok_or_else(|| AlertError::NotFound(format!("no silence {id} in this org")))?;
    if status(&found, now) == Status::Expired {
        return Ok(found);
    }
    let mut row: ActiveModel = found.into();
    row.ends_at = Set(now);
    row.starts_at = Set(row.starts_at.as_ref().to_owned().min(now));
    row.updated_at = Set(now);
    Ok(row.update(db).await?)
}

pub async fn get(db: &impl ConnectionTrait, org: &str, id: &str) -> Result<Option<silence::Model>, AlertError> {
    Ok(Entity::find_by_id(id.to_owned()).filter(Column::Org.eq(org)).one(db).await?)
}

/// The org's silences newest first, `limit` of them after the cursor `before`.
pub async fn list(
    db: &impl ConnectionTrait,
    org: &str,
    status_filter: Option<Status>,
    before: Option<&str>,
    limit: u64,
    now: i64,
) -> Result<Vec<silence::Model>, AlertError> {
    let mut query = Entity::find().filter(Column::Org.eq(org));
    query = match status_filter {
        Some(Status::Pending) => query.filter(Column::StartsAt.gt(now)),
        Some(Status::Active) => query.filter(Column::StartsAt.lte(now)).filter(Column::EndsAt.gt(now)),
        Some(Status::Expired) => query.filter(Column::EndsAt.lte(now)),
        None => query,
    };
    if let Some(before) = before {
        query = query.filter(Column::Id.lt(before));
    }
    Ok(query.order_by_desc(Column::Id).limit(limit).all(db).await?)
}

/// The org's silences in force at `now`, compiled.
pub async fn active(db: &impl ConnectionTrait, org: &str, now: i64) -> Result<Vec<(String, Matchers)>, AlertError> {
    let rows = Entity::find()
        .filter(Column::Org.eq(org))
        .filter(Column::StartsAt.lte(now))
        .filter(Column::EndsAt.gt(now))
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(|row| Some((row.id.clone(), compiled(&row)?))).collect())
}

/// A stored silence's matchers; `None` if they no longer compile (never expected).
pub fn compiled(silence: &silence::Model) -> Option<Matchers> {
    let list: Vec<Matcher> = serde_json::from_value(silence.matchers.clone()).ok()?;
    Matchers::compile(list).ok()
}

/// The ids of the silences among `active` that match `labels`.
pub fn silencing(active: &[(String, Matchers)], labels: &BTreeMap<String, String>) -> Vec<String> {
    active.iter().filter(|(_, matchers)| matchers.matches(labels)).map(|(id, _)| id.clone()).collect()
}
