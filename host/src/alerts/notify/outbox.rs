//! The notification outbox. A transition queues its notifications in its own
//! transaction; the worker sends them at least once, each under an id that
//! stays the same across attempts, replicas and restarts.

use super::super::channels::{self, Kind};
use super::super::model::{AlertError, Snapshot, matchable_labels};
use super::super::silences;
use crate::store::entities::{alert, alert_channel, notification};
use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::json;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// Why a notification is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The alert opened, or first became notifiable on this channel (a silence ended).
    Firing,
    /// Still firing and unacknowledged after the channel's repeat interval; the
    /// number counts the intervals since it started.
    Repeat(i64),
    Acknowledged,
    Resolved,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Firing => "firing",
            Reason::Repeat(_) => "repeat",
            Reason::Acknowledged => "acknowledged",
            Reason::Resolved => "resolved",
        }
    }

    /// Unique per channel: one notification per reason and alert (and repeat).
    fn dedupe(self, alert_id: &str) -> String {
        match self {
            Reason::Repeat(round) => format!("{alert_id}:repeat:{round}"),
            other => format!("{alert_id}:{}", other.as_str()),
        }
    }
}

/// Queues the notifications `reason` causes for `alert` on its org's channels.
///
/// Firing goes to each channel whose filter accepts the alert, unless a silence
/// covers it. Acknowledged and resolved go to the channels that were told it
/// was firing, silenced or not, so receivers can close what they opened
/// (Alertmanager has no acknowledgement and is not told of one).
pub async fn enqueue(
    db: &impl ConnectionTrait,
    channels: &[alert_channel::Model],
    alert: &alert::Model,
    reason: Reason,
    now: i64,
) -> Result<usize, AlertError> {
    if channels.is_empty() {
        return Ok(0);
    }
    let mut queued = 0;
    match reason {
        Reason::Firing | Reason::Repeat(_) => {
            let active = silences::active(db, &alert.org, now).await?;
            if !silences::silencing(&active, &matchable_labels(alert)).is_empty() {
                return Ok(0);
            }
            for channel in channels.iter().filter(|channel| channels::accepts(channel, alert)) {
                queued += usize::from(insert(db, channel, alert, reason, now).await?);
            }
        }
        Reason::Acknowledged | Reason::Resolved => {
            let told = told_firing(db, &alert.id).await?;
            for channel in channels.iter().filter(|channel| told.contains(&channel.id)) {
                if reason == Reason::Acknowledged && Kind::of(channel) == Kind::Alertmanager {
                    continue;
                }
                queued += usize::from(insert(db, channel, alert, reason, now).await?);
            }
        }
    }
    Ok(queued)
}

/// Queues one notification; false when the same one was queued before.
pub async fn insert(
    db: &impl ConnectionTrait,
    channel: &alert_channel::Model,
    alert: &alert::Model,
    reason: Reason,
    now: i64,
) -> Result<bool, AlertError> {
    let row = notification::ActiveModel {
        id: Set(crate::store::ordered_id()),
        org: Set(alert.org.clone()),
        channel_id: Set(channel.id.clone()),
        alert_id: Set(Some(alert.id.clone())),
        reason: Set(reason.as_str().to_owned()),
        dedupe: Set(reason.dedupe(&alert.id)),
        payload: Set(json!(Snapshot::of(alert))),
        created_at: Set(now),
        due_at: Set(now),
        attempts: Set(0),
        last_error: Set(None),
        state: Set(PENDING.to_owned()),
        delivered_at: Set(None),
        claimed_until: Set(None),
    };
    let inserted = notification::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([notification::Column::ChannelId, notification::Column::Dedupe])
                .do_nothing()
                .to_owned(),
        )
        .do_nothing()
        .exec_without_returning(db)
        .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(count) if count > 0))
}

/// The channels that were queued a firing (or repeat) notification of the alert.
async fn told_firing(db: &impl ConnectionTrait, alert_id: &str) -> Result<Vec<String>, AlertError> {
    let rows: Vec<String> = notification::Entity::find()
        .select_only()
        .column(notification::Column::ChannelId)
        .filter(notification::Column::AlertId.eq(alert_id))
        .filter(notification::Column::Reason.is_in([Reason::Firing.as_str(), "repeat"]))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows)
}

/// When each of `alert_ids` was last queued a firing or repeat notification on the channel.
pub async fn last_told(
    db: &impl ConnectionTrait,
    channel_id: &str,
    alert_ids: &[String],
) -> Result<std::collections::HashMap<String, i64>, AlertError> {
    let mut last = std::collections::HashMap::new();
    for chunk in alert_ids.chunks(crate::store::ROWS_PER_STATEMENT) {
        let rows: Vec<(Option<String>, Option<i64>)> = notification::Entity::find()
            .select_only()
            .column(notification::Column::AlertId)
            .column_as(notification::Column::CreatedAt.max(), "created_at")
            .filter(notification::Column::ChannelId.eq(channel_id))
            .filter(notification::Column::AlertId.is_in(chunk.iter().cloned()))
            .filter(notification::Column::Reason.is_in([Reason::Firing.as_str(), "repeat"]))
            .group_by(notification::Column::AlertId)
            .into_tuple()
            .all(db)
            .await?;
        last.extend(rows.into_iter().filter_map(|(id, at)| Some((id?, at?))));
    }
    Ok(last)
}

/// Pending notifications that are due and not held by a sender, oldest
/// first. One waits while an older one about the same alert is pending on its
/// channel (retrying, say), so a receiver hears of an alert in order.
pub async fn due(db: &impl ConnectionTrait, now: i64, limit: u64) -> Result<Vec<notification::Model>, AlertError> {
    let older = Alias::new("older");
    let column = |name: notification::Column| Expr::col((older.clone(), name));
    let this = |name: notification::Column| Expr::col((notification::Entity, name));
    let earlier_pending = Query::select()
        .expr(Expr::val(1))
        .from_as(notification::Entity, older.clone())
        .and_where(
            column(notification::Column::ChannelId).equals((notification::Entity, notification::Column::ChannelId)),
        )
        .and_where(column(notification::Column::AlertId).equals((notification::Entity, notification::Column::AlertId)))
        .and_where(column(notification::Column::State).eq(PENDING))
        .and_where(column(notification::Column::Id).lt(this(notification::Column::Id)))
        .to_owned();
    Ok(notification::Entity::find()
        .filter(notification::Column::State.eq(PENDING))
        .filter(Expr::exists(earlier_pending).not())
        .filter(notification::Column::DueAt.lte(now))
        .filter(
            Condition::any()
                .add(notification::Column::ClaimedUntil.is_null())
                .add(notification::Column::ClaimedUntil.lt(now)),
        )
        .order_by_asc(notification::Column::DueAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Holds a notification for this sender until `until`; false when another got it.
pub async fn claim(
    db: &impl ConnectionTrait,
    found: &notification::Model,
    now: i64,
    until: i64,
) -> Result<bool, AlertError> {
    let held = notification::Entity::update_many()
        .col_expr(notification::Column::ClaimedUntil, Expr::value(until))
        .filter(notification::Column::Id.eq(found.id.as_str()))
        .filter(notification::Column::State.eq(PENDING))
        .filter(
            Condition::any()
                .add(notification::Column::ClaimedUntil.is_null())
                .add(notification::Column::ClaimedUntil.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(held.rows_affected == 1)
}

/// Records an attempt: delivered, retried at `retry_at`, or given up (`None`).
pub async fn settle(
    db: &impl ConnectionTrait,
    sent: &notification::Model,
    outcome: Result<(), &str>,
    retry_at: Option<i64>,
    now: i64,
) -> Result<(), AlertError> {
    let mut update = notification::Entity::update_many()
        .col_expr(notification::Column::Attempts, Expr::value(sent.attempts + 1))
        .col_expr(notification::Column::ClaimedUntil, Expr::value(Option::<i64>::None))
        .filter(notification::Column::Id.eq(sent.id.as_str()));
    update = match (outcome, retry_at) {
        (Ok(()), _) => update
            .col_expr(notification::Column::State, Expr::value(DELIVERED))
            .col_expr(notification::Column::DeliveredAt, Expr::value(now)),
        (Err(error), Some(retry_at)) => update
            .col_expr(notification::Column::DueAt, Expr::value(retry_at))
            .col_expr(notification::Column::LastError, Expr::value(error.to_owned())),
        (Err(error), None) => update
            .col_expr(notification::Column::State, Expr::value(FAILED))
            .col_expr(notification::Column::LastError, Expr::value(error.to_owned())),
    };
    update.exec(db).await?;
    Ok(())
}
