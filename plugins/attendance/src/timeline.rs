//! From records to sessions and days: the plugin's figures as a pure function
//! of what was recorded (and, for a session still open, of the time now), so
//! folding the same records in any order gives the same days.
//!
//! A session runs from a clock-in to a clock-out. It closes by itself, at its
//! last activity, when nothing is heard from it for longer than the silence
//! limit, and at the latest after the longest session allowed. Its idle time
//! is the idle spans the client reported and, when it receives heartbeats, the
//! gaps between activity longer than the idle timeout. Heartbeats outside any
//! session are active time, joined while their gaps stay under the timeout.
//! Days are local calendar days, split at local midnight in real elapsed time.

use crate::record::{Kind, Record};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use devpulse_sdk::Timestamp;
use serde::{Deserialize, Serialize};

/// How records become sessions, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A gap between activity longer than this is idle time.
    pub idle_timeout: i64,
    /// A session silent for longer than this closed at its last activity.
    pub silence: i64,
    /// No session lasts longer than this.
    pub max_session: i64,
}

/// A span of time, `[start, end)` in milliseconds.
pub type Span = (Timestamp, Timestamp);

/// One work session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Session {
    /// The id of the record that opened it.
    pub id: String,
    pub start: Timestamp,
    /// The clock-out, the last activity of a closed silent session, or, while
    /// it is open, its last activity so far.
    pub end: Timestamp,
    /// No clock-out yet and not closed by silence.
    pub open: bool,
    /// Closed by the host: silent too long, or longer than the longest session.
    pub auto_closed: bool,
    pub device: Option<String>,
    /// Idle time inside the session, merged and in time order.
    pub idle: Vec<Span>,
}

/// Sessions and active time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    pub sessions: Vec<Session>,
    /// Heartbeat runs outside sessions.
    pub active: Vec<Span>,
    /// Corrections: when, and why.
    pub corrections: Vec<(Timestamp, String)>,
}

struct Open<'a> {
    record: &'a Record,
    last_activity: Timestamp,
    heartbeats: Vec<Timestamp>,
    reported_idle: Vec<Span>,
}

/// Builds the timeline of `records` (any order; removed ones are skipped) as of `now`.
pub fn build(records: &[Record], limits: Limits, now: Timestamp) -> Timeline {
    let mut live: Vec<&Record> = records.iter().filter(|record| record.live()).collect();
    live.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut timeline = Timeline::default();
    let mut outside = Vec::new();
    let mut open: Option<Open> = None;
    for record in live {
        if let Some(reason) = &record.correction {
            timeline.corrections.push((record.at, reason.clone()));
        }
        if let Some(session) = open.take() {
            if record.at - session.last_activity > limits.silence || record.at > session.record.at + limits.max_session
            {
                timeline.sessions.push(close(session, None, limits));
            } else {
                open = Some(session);
            }
        }
        match (record.kind, open.as_mut()) {
            (Kind::ClockIn, None) => {
                open =
                    Some(Open { record, last_activity: record.at, heartbeats: Vec::new(), reported_idle: Vec::new() });
            }
            (Kind::ClockIn, Some(session)) => session.last_activity = session.last_activity.max(record.at),
            (Kind::ClockOut, Some(_)) => {
                if let Some(session) = open.take() {
                    timeline.sessions.push(close(session, Some(record.at), limits));
                }
            }
            (Kind::ClockOut, None) => {}
            (Kind::Idle, Some(session)) => {
                let until = record.until.unwrap_or(record.at).max(record.at);
                session.reported_idle.push((record.at, until));
                session.last_activity = session.last_activity.max(until);
            }
            (Kind::Idle, None) => {}
            (Kind::Heartbeat, Some(session)) => {
                session.heartbeats.push(record.at);
                session.last_activity = session.last_activity.max(record.at);
            }
            (Kind::Heartbeat, None) => outside.push(record.at),
        }
    }
    if let Some(session) = open {
        let silent = now - session.last_activity > limits.silence || now > session.record.at + limits.max_session;
        let mut closed = close(session, None, limits);
        closed.open = !silent;
        closed.auto_closed = silent;
        timeline.sessions.push(closed);
    }
    timeline.active = runs(&outside, limits.idle_timeout);
    timeline
}

/// Closes a session at `clock_out`, or (auto-closed) at its last activity.
fn close(session: Open, clock_out: Option<Timestamp>, limits: Limits) -> Session {
    let start = session.record.at;
    let latest = start + limits.max_session;
    let (end, auto_closed) = match clock_out {
        Some(at) if at <= latest => (at, false),
        Some(_) => (latest, true),
        None => (session.last_activity.min(latest), true),
    };
    let end = end.max(start);
    let mut idle: Vec<Span> = session
        .reported_idle
        .iter()
        .map(|&(from, until)| (from.max(start), until.min(end)))
        .filter(|(from, until)| from < until)
        .collect();
    if !session.heartbeats.is_empty() {
        let mut points: Vec<Timestamp> = session.heartbeats.iter().copied().filter(|at| *at <= end).collect();
        points.push(start);
        points.push(end);
        points.sort_unstable();
        idle.extend(
            points.windows(2).filter(|pair| pair[1] - pair[0] > limits.idle_timeout).map(|pair| (pair[0], pair[1])),
        );
    }
    Session {
        id: session.record.id.clone(),
        start,
        end,
        open: false,
        auto_closed,
        device: session.record.device.clone(),
        idle: merge(idle),
    }
}

/// Heartbeats joined into runs while their gaps stay within `timeout`.
fn runs(times: &[Timestamp], timeout: i64) -> Vec<Span> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut runs: Vec<Span> = Vec::new();
    for at in sorted {
        match runs.last_mut() {
            Some(run) if at - run.1 <= timeout => run.1 = at,
            _ => runs.push((at, at)),
        }
    }
    runs
}

/// The union of `spans`, in time order.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut merged: Vec<Span> = Vec::new();
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn overlap(a: Span, b: Span) -> i64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0)
}

/// The instant a local date begins in `tz`: local midnight, or the first
/// instant after it where a DST change skips midnight.
pub fn day_start(tz: Tz, date: NaiveDate) -> Timestamp {
    let mut local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..48 {
        if let Some(at) = tz.from_local_datetime(&local).earliest() {
            return at.timestamp_millis();
        }
        local += chrono::Duration::minutes(30);
    }
    date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis()
}

/// The local date of `at` in `tz`.
pub fn date_of(tz: Tz, at: Timestamp) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(at).unwrap_or_default().with_timezone(&tz).date_naive()
}

/// What one person did on one local date; every duration in real seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Day {
    /// Time in sessions minus idle time.
    pub worked_s: f64,
    /// Idle time inside sessions.
    pub idle_s: f64,
    /// Heartbeat activity outside sessions.
    pub active_s: f64,
    /// From the first clock-in to the last clock-out of the day, what was not worked.
    pub breaks_s: f64,
    /// How long the local day lasted: 23, 24 or 25 hours across DST changes.
    pub length_s: f64,
    /// The sessions overlapping the day, clipped to it.
    pub sessions: Vec<Session>,
    /// Why records of the day were corrected.
    pub corrections: Vec<String>,
}

impl Day {
    /// True when anything happened on the day.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.active_s == 0.0 && self.corrections.is_empty()
    }
}

/// The figures of local `date` in `tz`.
pub fn day(timeline: &Timeline, tz: Tz, date: NaiveDate) -> Day {
    let bounds = (day_start(tz, date), day_start(tz, date.succ_opt().unwrap_or(date)));
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let mut day = Day { length_s: seconds(bounds.1 - bounds.0), ..Day::default() };
    let mut worked = 0;
    let mut idle = 0;
    let mut span: Option<Span> = None;
    for session in &timeline.sessions {
        let clipped = (session.start.max(bounds.0), session.end.min(bounds.1));
        // A session closed where it began (silent from its clock-in) still shows on its day.
        let empty_inside = session.start == session.end && (bounds.0..bounds.1).contains(&session.start);
        if clipped.0 >= clipped.1 && !empty_inside {
            continue;
        }
        let session_idle: i64 = session.idle.iter().map(|&part| overlap(part, clipped)).sum();
        worked += (clipped.1 - clipped.0) - session_idle;
        idle += session_idle;
        span = Some(span.map_or(clipped, |(first, last)| (first.min(clipped.0), last.max(clipped.1))));
        let idle_spans = session
            .idle
            .iter()
            .filter(|&&part| overlap(part, clipped) > 0)
            .map(|&(from, until)| (from.max(clipped.0), until.min(clipped.1)))
            .collect();
        day.sessions.push(Session { start: clipped.0, end: clipped.1, idle: idle_spans, ..session.clone() });
    }
    day.worked_s = seconds(worked);
    day.idle_s = seconds(idle);
    day.breaks_s = span.map_or(0.0, |(first, last)| seconds(last - first - worked));
    day.active_s = seconds(timeline.active.iter().map(|&run| overlap(run, bounds)).sum());
    day.corrections = timeline
        .corrections
        .iter()
        .filter(|(at, _)| (bounds.0..bounds.1).contains(at))
        .map(|(_, reason)| reason.clone())
        .collect();
    day
}
