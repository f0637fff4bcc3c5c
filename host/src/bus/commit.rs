//! Committing what a plugin call wrote: its documents, metric points, alerts
//! and emitted events in one transaction, together with the claim that allows them
//! (a cursor move, a schedule run, a replayed dead letter), so effects happen
//! exactly once.

use super::log::{self, NewEntry};
use crate::capabilities::writes::{Staged, WriteSet};
use crate::metrics::rollup;
use crate::store::documents::{self, Scope};
use crate::store::{StoreError, now_ms};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

/// Applies `writes` on a connection or transaction the caller owns.
pub async fn apply(db: &impl ConnectionTrait, writes: WriteSet, scope: &Scope) -> Result<(), StoreError> {
    let Staged { documents, points, events, alerts } = writes.into_staged();
    let (puts, deletes): (Vec<_>, Vec<_>) = documents.into_iter().partition(|(_, value)| value.is_some());
    documents::put_many(db, scope, puts.into_iter().filter_map(|(key, value)| Some((key, value?))).collect()).await?;
    documents::delete_many(db, scope, deletes.into_iter().map(|(key, _)| key).collect()).await?;
    rollup::record(db, scope, points).await?;
    if !alerts.is_empty() {
        crate::alerts::lifecycle::apply(db, &scope.org, &scope.plugin, alerts, now_ms()).await.map_err(
            |err| match err {
                crate::alerts::AlertError::Store(err) => err,
                other => StoreError::Db(sea_orm::DbErr::Custom(format!("alerts of {}: {other}", scope.plugin))),
            },
        )?;
    }
    // Events go last: the log lock is then held only until the commit that follows.
    if !events.is_empty() {
        let now = now_ms();
        let entries = events.into_iter().map(|event| NewEntry {
            id: event.id,
            org: scope.org.clone(),
            source: scope.plugin.clone(),
            kind: event.kind,
            dedupe_key: None,
            occurred_at: now,
            received_at: now,
            payload: event.payload,
            cause: event.cause,
            depth: event.depth,
            subject: event.subject,
        });
        log::append(db, entries.collect()).await?;
    }
    Ok(())
}

/// Commits `writes` on their own, in one transaction.
pub async fn commit(db: &DatabaseConnection, writes: WriteSet, scope: &Scope) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    apply(&txn, writes, scope).await?;
    txn.commit().await?;
    Ok(())
}
