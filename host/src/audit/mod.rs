//! The audit log: who changed users, tokens, grants and plugins, when, and with
//! which token. Entries are written in the same transaction as the change.

use crate::auth::Principal;
use crate::store::entities::audit_entry::{ActiveModel, Column, Entity, Model};
use crate::store::now_ms;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// One change to record.
pub struct Entry {
    org_id: String,
    actor_user_id: Option<String>,
    actor_token_id: Option<String>,
    action: String,
    target: String,
    details: serde_json::Value,
}

impl Entry {
    /// A change made by the caller of a request.
    pub fn by(principal: &Principal, action: &str, target: &str) -> Self {
        Entry {
            org_id: principal.org_id.clone(),
            actor_user_id: Some(principal.user_id.clone()),
            actor_token_id: Some(principal.token_id.clone()),
            action: action.into(),
            target: target.into(),
            details: serde_json::json!({}),
        }
    }

    /// A change made by the server itself or its command line.
    pub fn system(org_id: &str, action: &str, target: &str) -> Self {
        Entry {
            org_id: org_id.into(),
            actor_user_id: None,
            actor_token_id: None,
            action: action.into(),
            target: target.into(),
            details: serde_json::json!({}),
        }
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

pub async fn record(db: &impl ConnectionTrait, entry: Entry) -> Result<(), DbErr> {
    ActiveModel {
        id: Set(ulid::Ulid::new().to_string()),
        org_id: Set(entry.org_id),
        actor_user_id: Set(entry.actor_user_id),
        actor_token_id: Set(entry.actor_token_id),
        action: Set(entry.action),
        target: Set(entry.target),
        details: Set(entry.details),
        at: Set(now_ms()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Filters of `GET /api/v1/audit`.
#[derive(Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_user_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Entries of `org_id`, newest first, before the entry `before` when paging.
pub async fn list(
    db: &impl ConnectionTrait,
    org_id: &str,
    filter: &Filter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Entity::find().filter(Column::OrgId.eq(org_id));
    if let Some(action) = &filter.action {
        query = query.filter(Column::Action.eq(action.as_str()));
    }
    if let Some(actor) = &filter.actor_user_id {
        query = query.filter(Column::ActorUserId.eq(actor.as_str()));
    }
    if let Some(from) = filter.from {
        query = query.filter(Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(Column::At.lt(to));
    }
    if let Some(before) = before {
        query = query.filter(Column::Id.lt(before));
    }
    query.order_by_desc(Column::Id).limit(limit).all(db).await
}
