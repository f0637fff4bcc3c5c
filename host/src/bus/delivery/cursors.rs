//! Delivery bookkeeping: cursors per (plugin, org, generation), retry state,
//! and dead letters. Cursor moves are compare-and-set: a transaction whose
//! cursor moved underneath it (another replica, a generation switch) fails
//! and rolls back the plugin's writes with it.

use crate::store::entities::{dead_letter, delivery_cursor};
use crate::store::{StoreError, now_ms};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

pub use dead_letter::Model as DeadLetter;
pub use delivery_cursor::Model as Cursor;

/// Dead-letter states.
pub const DEAD: &str = "dead";
pub const REPLAYING: &str = "replaying";
pub const REPLAYED: &str = "replayed";

/// The cursor of a partition, created at the start of the log when missing.
pub async fn cursor(db: &impl ConnectionTrait, plugin: &str, org: &str, generation: i64) -> Result<Cursor, StoreError> {
    let id = (plugin.to_owned(), org.to_owned(), generation);
    if let Some(cursor) = delivery_cursor::Entity::find_by_id(id.clone()).one(db).await? {
        return Ok(cursor);
    }
    let row = delivery_cursor::ActiveModel {
        plugin: Set(plugin.to_owned()),
        org: Set(org.to_owned()),
        generation: Set(generation),
        position: Set(0),
        failing_seq: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        retry_at: Set(None),
        updated_at: Set(now_ms()),
    };
    delivery_cursor::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                delivery_cursor::Column::Plugin,
                delivery_cursor::Column::Org,
                delivery_cursor::Column::Generation,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    delivery_cursor::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Db(DbErr::RecordNotFound("cursor".into())))
}

/// The cursor as it is now, or `None` once its generation was retired.
pub async fn find(
    db: &impl ConnectionTrait,
    plugin: &str,
    org: &str,
    generation: i64,
) -> Result<Option<Cursor>, StoreError> {
    Ok(delivery_cursor::Entity::find_by_id((plugin.to_owned(), org.to_owned(), generation)).one(db).await?)
}

/// Every cursor, for the lag gauges.
pub async fn all_cursors(db: &impl ConnectionTrait) -> Result<Vec<Cursor>, StoreError> {
    Ok(delivery_cursor::Entity::find().all(db).await?)
}

/// Moves the cursor from `from` to `to` and clears the retry state; false when
/// the cursor is no longer at `from` (the caller must roll back).
pub async fn advance(db: &impl ConnectionTrait, cursor: &Cursor, from: i64, to: i64) -> Result<bool, StoreError> {
    let result = delivery_cursor::Entity::update_many()
        .col_expr(delivery_cursor::Column::Position, Expr::value(to))
        .col_expr(delivery_cursor::Column::FailingSeq, Expr::value(Option::<i64>::None))
        .col_expr(delivery_cursor::Column::Attempts, Expr::value(0))
        .col_expr(delivery_cursor::Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(delivery_cursor::Column::RetryAt, Expr::value(Option::<i64>::None))
        .col_expr(delivery_cursor::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(delivery_cursor::Column::Plugin.eq(cursor.plugin.as_str()))
        .filter(delivery_cursor::Column::Org.eq(cursor.org.as_str()))
        .filter(delivery_cursor::Column::Generation.eq(cursor.generation))
        .filter(delivery_cursor::Column::Position.eq(from))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records a failed attempt at event `seq`: how many, why, and when to retry.
pub async fn record_failure(
    db: &impl ConnectionTrait,
    cursor: &Cursor,
    seq: i64,
    attempts: i32,
    error: &str,
    retry_at: i64,
) -> Result<(), StoreError> {
    delivery_cursor::Entity::update_many()
        .col_expr(delivery_cursor::Column::FailingSeq, Expr::value(seq))
        .col_expr(delivery_cursor::Column::Attempts, Expr::value(attempts))
        .col_expr(delivery_cursor::Column::LastError, Expr::value(error))
        .col_expr(delivery_cursor::Column::RetryAt, Expr::value(retry_at))
        .col_expr(delivery_cursor::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(delivery_cursor::Column::Plugin.eq(cursor.plugin.as_str()))
        .filter(delivery_cursor::Column::Org.eq(cursor.org.as_str()))
        .filter(delivery_cursor::Column::Generation.eq(cursor.generation))
        .filter(delivery_cursor::Column::Position.eq(cursor.position))
        .exec(db)
        .await?;
    Ok(())
}

/// Stores a dead letter for the event at `seq` (in the caller's transaction,
/// together with the cursor moving past it).
pub async fn bury(
    db: &impl ConnectionTrait,
    cursor: &Cursor,
    seq: i64,
    event_id: &str,
    attempts: i32,
    error: &str,
) -> Result<(), StoreError> {
    let now = now_ms();
    let row = dead_letter::ActiveModel {
        id: Set(ulid::Ulid::new().to_string()),
        plugin: Set(cursor.plugin.clone()),
        org: Set(cursor.org.clone()),
        event_seq: Set(seq),
        event_id: Set(event_id.to_owned()),
        attempts: Set(attempts),
        error: Set(error.to_owned()),
        status: Set(DEAD.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    dead_letter::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([dead_letter::Column::Plugin, dead_letter::Column::Org, dead_letter::Column::EventSeq])
                .update_columns([
                    dead_letter::Column::Attempts,
                    dead_letter::Column::Error,
                    dead_letter::Column::Status,
                    dead_letter::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Dead letters of `org`, newest first after the `before` id, optionally of one plugin or status.
pub async fn dead_letters(
    db: &impl ConnectionTrait,
    org: &str,
    plugin: Option<&str>,
    status: Option<&str>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut query = dead_letter::Entity::find().filter(dead_letter::Column::Org.eq(org));
    if let Some(plugin) = plugin {
        query = query.filter(dead_letter::Column::Plugin.eq(plugin));
    }
    if let Some(status) = status {
        query = query.filter(dead_letter::Column::Status.eq(status));
    }
    if let Some(before) = before {
        query = query.filter(dead_letter::Column::Id.lt(before));
    }
    Ok(query.order_by_desc(dead_letter::Column::Id).limit(limit).all(db).await?)
}

/// Dead letters of one event (one per plugin that gave up on it).
pub async fn dead_letters_of_event(db: &impl ConnectionTrait, seq: i64) -> Result<Vec<DeadLetter>, StoreError> {
    Ok(dead_letter::Entity::find().filter(dead_letter::Column::EventSeq.eq(seq)).all(db).await?)
}

pub async fn dead_letter(db: &impl ConnectionTrait, org: &str, id: &str) -> Result<Option<DeadLetter>, StoreError> {
    Ok(dead_letter::Entity::find_by_id(id.to_owned()).filter(dead_letter::Column::Org.eq(org)).one(db).await?)
}

/// Moves a dead letter from `from` to `to`; false when it was not in `from`.
pub async fn set_status(
    db: &impl ConnectionTrait,
    id: &str,
    from: &str,
    to: &str,
    failure: Option<&str>,
) -> Result<bool, StoreError> {
    let mut update = dead_letter::Entity::update_many()
        .col_expr(dead_letter::Column::Status, Expr::value(to))
        .col_expr(dead_letter::Column::UpdatedAt, Expr::value(now_ms()));
    if let Some(error) = failure {
        update = update
            .col_expr(dead_letter::Column::Error, Expr::value(error))
            .col_expr(dead_letter::Column::Attempts, Expr::col(dead_letter::Column::Attempts).add(1));
    }
    let result =
        update.filter(dead_letter::Column::Id.eq(id)).filter(dead_letter::Column::Status.eq(from)).exec(db).await?;
    Ok(result.rows_affected == 1)
}

/// Dead letters of a partition queued for replay, oldest event first.
pub async fn queued_replays(db: &impl ConnectionTrait, plugin: &str, org: &str) -> Result<Vec<DeadLetter>, StoreError> {
    Ok(dead_letter::Entity::find()
        .filter(dead_letter::Column::Plugin.eq(plugin))
        .filter(dead_letter::Column::Org.eq(org))
        .filter(dead_letter::Column::Status.eq(REPLAYING))
        .order_by_asc(dead_letter::Column::EventSeq)
        .all(db)
        .await?)
}
