//! The `replica` and `lease` rows: every statement the lease rounds need, each
//! a compare-and-set where two replicas could race.

use crate::store::StoreError;
use crate::store::entities::{lease, replica};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

/// Records that `replica` is alive at `now`.
pub async fn heartbeat(db: &impl ConnectionTrait, replica: &str, now: i64) -> Result<(), StoreError> {
    let row = replica::ActiveModel { id: Set(replica.to_owned()), started_at: Set(now), heartbeat_at: Set(now) };
    replica::Entity::insert(row)
        .on_conflict(OnConflict::column(replica::Column::Id).update_column(replica::Column::HeartbeatAt).to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Replicas whose heartbeat is at or after `since`.
pub async fn live_replicas(db: &impl ConnectionTrait, since: i64) -> Result<u64, StoreError> {
    Ok(replica::Entity::find().filter(replica::Column::HeartbeatAt.gte(since)).count(db).await?)
}

/// Forgets replicas and leases nobody renewed since `before`.
pub async fn forget_stale(db: &impl ConnectionTrait, before: i64) -> Result<(), StoreError> {
    replica::Entity::delete_many().filter(replica::Column::HeartbeatAt.lt(before)).exec(db).await?;
    lease::Entity::delete_many().filter(lease::Column::ExpiresAt.lt(before)).exec(db).await?;
    Ok(())
}

/// Extends every lease `replica` holds to `until`.
pub async fn renew_all(db: &impl ConnectionTrait, replica: &str, until: i64) -> Result<(), StoreError> {
    lease::Entity::update_many()
        .col_expr(lease::Column::ExpiresAt, Expr::value(until))
        .filter(lease::Column::Holder.eq(replica))
        .exec(db)
        .await?;
    Ok(())
}

/// Extends `key` to `until` if `replica` still holds it. In a commit's
/// transaction this locks the row, so a replica taking the lease over waits
/// for the commit and then finds it renewed.
pub async fn renew(db: &impl ConnectionTrait, key: &str, replica: &str, until: i64) -> Result<bool, StoreError> {
    let updated = lease::Entity::update_many()
        .col_expr(lease::Column::ExpiresAt, Expr::value(until))
        .filter(lease::Column::Key.eq(key))
        .filter(lease::Column::Holder.eq(replica))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Every lease row.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<lease::Model>, StoreError> {
    Ok(lease::Entity::find().all(db).await?)
}

/// Takes `key` for `replica` until `until` if nobody holds it or its lease
/// expired before `now`. False when another replica holds it.
pub async fn acquire(
    db: &impl ConnectionTrait,
    key: &str,
    replica: &str,
    now: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let row = lease::ActiveModel {
        key: Set(key.to_owned()),
        holder: Set(replica.to_owned()),
        acquired_at: Set(now),
        expires_at: Set(until),
    };
    let expired = Expr::col((lease::Entity, lease::Column::ExpiresAt)).lt(now);
    let inserted = lease::Entity::insert(row)
        .on_conflict(
            OnConflict::column(lease::Column::Key)
                .update_columns([lease::Column::Holder, lease::Column::AcquiredAt, lease::Column::ExpiresAt])
                .action_and_where(expired)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// Gives `key` up, if `replica` holds it.
pub async fn release(db: &impl ConnectionTrait, key: &str, replica: &str) -> Result<(), StoreError> {
    lease::Entity::delete_many()
        .filter(lease::Column::Key.eq(key))
        .filter(lease::Column::Holder.eq(replica))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives up everything `replica` holds and its place among the replicas.
pub async fn leave(db: &impl ConnectionTrait, replica: &str) -> Result<(), StoreError> {
    lease::Entity::delete_many().filter(lease::Column::Holder.eq(replica)).exec(db).await?;
    replica::Entity::delete_by_id(replica).exec(db).await?;
    Ok(())
}
