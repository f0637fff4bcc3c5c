//! Where the plugin keeps what it folded, one org at a time. Each document has
//! one kind of writer, so a route and the fold never overwrite each other:
//!
//! - `b/{user}/{utc date}`: the records whose time falls on that UTC date (fold)
//! - `seen/{user}/{utc date}`: ids routes accepted, folded or not yet (routes)
//! - `clock/{user}`: the last clock-in or clock-out a route took (routes)
//! - `d/{user}/{local date}`: one person's day with its sessions (fold)
//! - `t/{local date}`: every person's totals of that date, for team views (fold)
//! - `open/{user}`: a session still open, so a schedule can close it when silent (fold)
//! - `rules`: the org's rules and when they were set (routes and fold; the newest wins)

use crate::record::Record;
use crate::rules::Rules;
use crate::timeline::Day;
use chrono::NaiveDate;
use devpulse_sdk::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

pub const DAY_MS: i64 = 86_400_000;

/// The UTC date of `at`, the bucket of records it falls in.
pub fn utc_date(at: Timestamp) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(at).unwrap_or_default().date_naive()
}

/// Every date from `first` to `last`, both included.
pub fn dates(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |date| *date <= last)
}

/// The records of one person on one UTC date, by id.
pub type Bucket = BTreeMap<String, Record>;

fn bucket_key(user: &str, date: NaiveDate) -> String {
    format!("b/{user}/{date}")
}

pub fn bucket(user: &str, date: NaiveDate) -> Result<Bucket> {
    Ok(storage::get(&bucket_key(user, date))?.unwrap_or_default())
}

pub fn put_bucket(user: &str, date: NaiveDate, bucket: &Bucket) -> Result<()> {
    storage::put(&bucket_key(user, date), bucket)
}

/// Every record of `user` whose time falls in `[from, to)`.
pub fn records(user: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Record>> {
    let mut all = Vec::new();
    for date in dates(utc_date(from), utc_date(to)) {
        all.extend(bucket(user, date)?.into_values().filter(|record| (from..to).contains(&record.at)));
    }
    Ok(all)
}

fn seen_key(user: &str, date: NaiveDate) -> String {
    format!("seen/{user}/{date}")
}

/// Ids a route accepted for `user` on UTC `date`.
pub fn seen(user: &str, date: NaiveDate) -> Result<BTreeSet<String>> {
    Ok(storage::get(&seen_key(user, date))?.unwrap_or_default())
}

pub fn put_seen(user: &str, date: NaiveDate, ids: &BTreeSet<String>) -> Result<()> {
    storage::put(&seen_key(user, date), ids)
}

/// The last clock action a route took for a person, folded or not yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Clock {
    pub record: Record,
}

pub fn clock(user: &str) -> Result<Option<Clock>> {
    storage::get(&format!("clock/{user}"))
}

pub fn put_clock(user: &str, clock: &Clock) -> Result<()> {
    storage::put(&format!("clock/{user}"), clock)
}

/// One person's day as stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredDay {
    pub tz: String,
    pub day: Day,
}

fn day_key(user: &str, date: NaiveDate) -> String {
    format!("d/{user}/{date}")
}

pub fn day(user: &str, date: NaiveDate) -> Result<Option<StoredDay>> {
    storage::get(&day_key(user, date))
}

pub fn put_day(user: &str, date: NaiveDate, day: Option<&StoredDay>) -> Result<()> {
    match day {
        Some(day) => storage::put(&day_key(user, date), day),
        None => storage::delete(&day_key(user, date)).map(|_| ()),
    }
}

/// A person's totals of one date, what team views read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub worked_s: f64,
    pub idle_s: f64,
    pub active_s: f64,
    pub breaks_s: f64,
    pub sessions: u32,
}

impl From<&Day> for Totals {
    fn from(day: &Day) -> Self {
        Totals {
            worked_s: day.worked_s,
            idle_s: day.idle_s,
            active_s: day.active_s,
            breaks_s: day.breaks_s,
            sessions: day.sessions.len() as u32,
        }
    }
}

/// Everyone's totals of one local date, by user.
pub type TeamDay = BTreeMap<String, Totals>;

fn team_key(date: NaiveDate) -> String {
    format!("t/{date}")
}

pub fn team_day(date: NaiveDate) -> Result<TeamDay> {
    Ok(storage::get(&team_key(date))?.unwrap_or_default())
}

pub fn put_team_day(date: NaiveDate, team: &TeamDay) -> Result<()> {
    if team.is_empty() { storage::delete(&team_key(date)).map(|_| ()) } else { storage::put(&team_key(date), team) }
}

/// A session still open as of the last fold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpenSession {
    pub last_activity: Timestamp,
}

pub fn set_open(user: &str, open: Option<&OpenSession>) -> Result<()> {
    let key = format!("open/{user}");
    match open {
        Some(open) => storage::put(&key, open),
        None => storage::delete(&key).map(|_| ()),
    }
}

/// Every person with a session open as of the last fold.
pub fn open_sessions() -> Result<Vec<(String, OpenSession)>> {
    Ok(storage::scan_all::<OpenSession>("open/")?
        .into_iter()
        .map(|(key, open)| (key.trim_start_matches("open/").to_owned(), open))
        .collect())
}

/// The org's rules and when they were set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoredRules {
    pub rules: Rules,
    pub set_at: Timestamp,
}

pub fn rules() -> Result<StoredRules> {
    Ok(storage::get("rules")?.unwrap_or_default())
}

/// Stores `rules` unless newer ones are there already.
pub fn put_rules(rules: &StoredRules) -> Result<()> {
    if self::rules()?.set_at <= rules.set_at { storage::put("rules", rules) } else { Ok(()) }
}
