//! WakaTime-compatible heartbeats, so the editor plugins developers already
//! run can report to DevPulse: point them at
//! `/api/v1/attendance/wakatime/users/current/heartbeats.bulk` with a token in
//! UUID form as their key. Of a heartbeat only its time, project, language,
//! category and write flag are read; the rest of what an editor sends (the
//! file path, line numbers, cursor, branch, dependencies) is never stored.

use crate::record::{Heartbeat, Kind, Record};
use crate::routes::{Outcome, RecordResult, rfc3339, take};
use crate::timeline::{self, date_of};
use crate::{fold, store};
use devpulse_sdk::prelude::*;
use sha2::{Digest, Sha256};

/// A heartbeat as WakaTime's clients send it; other fields are accepted and dropped.
#[derive(Deserialize, JsonSchema)]
pub struct WakaHeartbeat {
    /// Seconds since the Unix epoch.
    #[schemars(range(min = 0.0, max = 32503680000.0))]
    pub time: f64,
    #[schemars(length(max = 200))]
    pub project: Option<String>,
    #[schemars(length(max = 100))]
    pub language: Option<String>,
    #[schemars(length(max = 100))]
    pub category: Option<String>,
    pub is_write: Option<bool>,
}

/// What is kept of a heartbeat, as WakaTime's clients expect it back.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct WakaData {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub project: Option<String>,
    pub language: Option<String>,
    pub category: Option<String>,
    pub is_write: bool,
}

/// One heartbeat's answer: what was kept, or why it was refused.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct WakaAck {
    pub data: Option<WakaData>,
    pub error: Option<String>,
}

/// Per heartbeat, in the order sent, its answer and status: `201` taken,
/// `202` taken before, `400` refused (WakaTime's clients drop it).
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct WakaBulk {
    pub responses: Vec<(WakaAck, u16)>,
}

fn record(heartbeat: WakaHeartbeat) -> (Record, WakaData) {
    let at = (heartbeat.time * 1000.0).round() as Timestamp;
    let is_write = heartbeat.is_write.unwrap_or(false);
    // The same heartbeat sent again (WakaTime's offline queue) gets the same id.
    let identity = format!("{at}|{:?}|{:?}|{:?}|{is_write}", heartbeat.project, heartbeat.language, heartbeat.category);
    let id = format!("wakatime-{}", &hex::encode(Sha256::digest(identity.as_bytes()))[..32]);
    let data = WakaData {
        id: id.clone(),
        time: at as f64 / 1000.0,
        project: heartbeat.project.clone(),
        language: heartbeat.language.clone(),
        category: heartbeat.category.clone(),
        is_write,
    };
    let record = Record {
        id,
        kind: Kind::Heartbeat,
        at,
        until: None,
        device: Some("wakatime".into()),
        note: None,
        heartbeat: Some(Heartbeat {
            project: heartbeat.project,
            language: heartbeat.language,
            category: heartbeat.category,
            is_write,
        }),
        correction: None,
        removed: None,
    };
    (record, data)
}

fn answer(data: WakaData, result: RecordResult) -> (WakaAck, u16) {
    match result.status {
        Outcome::Accepted => (WakaAck { data: Some(data), error: None }, 201),
        Outcome::Duplicate => (WakaAck { data: Some(data), error: None }, 202),
        Outcome::Rejected => (WakaAck { data: None, error: result.reason }, 400),
    }
}

/// `POST .../heartbeats.bulk`: up to 1,000 heartbeats.
pub fn bulk(call: Call<(), Vec<WakaHeartbeat>>) -> Result<WakaBulk> {
    if call.body.len() > crate::routes::MAX_SYNC {
        return Err(Error::invalid(format!("at most {} heartbeats at once", crate::routes::MAX_SYNC)));
    }
    let (records, data): (Vec<Record>, Vec<WakaData>) = call.body.into_iter().map(record).unzip();
    let results = take(&call.principal.user_id, records, now())?;
    Ok(WakaBulk { responses: data.into_iter().zip(results).map(|(data, result)| answer(data, result)).collect() })
}

/// `POST .../heartbeats`: one heartbeat.
pub fn single(call: Call<(), WakaHeartbeat>) -> Result<WakaAck> {
    let (record, data) = record(call.body);
    let result = take(&call.principal.user_id, vec![record], now())?.into_iter().next();
    match result.map(|result| answer(data, result)) {
        // Outside the window of accepted records: a conflict with what the org keeps.
        Some((ack, 400)) => Err(Error::conflict(ack.error.unwrap_or_default())),
        Some((ack, _)) => Ok(ack),
        None => Err(Error::internal("no result for the heartbeat")),
    }
}

/// Today's coding time, as editor status bars show it.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Statusbar {
    pub data: StatusbarData,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct StatusbarData {
    pub grand_total: GrandTotal,
    pub range: StatusbarRange,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct GrandTotal {
    /// `1:05`
    pub digital: String,
    pub hours: u64,
    pub minutes: u64,
    /// `1 hr 5 mins`
    pub text: String,
    pub total_seconds: f64,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct StatusbarRange {
    pub date: String,
    pub start: String,
    pub end: String,
    pub timezone: String,
}

/// `GET .../statusbar/today`: time with heartbeats today (local date), in
/// sessions and outside them, joined while gaps stay under the idle timeout.
pub fn today(call: Call) -> Result<Statusbar> {
    let user = &call.principal.user_id;
    let settings = fold::Settings::load()?;
    let tz = fold::time_zone(user)?;
    let now = now();
    let date = date_of(tz, now);
    let (start, end) = (timeline::day_start(tz, date), timeline::day_start(tz, date.succ_opt().unwrap_or(date)));
    // Heartbeats alone, with no clock records: all of them count, in a session or not.
    let beats: Vec<Record> = store::records(user, start, end)?
        .into_iter()
        .filter(|record| record.kind == Kind::Heartbeat && record.live())
        .collect();
    let coding = timeline::build(&beats, settings.limits, now);
    let total_ms: i64 = coding.active.iter().map(|(from, until)| until - from).sum();
    let total_seconds = total_ms as f64 / 1000.0;
    let minutes_total = (total_ms / 60_000) as u64;
    let (hours, minutes) = (minutes_total / 60, minutes_total % 60);
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let text =
        if hours > 0 { format!("{} {}", plural(hours, "hr"), plural(minutes, "min")) } else { plural(minutes, "min") };
    Ok(Statusbar {
        data: StatusbarData {
            grand_total: GrandTotal { digital: format!("{hours}:{minutes:02}"), hours, minutes, text, total_seconds },
            range: StatusbarRange {
                date: date.to_string(),
                start: rfc3339(start),
                end: rfc3339(end),
                timezone: tz.name().to_owned(),
            },
        },
    })
}
