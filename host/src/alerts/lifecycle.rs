//! An alert's transitions: raised (a new occurrence), updated, acknowledged
//! and resolved. Each runs on the caller's transaction and writes the alert,
//! its history row and the notifications it causes together, so a transition
//! is never half-recorded and never notified without being recorded. Each
//! transition is also appended to the event log as `alerts.<transition>`.

use super::channels;
use super::model::{AlertError, AlertWrite, Links, NewAlert, State};
use super::notify::outbox::{self, Reason};
use crate::bus::log::{self, ALERTS_SOURCE, NewEntry};
use crate::store::entities::{alert, alert_channel, alert_label, alert_transition};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Who caused a transition.
#[derive(Clone, Copy, Debug)]
pub enum Actor<'a> {
    /// The alert's source (a plugin, or `api`) raising or resolving it.
    Source,
    /// A person, by user id.
    User(&'a str),
    /// Nobody raised it again within its resolve timeout.
    Timeout,
}

impl Actor<'_> {
    fn name(&self, source: &str) -> String {
        match self {
            Actor::Source => source.to_owned(),
            Actor::User(id) => (*id).to_owned(),
            Actor::Timeout => "timeout".to_owned(),
        }
    }
}

/// What raising did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raised {
    /// A new occurrence opened.
    Opened,
    /// The open occurrence changed.
    Updated,
    /// The open occurrence was raised again as it was: only its timeout moved.
    Unchanged,
}

/// Applies a plugin call's alert writes in order, on its transaction. The
/// newest occurrence of every key it names and the org's channels are read
/// once for the whole call, not once per write.
pub async fn apply(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    writes: Vec<AlertWrite>,
    now: i64,
) -> Result<(), AlertError> {
    let keys: BTreeSet<&str> = writes.iter().map(AlertWrite::key).collect();
    let mut newest = newest_of(db, org, source, &keys).await?;
    let mut transitions = Transitions::of_org(db, org, now).await?;
    for write in writes {
        match write {
            AlertWrite::Raise(new) => {
                let previous = newest.remove(&new.key);
                let (raised, _) = raise_after(db, org, source, &new, previous, &mut transitions).await?;
                newest.insert(new.key, raised);
            }
            AlertWrite::Resolve(key) => {
                if let Some(current) = newest.remove(&key) {
                    let current = match is_open(&current) {
                        true => resolve_with(db, current, Actor::Source, None, &mut transitions).await?,
                        false => current,
                    };
                    newest.insert(key, current);
                }
            }
        }
    }
    transitions.finish(db).await
}

/// What the transitions of one call share: the org's channels, read once, the
/// time, and the events they add to the log, appended together at the end.
struct Transitions {
    channels: Vec<alert_channel::Model>,
    now: i64,
    events: Vec<NewEntry>,
}

impl Transitions {
    async fn of_org(db: &impl ConnectionTrait, org: &str, now: i64) -> Result<Self, AlertError> {
        Ok(Transitions { channels: channels::of_org(db, org).await?, now, events: Vec::new() })
    }

    async fn finish(self, db: &impl ConnectionTrait) -> Result<(), AlertError> {
        log::append(db, self.events).await?;
        Ok(())
    }
}

/// The newest occurrence of each of `keys`, one indexed read per key. (One
/// `key IN (...)` read would be fewer statements, but without table statistics
/// PostgreSQL plans it as a scan of the org's every alert.)
async fn newest_of(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    keys: &BTreeSet<&str>,
) -> Result<HashMap<String, alert::Model>, AlertError> {
    let mut newest = HashMap::with_capacity(keys.len());
    for key in keys {
        if let Some(found) = latest(db, org, source, key).await? {
            newest.insert(found.key.clone(), found);
        }
    }
    Ok(newest)
}

/// The open occurrence of a key, if any.
pub async fn open(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    key: &str,
) -> Result<Option<alert::Model>, AlertError> {
    Ok(latest(db, org, source, key).await?.filter(is_open))
}

/// The newest occurrence of a key: the open one if there is one (a key is
/// open at most once, always in its newest occurrence), else the one a new
/// occurrence follows.
async fn latest(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    key: &str,
) -> Result<Option<alert::Model>, AlertError> {
    Ok(alert::Entity::find()
        .filter(alert::Column::Org.eq(org))
        .filter(alert::Column::Source.eq(source))
        .filter(alert::Column::Key.eq(key))
        .order_by_desc(alert::Column::Occurrence)
        .one(db)
        .await?)
}

fn is_open(alert: &alert::Model) -> bool {
    alert.state != State::Resolved.as_str()
}

/// Raises `new`: updates the open occurrence of its key, or opens a new one
/// linked to the previous.
pub async fn raise(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    new: &NewAlert,
    now: i64,
) -> Result<(alert::Model, Raised), AlertError> {
    let previous = latest(db, org, source, &new.key).await?;
    let mut transitions = Transitions::of_org(db, org, now).await?;
    let raised = raise_after(db, org, source, new, previous, &mut transitions).await?;
    transitions.finish(db).await?;
    Ok(raised)
}

/// Raises `new` over the newest occurrence of its key, `previous`.
async fn raise_after(
    db: &impl ConnectionTrait,
    org: &str,
    source: &str,
    new: &NewAlert,
    previous: Option<alert::Model>,
    transitions: &mut Transitions,
) -> Result<(alert::Model, Raised), AlertError> {
    new.validate()?;
    let now = transitions.now;
    let expires_at = new.resolve_after_ms.map(|after| now + after);
    if let Some(current) = previous.clone().filter(is_open) {
        return update(db, current, new, expires_at, transitions).await;
    }
    let row = alert::ActiveModel {
        id: Set(crate::store::ordered_id()),
        org: Set(org.to_owned()),
        source: Set(source.to_owned()),
        key: Set(new.key.clone()),
        occurrence: Set(previous.as_ref().map_or(1, |previous| previous.occurrence + 1)),
        previous_id: Set(previous.map(|previous| previous.id)),
        state: Set(State::Firing.as_str().to_owned()),
        severity: Set(new.severity.as_str().to_owned()),
        summary: Set(new.summary.clone()),
        labels: Set(json!(new.labels)),
        details: Set(new.details.clone()),
        links: Set(json!(new.links)),
        subject: Set(new.subject().map(str::to_owned)),
        started_at: Set(now),
        updated_at: Set(now),
        last_raised_at: Set(now),
        acknowledged_at: Set(None),
        acknowledged_by: Set(None),
        ack_comment: Set(None),
        resolved_at: Set(None),
        resolved_by: Set(None),
        resolve_comment: Set(None),
        resolve_after_ms: Set(new.resolve_after_ms),
        expires_at: Set(expires_at),
    };
    let created = alert::Entity::insert(row).exec_with_returning(db).await?;
    insert_labels(db, &created, &new.labels).await?;
    record(db, &created, "raised", Actor::Source, None, None, transitions).await?;
    outbox::enqueue(db, &transitions.channels, &created, Reason::Firing, now).await?;
    Ok((created, Raised::Opened))
}

async fn update(
    db: &impl ConnectionTrait,
    current: alert::Model,
    new: &NewAlert,
    expires_at: Option<i64>,
    transitions: &mut Transitions,
) -> Result<(alert::Model, Raised), AlertError> {
    let now = transitions.now;
    let mut changes = BTreeMap::new();
    let mut change = |field: &str, before: Value, after: Value| {
        if before != after {
            changes.insert(field.to_owned(), json!({ "before": before, "after": after }));
        }
    };
    change("severity", json!(current.severity), json!(new.severity.as_str()));
    change("summary", json!(current.summary), json!(new.summary));
    change("labels", current.labels.clone(), json!(new.labels));
    change("details", json!(current.details), json!(new.details));
    let mut links = Links::of(&current.links);
    links.merge(&new.links);
    let mut row: alert::ActiveModel = current.clone().into();
    row.severity = Set(new.severity.as_str().to_owned());
    row.summary = Set(new.summary.clone());
    row.labels = Set(json!(new.labels));
    row.details = Set(new.details.clone());
    row.links = Set(json!(links));
    row.subject = Set(new.subject().map(str::to_owned));
    row.last_raised_at = Set(now);
    row.resolve_after_ms = Set(new.resolve_after_ms);
    row.expires_at = Set(expires_at);
    if !changes.is_empty() {
        row.updated_at = Set(now);
    }
    let updated = alert::Entity::update(row).exec(db).await?;
    if changes.is_empty() {
        return Ok((updated, Raised::Unchanged));
    }
    if changes.contains_key("labels") {
        write_labels(db, &updated, &new.labels).await?;
    }
    record(db, &updated, "updated", Actor::Source, None, Some(json!(changes)), transitions).await?;
    Ok((updated, Raised::Updated))
}

/// Acknowledges a firing alert: someone is on it, so it is not notified again.
pub async fn acknowledge(
    db: &impl ConnectionTrait,
    current: alert::Model,
    user: &str,
    comment: Option<String>,
    now: i64,
) -> Result<alert::Model, AlertError> {
    if current.state != State::Firing.as_str() {
        return Err(AlertError::Conflict(format!("alert {} is {}, not firing", current.id, current.state)));
    }
    let changed = alert::Entity::update_many()
        .col_expr(alert::Column::State, Expr::value(State::Acknowledged.as_str()))
        .col_expr(alert::Column::AcknowledgedAt, Expr::value(now))
        .col_expr(alert::Column::AcknowledgedBy, Expr::value(user))
        .col_expr(alert::Column::AckComment, Expr::value(comment.clone()))
        .col_expr(alert::Column::UpdatedAt, Expr::value(now))
        .filter(alert::Column::Id.eq(current.id.as_str()))
        .filter(alert::Column::State.eq(State::Firing.as_str()))
        .exec_with_returning(db)
        .await?;
    let updated = changed_meanwhile(changed, &current.id)?;
    let mut transitions = Transitions::of_org(db, &updated.org, now).await?;
    record(db, &updated, "acknowledged", Actor::User(user), comment, None, &mut transitions).await?;
    outbox::enqueue(db, &transitions.channels, &updated, Reason::Acknowledged, now).await?;
    transitions.finish(db).await?;
    Ok(updated)
}

/// Resolves an open alert.
pub async fn resolve(
    db: &impl ConnectionTrait,
    current: alert::Model,
    actor: Actor<'_>,
    comment: Option<String>,
    now: i64,
) -> Result<alert::Model, AlertError> {
    let mut transitions = Transitions::of_org(db, &current.org, now).await?;
    let resolved = resolve_with(db, current, actor, comment, &mut transitions).await?;
    transitions.finish(db).await?;
    Ok(resolved)
}

async fn resolve_with(
    db: &impl ConnectionTrait,
    current: alert::Model,
    actor: Actor<'_>,
    comment: Option<String>,
    transitions: &mut Transitions,
) -> Result<alert::Model, AlertError> {
    let now = transitions.now;
    if current.state == State::Resolved.as_str() {
        return Err(AlertError::Conflict(format!("alert {} is resolved already", current.id)));
    }
    let by = match actor {
        Actor::Source => "source".to_owned(),
        Actor::User(id) => id.to_owned(),
        Actor::Timeout => "timeout".to_owned(),
    };
    let mut query = alert::Entity::update_many()
        .col_expr(alert::Column::State, Expr::value(State::Resolved.as_str()))
        .col_expr(alert::Column::ResolvedAt, Expr::value(now))
        .col_expr(alert::Column::ResolvedBy, Expr::value(by))
        .col_expr(alert::Column::ResolveComment, Expr::value(comment.clone()))
        .col_expr(alert::Column::ExpiresAt, Expr::value(Option::<i64>::None))
        .col_expr(alert::Column::UpdatedAt, Expr::value(now))
        .filter(alert::Column::Id.eq(current.id.as_str()))
        .filter(alert::Column::State.ne(State::Resolved.as_str()));
    if let Actor::Timeout = actor {
        query = query.filter(alert::Column::ExpiresAt.lte(now));
    }
    let updated = changed_meanwhile(query.exec_with_returning(db).await?, &current.id)?;
    record(db, &updated, "resolved", actor, comment, None, transitions).await?;
    outbox::enqueue(db, &transitions.channels, &updated, Reason::Resolved, now).await?;
    Ok(updated)
}

/// Open alerts whose resolve timeout ran out, oldest deadline first.
pub async fn timed_out(db: &impl ConnectionTrait, now: i64, limit: u64) -> Result<Vec<alert::Model>, AlertError> {
    Ok(alert::Entity::find()
        .filter(alert::Column::ExpiresAt.lte(now))
        .filter(alert::Column::State.ne(State::Resolved.as_str()))
        .order_by_asc(alert::Column::ExpiresAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// The row a guarded update changed, or a conflict when the guard found it
/// changed by someone else first.
fn changed_meanwhile(mut rows: Vec<alert::Model>, id: &str) -> Result<alert::Model, AlertError> {
    rows.pop().ok_or_else(|| AlertError::Conflict(format!("alert {id} changed meanwhile; read it again")))
}

/// Replaces the alert's label rows.
async fn write_labels(
    db: &impl ConnectionTrait,
    alert: &alert::Model,
    labels: &BTreeMap<String, String>,
) -> Result<(), AlertError> {
    alert_label::Entity::delete_many().filter(alert_label::Column::AlertId.eq(alert.id.as_str())).exec(db).await?;
    insert_labels(db, alert, labels).await
}

/// Indexes a new alert's labels for the label filters.
async fn insert_labels(
    db: &impl ConnectionTrait,
    alert: &alert::Model,
    labels: &BTreeMap<String, String>,
) -> Result<(), AlertError> {
    if labels.is_empty() {
        return Ok(());
    }
    let rows = labels.iter().map(|(name, value)| alert_label::ActiveModel {
        alert_id: Set(alert.id.clone()),
        name: Set(name.clone()),
        org: Set(alert.org.clone()),
        value: Set(value.clone()),
    });
    alert_label::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

/// Appends a row to the alert's history, and keeps its event for the log.
async fn record(
    db: &impl ConnectionTrait,
    alert: &alert::Model,
    kind: &str,
    actor: Actor<'_>,
    comment: Option<String>,
    changes: Option<Value>,
    transitions: &mut Transitions,
) -> Result<(), AlertError> {
    let now = transitions.now;
    let actor_name = actor.name(&alert.source);
    let row = alert_transition::ActiveModel {
        seq: NotSet,
        alert_id: Set(alert.id.clone()),
        org: Set(alert.org.clone()),
        at: Set(now),
        kind: Set(kind.to_owned()),
        actor: Set(actor_name.clone()),
        comment: Set(comment),
        changes: Set(changes),
    };
    alert_transition::Entity::insert(row).exec(db).await?;
    transitions.events.push(transition_event(alert, kind, &actor_name, now));
    Ok(())
}

/// The transition as an event of the log (`alerts.raised`, `alerts.updated`,
/// `alerts.acknowledged`, `alerts.resolved`), so the live stream and plugins see
/// it like any input. It is about the alert's subject, if any, which the log's
/// reading rule uses to show it to the same people as the alert.
fn transition_event(alert: &alert::Model, kind: &str, actor: &str, now: i64) -> NewEntry {
    let payload = json!({
        "alert_id": alert.id,
        "key": alert.key,
        "source": alert.source,
        "occurrence": alert.occurrence,
        "state": alert.state,
        "severity": alert.severity,
        "summary": alert.summary,
        "labels": alert.labels,
        "links": alert.links,
        "actor": actor,
        "at": chrono::DateTime::from_timestamp_millis(now).map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    });
    let mut entry = NewEntry::arriving(&alert.org, ALERTS_SOURCE, &format!("alerts.{kind}"), payload, None);
    entry.subject = alert.subject.clone();
    entry
}
