//! The facts the rules need, folded from the events other plugins and the
//! host announce (`docs/events.md`): never another plugin's storage. Each
//! event replaces what it is about, so a repeated event changes nothing and
//! the newest announcement of a pull request or a deployment wins.

use devpulse_sdk::prelude::*;
use std::collections::BTreeMap;

pub const PULL_UPDATED: &str = "github.pull.updated";
pub const DEPLOYMENT_UPDATED: &str = "github.deployment.updated";
pub const DAY_UPDATED: &str = "attendance.day.updated";
pub const ATTENDANCE_RULES: &str = "attendance.rules.updated";
pub const PLUGIN_LOADED: &str = "system.plugin.loaded";
pub const PLUGIN_FAILED: &str = "system.plugin.failed";
pub const PLUGIN_DISABLED: &str = "system.plugin.disabled";
pub const PLUGIN_ENABLED: &str = "system.plugin.enabled";
pub const DEAD_LETTERED: &str = "system.event.dead_lettered";
pub const BAD_SIGNATURE: &str = "system.webhook.bad_signature";
pub const LAGGING: &str = "system.delivery.lagging";
pub const WORKSPACE_UPDATED: &str = "k8s.workspace.updated";

const HOUR: Timestamp = 3_600_000;
const DAY: Timestamp = 24 * HOUR;

/// An open pull request, from `github.pull.updated` (closed and merged ones are forgotten).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pull {
    pub repo: String,
    pub number: u64,
    pub title: String,
    pub url: String,
    pub author: String,
    pub author_user: Option<String>,
    pub author_bot: bool,
    pub state: String,
    pub draft: bool,
    pub created_at: Option<Time>,
    pub ready_at: Option<Time>,
    pub first_review_at: Option<Time>,
    pub requested_reviewers: Vec<String>,
    pub size: u64,
    pub last_commit_at: Option<Time>,
    #[serde(default)]
    pub merged_at: Option<Time>,
    #[serde(default)]
    pub started_at: Option<Time>,
    #[serde(default)]
    pub reviews: u64,
    #[serde(default)]
    pub rework_commits: u64,
    /// The announcement it was read from.
    #[serde(default)]
    pub event_id: String,
}

impl Pull {
    pub fn key(repo: &str, number: u64) -> String {
        format!("pull/{repo}/{number:010}")
    }

    /// The newest time the pull request shows its author at work.
    pub fn activity_at(&self) -> Option<Timestamp> {
        [self.created_at, self.ready_at, self.last_commit_at, self.merged_at].into_iter().flatten().map(|t| t.0).max()
    }
}

/// A merged pull request, for the Delivery Reliability Score over a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    pub merged_at: Timestamp,
    /// First commit (or creation) to merge, in seconds.
    pub cycle_time_s: Option<f64>,
    pub reviewed: bool,
    pub reworked: bool,
    pub event_id: String,
}

/// A production deployment's outcome, from `github.deployment.updated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub repo: String,
    pub id: String,
    pub environment: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub at: Time,
    #[serde(default)]
    pub event_ids: Vec<String>,
}

impl Deployment {
    pub fn failed(&self) -> bool {
        self.outcome == "failure"
    }
}

/// A person's day, from `attendance.day.updated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Day {
    pub user: String,
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    pub time_zone: String,
    pub worked_s: f64,
    pub breaks_s: f64,
    /// Attendance rules the day broke (`max_daily_hours`, `min_breaks`).
    pub breaches: Vec<String>,
    #[serde(default)]
    pub event_id: String,
}

/// What the host said about a plugin that is not running as it should.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginTrouble {
    /// The plugin, or the file that failed when no plugin is known.
    pub name: String,
    /// `failed` or `disabled`.
    pub what: String,
    pub reason: Option<String>,
    pub at: Timestamp,
    pub event_id: String,
}

/// A dead-lettered event or a minute of bad signatures: counted over the last hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub at: Timestamp,
    pub event_id: String,
    pub detail: String,
}

/// The host's latest report that a plugin is behind (sent each minute while it is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub plugin: String,
    pub behind: u64,
    pub lag_seconds: u64,
    /// When the host reported it.
    pub at: Timestamp,
    /// When the next report is due if the lag goes on.
    pub next_report_within_seconds: u64,
    pub event_id: String,
}

/// A workspace whose pod cannot run, from `k8s.workspace.updated` (forgotten
/// once it runs, stops or goes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedWorkspace {
    pub id: String,
    pub owner: String,
    pub repo: String,
    pub branch: String,
    pub failure: Option<String>,
    pub at: Timestamp,
    pub event_id: String,
}

impl FailedWorkspace {
    pub fn key(id: &str) -> String {
        format!("workspace/{id}")
    }
}

/// The attendance rules the working-time rules compare against, as announced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttendanceRules {
    pub max_consecutive_days: Option<u32>,
}

impl Default for AttendanceRules {
    /// Attendance's default until its rules are announced.
    fn default() -> Self {
        AttendanceRules { max_consecutive_days: Some(6) }
    }
}

/// What an event touched, for evaluating just that.
#[derive(Clone, Debug, PartialEq)]
pub enum Touched {
    /// A pull request, and the reviewers whose load may have moved.
    Pull {
        repo: String,
        number: u64,
        reviewers: Vec<String>,
        author: Option<String>,
    },
    /// A repository's deployments.
    Repo(String),
    /// A workspace, by id.
    Workspace(String),
    Person(String),
    Platform,
    Everything,
    Nothing,
}

/// Folds one event into the facts; what it touched.
pub fn fold(event: &Event) -> Result<Touched> {
    match event.kind.as_str() {
        PULL_UPDATED => {
            let mut pull: Pull = event.json()?;
            pull.event_id = event.id.clone();
            pull_updated(pull)
        }
        DEPLOYMENT_UPDATED => {
            let deployment: Deployment = event.json()?;
            storage::put(&format!("deploy/{}/{}", deployment.repo, deployment.id), &deployment)?;
            Ok(Touched::Repo(deployment.repo))
        }
        DAY_UPDATED => {
            let mut day: Day = event.json()?;
            day.event_id = event.id.clone();
            storage::put(&format!("day/{}/{}", day.user, day.date), &day)?;
            if day.worked_s > 0.0 {
                let end_of_day = end_of_local_day(&day.date, &day.time_zone).unwrap_or(event.occurred_at);
                note_activity(&day.user, end_of_day)?;
            }
            Ok(Touched::Person(day.user))
        }
        ATTENDANCE_RULES => {
            #[derive(Deserialize)]
            struct Announced {
                rules: AttendanceRules,
            }
            storage::put("attendance-rules", &event.json::<Announced>()?.rules)?;
            Ok(Touched::Everything)
        }
        PLUGIN_FAILED => {
            #[derive(Deserialize)]
            struct Failed {
                source: String,
                plugin: Option<String>,
                reason: String,
            }
            let failed: Failed = event.json()?;
            let name = failed.plugin.unwrap_or(failed.source);
            let trouble = PluginTrouble {
                name: name.clone(),
                what: "failed".into(),
                reason: Some(failed.reason),
                at: event.occurred_at,
                event_id: event.id.clone(),
            };
            storage::put(&format!("plugin/failed/{name}"), &trouble)?;
            Ok(Touched::Platform)
        }
        PLUGIN_LOADED => {
            #[derive(Deserialize)]
            struct Loaded {
                plugin: String,
                source: String,
            }
            let loaded: Loaded = event.json()?;
            storage::delete(&format!("plugin/failed/{}", loaded.plugin))?;
            storage::delete(&format!("plugin/failed/{}", loaded.source))?;
            Ok(Touched::Platform)
        }
        PLUGIN_DISABLED | PLUGIN_ENABLED => {
            #[derive(Deserialize)]
            struct Switched {
                plugin: String,
            }
            let plugin = event.json::<Switched>()?.plugin;
            let key = format!("plugin/disabled/{plugin}");
            if event.kind == PLUGIN_DISABLED {
                let trouble = PluginTrouble {
                    name: plugin,
                    what: "disabled".into(),
                    reason: None,
                    at: event.occurred_at,
                    event_id: event.id.clone(),
                };
                storage::put(&key, &trouble)?;
            } else {
                storage::delete(&key)?;
            }
            Ok(Touched::Platform)
        }
        DEAD_LETTERED => {
            #[derive(Deserialize)]
            struct Dead {
                plugin: String,
                event_kind: String,
            }
            let dead: Dead = event.json()?;
            let incident = Incident {
                at: event.occurred_at,
                event_id: event.id.clone(),
                detail: format!("{} gave up on a {} event", dead.plugin, dead.event_kind),
            };
            storage::put(&format!("dead/{:013}/{}", event.occurred_at, event.id), &incident)?;
            Ok(Touched::Platform)
        }
        BAD_SIGNATURE => {
            #[derive(Deserialize)]
            struct Refused {
                source: String,
            }
            let source = event.json::<Refused>()?.source;
            let incident = Incident { at: event.occurred_at, event_id: event.id.clone(), detail: source.clone() };
            storage::put(&format!("badsig/{source}/{:013}", event.occurred_at), &incident)?;
            Ok(Touched::Platform)
        }
        LAGGING => {
            #[derive(Deserialize)]
            struct Lagging {
                plugin: String,
                behind: u64,
                lag_seconds: u64,
                next_report_within_seconds: u64,
            }
            let lagging: Lagging = event.json()?;
            let lag = Lag {
                plugin: lagging.plugin.clone(),
                behind: lagging.behind,
                lag_seconds: lagging.lag_seconds,
                at: event.occurred_at,
                next_report_within_seconds: lagging.next_report_within_seconds,
                event_id: event.id.clone(),
            };
            storage::put(&format!("lag/{}", lagging.plugin), &lag)?;
            Ok(Touched::Platform)
        }
        crate::rules::UPDATED => {
            let stored: crate::rules::Stored = event.json()?;
            Ok(if crate::rules::keep(&stored)? { Touched::Everything } else { Touched::Nothing })
        }
        WORKSPACE_UPDATED => {
            #[derive(Deserialize)]
            struct Updated {
                id: String,
                owner: String,
                repo: String,
                branch: String,
                status: String,
                failure: Option<String>,
            }
            let updated: Updated = event.json()?;
            let key = FailedWorkspace::key(&updated.id);
            if updated.status == "failed" {
                let failed = FailedWorkspace {
                    id: updated.id.clone(),
                    owner: updated.owner,
                    repo: updated.repo,
                    branch: updated.branch,
                    failure: updated.failure,
                    at: event.occurred_at,
                    event_id: event.id.clone(),
                };
                storage::put(&key, &failed)?;
            } else {
                storage::delete(&key)?;
            }
            Ok(Touched::Workspace(updated.id))
        }
        _ => Ok(Touched::Nothing),
    }
}

/// An open pull request is kept with its reviewers indexed; a closed or merged
/// one is forgotten, which resolves its alerts.
fn pull_updated(pull: Pull) -> Result<Touched> {
    let key = Pull::key(&pull.repo, pull.number);
    let before: Option<Pull> = storage::get(&key)?;
    let mut reviewers: Vec<String> = before.iter().flat_map(|before| before.requested_reviewers.clone()).collect();
    for reviewer in before.iter().flat_map(|before| &before.requested_reviewers) {
        storage::delete(&request_key(reviewer, &pull.repo, pull.number))?;
    }
    if let (Some(user), Some(at)) = (&pull.author_user, pull.activity_at()) {
        note_activity(user, at)?;
    }
    let touched = |reviewers: Vec<String>| Touched::Pull {
        repo: pull.repo.clone(),
        number: pull.number,
        reviewers,
        author: pull.author_user.clone(),
    };
    if pull.state != "open" {
        storage::delete(&key)?;
        if let (Some(merged_at), "merged") = (pull.merged_at, pull.state.as_str()) {
            let merged = Merged {
                merged_at: merged_at.0,
                cycle_time_s: pull.started_at.map(|started| (merged_at.0 - started.0).max(0) as f64 / 1000.0),
                reviewed: pull.reviews > 0,
                reworked: pull.rework_commits > 0,
                event_id: pull.event_id.clone(),
            };
            storage::put(&format!("merged/{}/{:010}", pull.repo, pull.number), &merged)?;
        }
        return Ok(touched(reviewers));
    }
    if !pull.draft {
        for reviewer in &pull.requested_reviewers {
            storage::put(&request_key(reviewer, &pull.repo, pull.number), &pull.url)?;
        }
    }
    reviewers.extend(pull.requested_reviewers.iter().cloned());
    reviewers.sort();
    reviewers.dedup();
    storage::put(&key, &pull)?;
    Ok(touched(reviewers))
}

/// The index of pending review requests, one document per (reviewer, pull request).
pub fn request_key(reviewer: &str, repo: &str, number: u64) -> String {
    format!("requested/{reviewer}/{repo}/{number:010}")
}

/// Keeps the latest moment a person was seen at work.
fn note_activity(user: &str, at: Timestamp) -> Result<()> {
    storage::update(&format!("active/{user}"), at, |latest| *latest = (*latest).max(at)).map(drop)
}

/// The last instant of a local date in a time zone.
pub fn end_of_local_day(date: &str, zone: &str) -> Option<Timestamp> {
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let zone: chrono_tz::Tz = zone.parse().ok()?;
    let next = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
    let start = next.and_local_timezone(zone).earliest()?;
    Some(start.timestamp_millis() - 1)
}

/// Drops what no rule can look at any more: incidents over an hour old and
/// days and deployments older than the longest window a rule may have.
pub fn prune(now: Timestamp) -> Result<()> {
    for prefix in ["dead/", "badsig/"] {
        for (key, incident) in storage::scan_all::<Incident>(prefix)? {
            if incident.at < now - HOUR {
                storage::delete(&key)?;
            }
        }
    }
    for (key, lag) in storage::scan_all::<Lag>("lag/")? {
        if lag.at < now - HOUR {
            storage::delete(&key)?;
        }
    }
    for (key, merged) in storage::scan_all::<Merged>("merged/")? {
        if merged.merged_at < now - 400 * DAY {
            storage::delete(&key)?;
        }
    }
    for (key, deployment) in storage::scan_all::<Deployment>("deploy/")? {
        if deployment.at.0 < now - 400 * DAY {
            storage::delete(&key)?;
        }
    }
    for (key, day) in storage::scan_all::<Day>("day/")? {
        if end_of_local_day(&day.date, &day.time_zone).is_some_and(|end| end < now - 400 * DAY) {
            storage::delete(&key)?;
        }
    }
    Ok(())
}

/// The known days of a person, by date.
pub fn days_of(user: &str) -> Result<BTreeMap<String, Day>> {
    Ok(storage::scan_all::<Day>(&format!("day/{user}/"))?.into_iter().map(|(_, day)| (day.date.clone(), day)).collect())
}
