//! Webhook sources configured per org: their secrets, and the delivery counts
//! read back from the log.

use crate::store::entities::{event, hook_source};
use crate::store::{StoreError, now_ms};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

pub use hook_source::Model as HookSource;

pub async fn get(db: &impl ConnectionTrait, org: &str, source: &str) -> Result<Option<HookSource>, StoreError> {
    Ok(hook_source::Entity::find_by_id((org.to_owned(), source.to_owned())).one(db).await?)
}

/// Sets the secret of `source` in `org`. A rotation keeps the previous secret
/// valid for `grace_ms`; returns true when the source was new.
pub async fn set_secret(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    secret: &str,
    grace_ms: i64,
) -> Result<bool, StoreError> {
    let now = now_ms();
    match get(db, org, source).await? {
        Some(existing) => {
            let mut row: hook_source::ActiveModel = existing.clone().into();
            if existing.secret != secret {
                row.previous_secret = Set(Some(existing.secret));
                row.previous_until = Set(Some(now + grace_ms));
            }
            row.secret = Set(secret.to_owned());
            row.updated_at = Set(now);
            hook_source::Entity::update(row).exec(db).await?;
            Ok(false)
        }
        None => {
            let row = hook_source::ActiveModel {
                org: Set(org.to_owned()),
                source: Set(source.to_owned()),
                secret: Set(secret.to_owned()),
                previous_secret: Set(None),
                previous_until: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            };
            hook_source::Entity::insert(row).exec_without_returning(db).await?;
            Ok(true)
        }
    }
}

/// The sources configured in `org`.
pub async fn list(db: &impl ConnectionTrait, org: &str) -> Result<Vec<HookSource>, StoreError> {
    Ok(hook_source::Entity::find()
        .filter(hook_source::Column::Org.eq(org))
        .order_by_asc(hook_source::Column::Source)
        .all(db)
        .await?)
}

/// How many deliveries of `source` are stored in `org`, and when the last one arrived.
pub async fn deliveries(db: &impl ConnectionTrait, org: &str, source: &str) -> Result<(u64, Option<i64>), StoreError> {
    let row: Option<(i64, Option<i64>)> = event::Entity::find()
        .select_only()
        .column_as(Expr::col(event::Column::Seq).count(), "count")
        .column_as(Expr::col(event::Column::ReceivedAt).max(), "last")
        .filter(event::Column::Org.eq(org))
        .filter(event::Column::Source.eq(source))
        .filter(event::Column::DedupeKey.is_not_null())
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map_or((0, None), |(count, last)| (count as u64, last)))
}
