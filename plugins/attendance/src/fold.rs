//! The fold: every figure comes from the events in the log. A batch of
//! records (or a correction) is merged into its person's buckets, then the
//! local days it can change are computed again from the records around them,
//! whatever order they arrived in; a day whose figures changed is stored,
//! recorded as metrics and announced as `attendance.day.updated`.

use crate::record::Record;
use crate::rules::Rules;
use crate::store::{self, DAY_MS, OpenSession, StoredDay, StoredRules, Totals, utc_date};
use crate::timeline::{self, Day, Limits, Timeline, date_of};
use chrono::NaiveDate;
use chrono_tz::Tz;
use devpulse_sdk::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// The event a batch of accepted records becomes.
pub const RECORDED: &str = "attendance.recorded";
/// A person corrected their record.
pub const CORRECTED: &str = "attendance.corrected";
/// An admin set the org's rules.
pub const RULES_UPDATED: &str = "attendance.rules.updated";
/// A day's figures changed; what the health plugin and dashboards follow.
pub const DAY_UPDATED: &str = "attendance.day.updated";

/// The operator's settings, `[plugins.attendance.settings]`.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub limits: Limits,
    /// Records older than this are refused.
    pub max_age: i64,
}

impl Settings {
    pub fn load() -> Result<Self> {
        let minutes = |key: &str, default: f64| -> Result<i64> {
            Ok((config::get::<f64>(key)?.unwrap_or(default) * 60_000.0) as i64)
        };
        Ok(Settings {
            limits: Limits {
                idle_timeout: minutes("idle_timeout_minutes", 15.0)?,
                silence: minutes("auto_close_hours", 12.0)? * 60,
                max_session: minutes("max_session_hours", 24.0)? * 60,
            },
            max_age: minutes("max_record_age_days", 30.0)? * 60 * 24,
        })
    }
}

/// A batch of accepted records of one person.
#[derive(Serialize, Deserialize)]
pub struct Recorded {
    pub user: String,
    pub records: Vec<Record>,
}

/// A person's correction: a record added, or one removed, with the reason.
#[derive(Serialize, Deserialize)]
pub struct Corrected {
    pub user: String,
    pub reason: String,
    pub add: Option<Record>,
    pub remove: Option<Removal>,
}

/// Which record a correction removes: its id and time, as the sessions show them.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    pub at: Time,
}

/// What `attendance.day.updated` carries.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct DayUpdated {
    /// The person's user id.
    pub user: String,
    /// The local date, `YYYY-MM-DD`, in `time_zone`.
    pub date: String,
    /// The person's IANA time zone when the day was folded.
    pub time_zone: String,
    /// Seconds of sessions on the date, idle time excluded.
    pub worked_s: f64,
    /// Seconds of reported or detected idle time within sessions.
    pub idle_s: f64,
    /// Seconds of editor activity (heartbeats) outside any session.
    pub active_s: f64,
    /// From the first clock-in to the last clock-out, what was not worked.
    pub breaks_s: f64,
    /// Sessions touching the date.
    pub sessions: u32,
    /// The rules the day broke when it was folded (consecutive days aside).
    pub breaches: Vec<crate::rules::Breach>,
}

/// A person's time zone, from identity; UTC when unknown.
pub fn time_zone(user: &str) -> Result<Tz> {
    Ok(identity::user(user)?.and_then(|user| user.time_zone.parse().ok()).unwrap_or(chrono_tz::UTC))
}

pub fn on_recorded(batch: Recorded, now: Timestamp) -> Result<()> {
    let Some(span) = span(&batch.records) else { return Ok(()) };
    let mut buckets: BTreeMap<NaiveDate, store::Bucket> = BTreeMap::new();
    for record in batch.records {
        let bucket = match buckets.entry(utc_date(record.at)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let stored = store::bucket(&batch.user, *entry.key())?;
                entry.insert(stored)
            }
        };
        // An id is its client's: the first record under it stays.
        bucket.entry(record.id.clone()).or_insert(record);
    }
    for (date, bucket) in &buckets {
        store::put_bucket(&batch.user, *date, bucket)?;
    }
    refold(&batch.user, span, now)
}

pub fn on_corrected(correction: Corrected, now: Timestamp) -> Result<()> {
    let user = &correction.user;
    if let Some(mut record) = correction.add {
        record.correction = Some(correction.reason.clone());
        let at = record.at;
        let until = record.until.unwrap_or(at);
        let mut bucket = store::bucket(user, utc_date(at))?;
        bucket.insert(record.id.clone(), record);
        store::put_bucket(user, utc_date(at), &bucket)?;
        refold(user, (at, until), now)?;
    }
    if let Some(removal) = correction.remove {
        let date = utc_date(removal.at.0);
        let mut bucket = store::bucket(user, date)?;
        if let Some(record) = bucket.get_mut(&removal.id) {
            record.removed = Some(correction.reason.clone());
            let span = (record.at, record.until.unwrap_or(record.at));
            store::put_bucket(user, date, &bucket)?;
            refold(user, span, now)?;
        }
    }
    Ok(())
}

pub fn on_rules(rules: StoredRules) -> Result<()> {
    store::put_rules(&rules)
}

/// The first and last instant a batch touches.
fn span(records: &[Record]) -> Option<(Timestamp, Timestamp)> {
    let first = records.iter().map(|record| record.at).min()?;
    let last = records.iter().map(|record| record.until.unwrap_or(record.at).max(record.at)).max()?;
    Some((first, last))
}

/// The timeline of `user` around `[from, to]`: every session that can touch it,
/// with the records it needs.
pub fn timeline_around(user: &str, from: Timestamp, to: Timestamp, limits: Limits, now: Timestamp) -> Result<Timeline> {
    let reach = 2 * limits.max_session + DAY_MS;
    let records = store::records(user, from - reach, to + reach)?;
    Ok(timeline::build(&records, limits, now))
}

/// Computes again every local day of `user` that records in `span` can change.
pub fn refold(user: &str, span: (Timestamp, Timestamp), now: Timestamp) -> Result<()> {
    let settings = Settings::load()?;
    let tz = time_zone(user)?;
    let reach = settings.limits.max_session;
    let (from, to) = (span.0 - reach, span.1 + reach);
    let timeline = timeline_around(user, from, to, settings.limits, now)?;
    let rules = store::rules()?.rules;
    for date in store::dates(date_of(tz, from), date_of(tz, to)) {
        let day = timeline::day(&timeline, tz, date);
        store_day(user, tz, date, day, &rules)?;
    }
    let open = timeline.sessions.iter().rev().find(|session| session.open);
    store::set_open(user, open.map(|session| OpenSession { last_activity: session.end }).as_ref())
}

/// Stores a day's figures when they changed, with its metrics and its event.
fn store_day(user: &str, tz: Tz, date: NaiveDate, day: Day, rules: &Rules) -> Result<()> {
    let stored = (!day.is_empty()).then(|| StoredDay { tz: tz.name().to_owned(), day });
    if store::day(user, date)? == stored {
        return Ok(());
    }
    store::put_day(user, date, stored.as_ref())?;
    let mut team = store::team_day(date)?;
    match &stored {
        Some(stored) => {
            team.insert(user.to_owned(), Totals::from(&stored.day));
        }
        None => {
            team.remove(user);
        }
    }
    store::put_team_day(date, &team)?;
    let day = stored.map(|stored| stored.day).unwrap_or_default();
    let start = timeline::day_start(tz, date);
    for (name, value) in [("worked_s", day.worked_s), ("idle_s", day.idle_s), ("active_s", day.active_s)] {
        metrics::put(&format!("{name}/{user}/{date}"), &format!("attendance.{name}"), &[("user", user)], start, value)?;
    }
    let update = DayUpdated {
        user: user.to_owned(),
        date: date.to_string(),
        time_zone: tz.name().to_owned(),
        worked_s: day.worked_s,
        idle_s: day.idle_s,
        active_s: day.active_s,
        breaks_s: day.breaks_s,
        sessions: day.sessions.len() as u32,
        breaches: rules.breaches(day.worked_s, day.breaks_s, 0),
    };
    events::emit_about(DAY_UPDATED, &update, user)?;
    Ok(())
}

/// Closes sessions silent for longer than the limit; the schedule runs it.
pub fn close_silent(now: Timestamp) -> Result<()> {
    let settings = Settings::load()?;
    for (user, open) in store::open_sessions()? {
        if now - open.last_activity > settings.limits.silence {
            refold(&user, (open.last_activity, open.last_activity), now)?;
        }
    }
    Ok(())
}

/// Ids already known for `user` on UTC `date`: folded, or accepted by a route.
pub fn known_ids(user: &str, date: NaiveDate) -> Result<BTreeSet<String>> {
    let mut ids = store::seen(user, date)?;
    ids.extend(store::bucket(user, date)?.into_keys());
    Ok(ids)
}
