//! What the passing of time asks for: alerts still firing and unacknowledged
//! are notified again after each channel's repeat interval (or first, once a
//! silence over them ends), and Alertmanager hears of every open alert before
//! it would time it out.

use super::Notifier;
use super::outbox::{self, Reason};
use super::payloads;
use crate::alerts::channels::{self, Kind};
use crate::alerts::model::{AlertError, Snapshot, State, matchable_labels};
use crate::alerts::silences;
use crate::store::entities::{alert, alert_channel};
use crate::store::now_ms;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::HashMap;

/// Open alerts read per statement; a pass pages through all of them.
const PAGE: u64 = 10_000;

/// One page of the org's open alerts in `states`, in id order after `after`,
/// that `channel` accepts and no silence covers; and the id to read on from,
/// `None` after the last page.
async fn notifiable(
    db: &impl ConnectionTrait,
    channel: &alert_channel::Model,
    states: &[State],
    silenced_by_org: &mut HashMap<String, Vec<(String, crate::alerts::matchers::Matchers)>>,
    after: Option<&str>,
    now: i64,
) -> Result<(Vec<alert::Model>, Option<String>), AlertError> {
    let mut query = alert::Entity::find()
        .filter(alert::Column::Org.eq(channel.org.as_str()))
        .filter(alert::Column::State.is_in(states.iter().map(|state| state.as_str())));
    if let Some(after) = after {
        query = query.filter(alert::Column::Id.gt(after));
    }
    let open = query.order_by_asc(alert::Column::Id).limit(PAGE).all(db).await?;
    let next = match open.last() {
        Some(last) if open.len() as u64 == PAGE => Some(last.id.clone()),
        _ => None,
    };
    if open.is_empty() {
        return Ok((open, next));
    }
    if !silenced_by_org.contains_key(&channel.org) {
        let active = silences::active(db, &channel.org, now).await?;
        silenced_by_org.insert(channel.org.clone(), active);
    }
    let active = &silenced_by_org[&channel.org];
    let accepted = open
        .into_iter()
        .filter(|alert| channels::accepts(channel, alert))
        .filter(|alert| silences::silencing(active, &matchable_labels(alert)).is_empty())
        .collect();
    Ok((accepted, next))
}

/// Queues the first notification of alerts a silence kept quiet until now,
/// and repeats of those still firing after the channel's interval.
pub async fn queue_repeats(db: &impl ConnectionTrait) -> Result<(), AlertError> {
    let now = now_ms();
    let mut silences = HashMap::new();
    for channel in channels::all(db).await? {
        let interval_ms = channel.repeat_interval_s * 1000;
        let mut after = None;
        loop {
            let (firing, next) =
                notifiable(db, &channel, &[State::Firing], &mut silences, after.as_deref(), now).await?;
            let ids: Vec<String> = firing.iter().map(|alert| alert.id.clone()).collect();
            let last = outbox::last_told(db, &channel.id, &ids).await?;
            for alert in &firing {
                let reason = match last.get(&alert.id) {
                    None => Reason::Firing,
                    Some(&told) if interval_ms > 0 && now - told >= interval_ms => {
                        Reason::Repeat((now - alert.started_at) / interval_ms)
                    }
                    Some(_) => continue,
                };
                outbox::insert(db, &channel, alert, reason, now).await?;
            }
            match next {
                Some(id) => after = Some(id),
                None => break,
            }
        }
    }
    Ok(())
}

/// Re-sends every open alert an Alertmanager channel was told of, so it stays
/// active there until DevPulse resolves it. Best effort: a missed pass is
/// covered by the next, well before Alertmanager's timeout.
pub async fn keep_alertmanagers_informed(notifier: &Notifier) -> Result<(), AlertError> {
    let db = &notifier.db;
    let now = now_ms();
    let mut silences = HashMap::new();
    let open_states = [State::Firing, State::Acknowledged];
    for channel in channels::all(db).await?.into_iter().filter(|channel| Kind::of(channel) == Kind::Alertmanager) {
        let mut after = None;
        loop {
            let (open, next) = notifiable(db, &channel, &open_states, &mut silences, after.as_deref(), now).await?;
            let ids: Vec<String> = open.iter().map(|alert| alert.id.clone()).collect();
            let told = outbox::last_told(db, &channel.id, &ids).await?;
            let snapshots: Vec<Snapshot> =
                open.iter().filter(|alert| told.contains_key(&alert.id)).map(Snapshot::of).collect();
            if !snapshots.is_empty() {
                let id = ulid::Ulid::new().to_string();
                let messages: Vec<payloads::Message<'_>> =
                    snapshots.iter().map(|snapshot| notifier.message(&id, "repeat", snapshot, now)).collect();
                let attempt = notifier.send(&channel, payloads::alertmanager(&channel, &messages)).await;
                if let Some(error) = attempt.error {
                    tracing::info!(channel = channel.name, org = channel.org, "re-sending open alerts failed: {error}");
                }
            }
            match next {
                Some(id) => after = Some(id),
                None => break,
            }
        }
    }
    Ok(())
}
