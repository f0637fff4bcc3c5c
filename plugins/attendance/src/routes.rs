//! The HTTP routes. Inputs (clocking, sync, corrections, rules) are checked,
//! become events and answer at once; figures are read from what the fold
//! stored. People see all of their own data; managers and above see the days,
//! sessions and totals of their org's people, never their heartbeats.

use crate::fold::{self, CORRECTED, RECORDED, RULES_UPDATED, Recorded, Removal, Settings};
use crate::record::{Heartbeat, Kind, Record};
use crate::rules::{Breach, Rules, streaks};
use crate::store::{self, Clock, StoredRules, utc_date};
use crate::timeline::{self, Session, date_of};
use chrono::NaiveDate;
use chrono_tz::Tz;
use devpulse_sdk::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Most records one sync takes.
pub const MAX_SYNC: usize = 1_000;

/// Most dates one answer covers; a longer range is answered up to here.
const MAX_DATES: i64 = 366;

/// Clocks in the future by more than this are refused (client clocks drift).
const FUTURE_SLACK_MS: i64 = 3_600_000;

pub fn rfc3339(at: Timestamp) -> String {
    Time(at).to_rfc3339()
}

/// A session as people see it.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct SessionView {
    /// The id of the clock-in that opened it.
    pub id: String,
    pub start: String,
    /// Its end, or its last activity while it is open.
    pub end: String,
    pub open: bool,
    /// Closed by the host after a silence, or at the longest session allowed.
    pub auto_closed: bool,
    pub device: Option<String>,
    pub idle_s: f64,
}

impl From<&Session> for SessionView {
    fn from(session: &Session) -> Self {
        SessionView {
            id: session.id.clone(),
            start: rfc3339(session.start),
            end: rfc3339(session.end),
            open: session.open,
            auto_closed: session.auto_closed,
            device: session.device.clone(),
            idle_s: session.idle.iter().map(|(from, until)| (until - from) as f64 / 1000.0).sum(),
        }
    }
}

/// An optional body for clocking in or out.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockBody {
    /// When; now when absent.
    pub at: Option<Time>,
    /// The client's id for this record, so a retry is not counted twice.
    #[schemars(length(min = 1, max = 128))]
    pub id: Option<String>,
    #[schemars(length(max = 100))]
    pub device: Option<String>,
    #[schemars(length(max = 500))]
    pub note: Option<String>,
}

/// Where the caller stands now.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Status {
    pub time_zone: String,
    /// The open session, if any.
    pub open: Option<SessionView>,
    /// Today (local date) so far, an open session counted until now.
    pub today: Today,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Today {
    pub date: String,
    pub worked_s: f64,
    pub idle_s: f64,
    pub active_s: f64,
}

/// The caller's timeline around now: what was folded, and a clock action a
/// route took that the fold may not have reached yet.
fn live_timeline(user: &str, settings: &Settings, now: Timestamp) -> Result<timeline::Timeline> {
    let reach = 2 * settings.limits.max_session + store::DAY_MS;
    let mut records = store::records(user, now - reach, now + store::DAY_MS)?;
    if let Some(clock) = store::clock(user)?
        && !records.iter().any(|record| record.id == clock.record.id)
    {
        records.push(clock.record);
    }
    Ok(timeline::build(&records, settings.limits, now))
}

fn status_of(user: &str, now: Timestamp) -> Result<Status> {
    let settings = Settings::load()?;
    let tz = fold::time_zone(user)?;
    let mut timeline = live_timeline(user, &settings, now)?;
    let open = timeline.sessions.iter().rev().find(|session| session.open).map(SessionView::from);
    for session in timeline.sessions.iter_mut().filter(|session| session.open) {
        session.end = session.end.max(now);
    }
    let date = date_of(tz, now);
    let day = timeline::day(&timeline, tz, date);
    Ok(Status {
        time_zone: tz.name().to_owned(),
        open,
        today: Today { date: date.to_string(), worked_s: day.worked_s, idle_s: day.idle_s, active_s: day.active_s },
    })
}

pub fn status(call: Call) -> Result<Status> {
    status_of(&call.principal.user_id, now())
}

fn clock_record(kind: Kind, body: Option<ClockBody>, now: Timestamp) -> Record {
    let body = body.unwrap_or(ClockBody { at: None, id: None, device: None, note: None });
    let at = body.at.map_or(now, |time| time.0);
    Record {
        id: body.id.unwrap_or_else(|| format!("{kind:?}-{at}").to_lowercase()),
        kind,
        at,
        until: None,
        device: body.device,
        note: body.note,
        heartbeat: None,
        correction: None,
        removed: None,
    }
}

/// Accepts one clock record: stores the clock action and its event.
fn clock(call: Call<(), Option<ClockBody>>, kind: Kind) -> Result<Status> {
    let user = call.principal.user_id.clone();
    let now = now();
    let record = clock_record(kind, call.body, now);
    let settings = Settings::load()?;
    // Outside the window of accepted records: a conflict with what the org keeps.
    if let Some(reason) = refusal(&record, &settings, now) {
        return Err(Error::conflict(reason));
    }
    let before = status_of(&user, now)?;
    match (kind, &before.open) {
        (Kind::ClockIn, Some(open)) => {
            return Err(Error::conflict(format!(
                "already clocked in: session {} open since {} on {}",
                open.id,
                open.start,
                open.device.as_deref().unwrap_or("an unnamed device")
            )));
        }
        (Kind::ClockOut, None) => return Err(Error::conflict("not clocked in: no session is open")),
        _ => {}
    }
    let date = utc_date(record.at);
    let mut seen = store::seen(&user, date)?;
    if fold::known_ids(&user, date)?.contains(&record.id) {
        return Err(Error::conflict(format!("record {} was taken already", record.id)));
    }
    seen.insert(record.id.clone());
    store::put_seen(&user, date, &seen)?;
    store::put_clock(&user, &Clock { record: record.clone() })?;
    events::emit_about(RECORDED, &Recorded { user: user.clone(), records: vec![record] }, &user)?;
    status_of(&user, now)
}

pub fn clock_in(call: Call<(), Option<ClockBody>>) -> Result<Status> {
    clock(call, Kind::ClockIn)
}

pub fn clock_out(call: Call<(), Option<ClockBody>>) -> Result<Status> {
    clock(call, Kind::ClockOut)
}

/// Why a record cannot be taken, if it cannot.
fn refusal(record: &Record, settings: &Settings, now: Timestamp) -> Option<String> {
    if record.at < now - settings.max_age {
        return Some(format!("older than {} days", settings.max_age / store::DAY_MS));
    }
    if record.at > now + FUTURE_SLACK_MS {
        return Some("more than an hour in the future".into());
    }
    if record.kind == Kind::Idle && record.until.is_none_or(|until| until <= record.at) {
        return Some("an idle span needs `until` after `at`".into());
    }
    None
}

/// One record of an offline upload.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRecord {
    /// The client's id: sending it again changes nothing.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub at: Time,
    /// End of an idle span.
    pub until: Option<Time>,
    #[schemars(length(max = 100))]
    pub device: Option<String>,
    #[schemars(length(max = 500))]
    pub note: Option<String>,
    /// Heartbeats only: what was worked on. Nothing else of an editor's activity is kept.
    #[schemars(length(max = 200))]
    pub project: Option<String>,
    #[schemars(length(max = 100))]
    pub language: Option<String>,
    #[schemars(length(max = 100))]
    pub category: Option<String>,
    pub is_write: Option<bool>,
}

/// Records recorded offline, in any order.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    #[schemars(length(max = 1000))]
    pub records: Vec<SyncRecord>,
}

/// What became of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Accepted,
    /// Its id was taken before: nothing changed.
    Duplicate,
    Rejected,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct RecordResult {
    pub id: String,
    pub status: Outcome,
    /// Why it was rejected.
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct SyncResult {
    /// One per record, in the order sent.
    pub results: Vec<RecordResult>,
    pub accepted: u32,
    pub duplicates: u32,
    pub rejected: u32,
}

impl From<SyncRecord> for Record {
    fn from(record: SyncRecord) -> Self {
        let heartbeat = (record.kind == Kind::Heartbeat).then(|| Heartbeat {
            project: record.project,
            language: record.language,
            category: record.category,
            is_write: record.is_write.unwrap_or(false),
        });
        Record {
            id: record.id,
            kind: record.kind,
            at: record.at.0,
            until: record.until.map(|until| until.0),
            device: record.device,
            note: record.note,
            heartbeat,
            correction: None,
            removed: None,
        }
    }
}

/// Takes records for `user`: each accepted, a duplicate of one taken before,
/// or rejected with the reason; the accepted ones become one event.
pub fn take(user: &str, records: Vec<Record>, now: Timestamp) -> Result<Vec<RecordResult>> {
    let settings = Settings::load()?;
    let mut known: BTreeMap<NaiveDate, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut results = Vec::with_capacity(records.len());
    let mut accepted = Vec::new();
    for record in records {
        let id = record.id.clone();
        if let Some(reason) = refusal(&record, &settings, now) {
            results.push(RecordResult { id, status: Outcome::Rejected, reason: Some(reason) });
            continue;
        }
        let (ids, seen) = match known.entry(utc_date(record.at)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let date = *entry.key();
                entry.insert((fold::known_ids(user, date)?, store::seen(user, date)?))
            }
        };
        if !ids.insert(id.clone()) {
            results.push(RecordResult { id, status: Outcome::Duplicate, reason: None });
            continue;
        }
        seen.insert(id.clone());
        results.push(RecordResult { id, status: Outcome::Accepted, reason: None });
        accepted.push(record);
    }
    if !accepted.is_empty() {
        for (date, (_, seen)) in &known {
            store::put_seen(user, *date, seen)?;
        }
        events::emit_about(RECORDED, &Recorded { user: user.to_owned(), records: accepted }, user)?;
    }
    Ok(results)
}

pub fn sync(call: Call<(), SyncBody>) -> Result<SyncResult> {
    let records = call.body.records.into_iter().map(Record::from).collect();
    let results = take(&call.principal.user_id, records, now())?;
    let count = |outcome| results.iter().filter(|result| result.status == outcome).count() as u32;
    Ok(SyncResult {
        accepted: count(Outcome::Accepted),
        duplicates: count(Outcome::Duplicate),
        rejected: count(Outcome::Rejected),
        results,
    })
}

/// Whose figures a call may read: the caller's own, or (managers and above)
/// anyone's in the org.
fn whose(call_principal: &Principal, user: Option<&str>) -> Result<String> {
    let Some(user) = user.filter(|user| *user != call_principal.user_id) else {
        return Ok(call_principal.user_id.clone());
    };
    if call_principal.role == Role::Developer {
        return Err(Error::Denied("developers read their own attendance only".into()));
    }
    identity::user(user)?.ok_or_else(|| Error::not_found(format!("no user {user} in this org")))?;
    Ok(user.to_owned())
}

/// The dates a call covers: `[from, to]`, at most [`MAX_DATES`] of them (the
/// answer says where it stopped); empty when `to` is before `from`.
fn dates(from: Option<Date>, to: Option<Date>, tz: Tz) -> (NaiveDate, NaiveDate, bool) {
    let to = to.map_or_else(|| date_of(tz, now()), |date| date.0);
    let from = from.map_or_else(|| to - chrono::Duration::days(6), |date| date.0);
    let last = from.checked_add_signed(chrono::Duration::days(MAX_DATES - 1)).unwrap_or(NaiveDate::MAX);
    if to > last { (from, last, true) } else { (from, to, false) }
}

/// Which days to show.
#[derive(Deserialize, JsonSchema)]
pub struct DaysQuery {
    /// First local date, 6 days before `to` by default.
    pub from: Option<Date>,
    /// Last local date, included; today by default.
    pub to: Option<Date>,
    /// Whose days: the caller's by default; managers and above may name anyone in the org.
    #[schemars(length(min = 1, max = 64))]
    pub user: Option<String>,
}

/// One person's local day.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct DayView {
    pub date: String,
    pub time_zone: String,
    /// Time in sessions minus idle time, in seconds.
    pub worked_s: f64,
    pub idle_s: f64,
    /// Editor activity outside sessions.
    pub active_s: f64,
    /// From the first clock-in to the last clock-out of the day, what was not worked.
    pub breaks_s: f64,
    /// The length of the local day: 82,800, 86,400 or 90,000 seconds.
    pub length_s: f64,
    pub first_in: Option<String>,
    pub last_out: Option<String>,
    pub sessions: Vec<SessionView>,
    /// Sessions the host closed (silence, or the longest session allowed).
    pub auto_closed: u32,
    /// Why records of the day were corrected.
    pub corrections: Vec<String>,
    /// The working-time rules the day breaks, with the org's rules now.
    pub breaches: Vec<Breach>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct DaysPage {
    pub user: String,
    /// Days with anything recorded, in date order.
    pub items: Vec<DayView>,
    /// The last date answered: `to`, or earlier when the range held more than 366 dates.
    pub to: String,
    pub truncated: bool,
}

/// The days of `user` in `[from, to]` with their breaches.
fn days_of(user: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<(NaiveDate, store::StoredDay, Vec<Breach>)>> {
    let rules = store::rules()?.rules;
    let lookback = i64::from(rules.max_consecutive_days.unwrap_or(0));
    let start = from.checked_sub_signed(chrono::Duration::days(lookback)).unwrap_or(from);
    let mut stored = Vec::new();
    for date in store::dates(start, to) {
        stored.push((date, store::day(user, date)?));
    }
    let worked: Vec<(NaiveDate, bool)> =
        stored.iter().map(|(date, day)| (*date, day.as_ref().is_some_and(|day| day.day.worked_s > 0.0))).collect();
    Ok(stored
        .into_iter()
        .zip(streaks(&worked))
        .filter(|((date, _), _)| *date >= from)
        .filter_map(|((date, day), streak)| {
            let day = day?;
            let breaches = rules.breaches(day.day.worked_s, day.day.breaks_s, streak);
            Some((date, day, breaches))
        })
        .collect())
}

pub fn days(call: Call<DaysQuery>) -> Result<DaysPage> {
    let user = whose(&call.principal, call.params.user.as_deref())?;
    let tz = fold::time_zone(&user)?;
    let (from, to, truncated) = dates(call.params.from, call.params.to, tz);
    let items = days_of(&user, from, to)?
        .into_iter()
        .map(|(date, stored, breaches)| {
            let day = stored.day;
            DayView {
                date: date.to_string(),
                time_zone: stored.tz,
                worked_s: day.worked_s,
                idle_s: day.idle_s,
                active_s: day.active_s,
                breaks_s: day.breaks_s,
                length_s: day.length_s,
                first_in: day.sessions.iter().map(|session| session.start).min().map(rfc3339),
                last_out: day
                    .sessions
                    .iter()
                    .filter(|session| !session.open)
                    .map(|session| session.end)
                    .max()
                    .map(rfc3339),
                auto_closed: day.sessions.iter().filter(|session| session.auto_closed).count() as u32,
                sessions: day.sessions.iter().map(SessionView::from).collect(),
                corrections: day.corrections,
                breaches,
            }
        })
        .collect();
    Ok(DaysPage { user, items, to: to.to_string(), truncated })
}

/// Which sessions to list.
#[derive(Deserialize, JsonSchema)]
pub struct SessionsQuery {
    /// First local date, 6 days before `to` by default.
    pub from: Option<Date>,
    /// Last local date, included; today by default.
    pub to: Option<Date>,
    /// Whose sessions: the caller's by default; managers and above may name anyone in the org.
    #[schemars(length(min = 1, max = 64))]
    pub user: Option<String>,
    /// Page size (50 by default).
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<Cursor>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct SessionPage {
    pub user: String,
    /// Sessions overlapping the dates, by start.
    pub items: Vec<SessionView>,
    pub next_cursor: Option<String>,
}

pub fn sessions(call: Call<SessionsQuery>) -> Result<SessionPage> {
    let query = call.params;
    let user = whose(&call.principal, query.user.as_deref())?;
    let tz = fold::time_zone(&user)?;
    let (from, to, _) = dates(query.from, query.to, tz);
    // A session across midnight is in two days, clipped: join its parts.
    let mut sessions: BTreeMap<(Timestamp, String), Session> = BTreeMap::new();
    let mut by_id: BTreeMap<String, (Timestamp, String)> = BTreeMap::new();
    for date in store::dates(from, to) {
        for part in store::day(&user, date)?.map(|stored| stored.day.sessions).unwrap_or_default() {
            match by_id.get(&part.id).and_then(|key| sessions.get_mut(key)) {
                Some(session) => {
                    session.end = session.end.max(part.end);
                    session.idle.extend(part.idle);
                    session.open = part.open;
                }
                None => {
                    let key = (part.start, part.id.clone());
                    by_id.insert(part.id.clone(), key.clone());
                    sessions.insert(key, part);
                }
            }
        }
    }
    let after = query.cursor.as_deref().and_then(decode_key);
    let limit = query.limit.unwrap_or(50) as usize;
    let mut page: Vec<(String, Session)> = sessions
        .into_iter()
        .map(|((start, id), session)| (format!("{start:016}/{id}"), session))
        .filter(|(key, _)| after.as_deref().is_none_or(|after| key.as_str() > after))
        .take(limit + 1)
        .collect();
    let next_cursor = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map(|(key, _)| hex::encode(key))
    });
    Ok(SessionPage {
        user,
        items: page.iter().map(|(_, session)| SessionView::from(session)).collect(),
        next_cursor: next_cursor.flatten(),
    })
}

/// The key a cursor of this plugin stands for: any well-formed cursor is a position.
fn decode_key(cursor: &str) -> Option<String> {
    hex::decode(cursor).ok().map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The org's people over a range of dates.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Team {
    pub from: String,
    /// The last date answered: `to`, or earlier when the range held more than 366 dates.
    pub to: String,
    pub truncated: bool,
    /// One entry per person with anything recorded, by user id.
    pub people: Vec<Member>,
}

/// One person's totals and breaches over the range.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Member {
    pub user: String,
    pub worked_s: f64,
    pub idle_s: f64,
    pub active_s: f64,
    pub days_worked: u32,
    /// Per rule, how many days broke it.
    pub breaches: BTreeMap<String, u32>,
}

/// The range of `team`, with no per-person time zone: dates are each person's local dates.
#[derive(Deserialize, JsonSchema)]
pub struct TeamQuery {
    /// First local date, 6 days before `to` by default.
    pub from: Option<Date>,
    /// Last local date, included; today (UTC) by default.
    pub to: Option<Date>,
}

pub fn team(call: Call<TeamQuery>) -> Result<Team> {
    let (from, to, truncated) = dates(call.params.from, call.params.to, chrono_tz::UTC);
    let rules = store::rules()?.rules;
    let lookback = i64::from(rules.max_consecutive_days.unwrap_or(0));
    let start = from.checked_sub_signed(chrono::Duration::days(lookback)).unwrap_or(from);
    let mut by_user: BTreeMap<String, Vec<(NaiveDate, store::Totals)>> = BTreeMap::new();
    for date in store::dates(start, to) {
        for (user, totals) in store::team_day(date)? {
            by_user.entry(user).or_default().push((date, totals));
        }
    }
    let people = by_user
        .into_iter()
        .filter_map(|(user, days)| {
            let worked: Vec<(NaiveDate, bool)> =
                days.iter().map(|(date, totals)| (*date, totals.worked_s > 0.0)).collect();
            let mut member =
                Member { user, worked_s: 0.0, idle_s: 0.0, active_s: 0.0, days_worked: 0, breaches: BTreeMap::new() };
            let mut any = false;
            for ((date, totals), streak) in days.iter().zip(streaks(&worked)) {
                if *date < from {
                    continue;
                }
                any = true;
                member.worked_s += totals.worked_s;
                member.idle_s += totals.idle_s;
                member.active_s += totals.active_s;
                member.days_worked += u32::from(totals.worked_s > 0.0);
                for breach in rules.breaches(totals.worked_s, totals.breaks_s, streak) {
                    *member.breaches.entry(breach.name().to_owned()).or_default() += 1;
                }
            }
            any.then_some(member)
        })
        .collect();
    Ok(Team { from: from.to_string(), to: to.to_string(), truncated, people })
}

/// Which heartbeats to list: the caller's own, always.
#[derive(Deserialize, JsonSchema)]
pub struct HeartbeatsQuery {
    /// From this instant; the start of today (UTC) by default.
    pub from: Option<Time>,
    /// Until this instant, excluded; a day after `from` by default, at most 31 days after it.
    pub to: Option<Time>,
    /// Someone else's heartbeats are never shown, not even to managers: naming anyone but the caller is refused.
    #[schemars(length(min = 1, max = 64))]
    pub user: Option<String>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatView {
    pub at: String,
    pub project: Option<String>,
    pub language: Option<String>,
    pub category: Option<String>,
    pub is_write: bool,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Heartbeats {
    pub items: Vec<HeartbeatView>,
}

pub fn heartbeats(call: Call<HeartbeatsQuery>) -> Result<Heartbeats> {
    let user = &call.principal.user_id;
    if call.params.user.as_deref().is_some_and(|named| named != user) {
        return Err(Error::Denied("heartbeats are their owner's alone".into()));
    }
    let today = utc_date(now()).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis();
    let from = call.params.from.map_or(today, |time| time.0);
    let to = call.params.to.map_or(from + store::DAY_MS, |time| time.0).min(from + 31 * store::DAY_MS);
    let mut items: Vec<(Timestamp, HeartbeatView)> = Vec::new();
    if from < to {
        for record in store::records(user, from, to)? {
            let live = record.live();
            if let (Kind::Heartbeat, Some(heartbeat), true) = (record.kind, record.heartbeat, live) {
                items.push((
                    record.at,
                    HeartbeatView {
                        at: rfc3339(record.at),
                        project: heartbeat.project,
                        language: heartbeat.language,
                        category: heartbeat.category,
                        is_write: heartbeat.is_write,
                    },
                ));
            }
        }
    }
    items.sort_by_key(|(at, _)| *at);
    Ok(Heartbeats { items: items.into_iter().map(|(_, view)| view).collect() })
}

/// A correction of the caller's own record, with the reason; kept in history.
#[derive(Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum CorrectionBody {
    /// A clock-in that was missed.
    AddClockIn {
        at: Time,
        #[schemars(length(min = 1, max = 500))]
        reason: String,
    },
    /// A clock-out that was missed.
    AddClockOut {
        at: Time,
        #[schemars(length(min = 1, max = 500))]
        reason: String,
    },
    /// An idle span that was not reported.
    AddIdle {
        at: Time,
        until: Time,
        #[schemars(length(min = 1, max = 500))]
        reason: String,
    },
    /// A record that should not count, by the id and time the sessions show.
    Remove {
        #[schemars(length(min = 1, max = 128))]
        id: String,
        at: Time,
        #[schemars(length(min = 1, max = 500))]
        reason: String,
    },
}

/// A correction as accepted.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct CorrectionView {
    /// The id of the record a correction adds, or the one it removes.
    pub id: String,
    pub reason: String,
}

pub fn correct(call: Call<(), CorrectionBody>) -> Result<CorrectionView> {
    let user = call.principal.user_id.clone();
    let now = now();
    let add = |kind: Kind, at: Time, until: Option<Time>| Record {
        id: format!("correction-{now}"),
        kind,
        at: at.0,
        until: until.map(|until| until.0.max(at.0)),
        device: None,
        note: None,
        heartbeat: None,
        correction: None,
        removed: None,
    };
    let (reason, added, removal) = match call.body {
        CorrectionBody::AddClockIn { at, reason } => (reason, Some(add(Kind::ClockIn, at, None)), None),
        CorrectionBody::AddClockOut { at, reason } => (reason, Some(add(Kind::ClockOut, at, None)), None),
        CorrectionBody::AddIdle { at, until, reason } => (reason, Some(add(Kind::Idle, at, Some(until))), None),
        CorrectionBody::Remove { id, at, reason } => (reason, None, Some(Removal { id, at })),
    };
    let id =
        added.as_ref().map_or_else(|| removal.as_ref().map(|r| r.id.clone()).unwrap_or_default(), |r| r.id.clone());
    let correction = fold::Corrected { user: user.clone(), reason: reason.clone(), add: added, remove: removal };
    events::emit_about(CORRECTED, &correction, &user)?;
    Ok(CorrectionView { id, reason })
}

/// The org's rules and when they were set.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct RulesView {
    pub rules: Rules,
    /// When they were last set; absent while the defaults apply.
    pub set_at: Option<String>,
}

fn rules_view(stored: StoredRules) -> RulesView {
    RulesView { rules: stored.rules, set_at: (stored.set_at > 0).then(|| rfc3339(stored.set_at)) }
}

pub fn get_rules(_call: Call) -> Result<RulesView> {
    Ok(rules_view(store::rules()?))
}

pub fn put_rules(call: Call<(), Rules>) -> Result<RulesView> {
    let stored = StoredRules { rules: call.body, set_at: now() };
    store::put_rules(&stored)?;
    events::emit(RULES_UPDATED, &stored)?;
    Ok(rules_view(stored))
}

impl Breach {
    pub fn name(self) -> &'static str {
        match self {
            Breach::MaxDailyHours => "max_daily_hours",
            Breach::MinBreaks => "min_breaks",
            Breach::MaxConsecutiveDays => "max_consecutive_days",
        }
    }
}
