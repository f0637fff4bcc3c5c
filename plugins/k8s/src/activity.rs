//! The owner's editor heartbeats for a workspace's repository count as its
//! activity, as IDE reports do: read from the attendance plugin's
//! `attendance.recorded` events (a heartbeat's project is matched with the
//! repository's name, or with `owner/name`).

use crate::workspace::{Desired, Workspace};
use devpulse_sdk::prelude::*;

pub const RECORDED: &str = "attendance.recorded";

#[derive(Deserialize)]
struct Recorded {
    user: String,
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    kind: String,
    at: Timestamp,
    #[serde(default)]
    removed: Option<String>,
    #[serde(default)]
    heartbeat: Option<Heartbeat>,
}

#[derive(Deserialize)]
struct Heartbeat {
    project: Option<String>,
}

/// True when an editor's project names the repository.
pub fn is_project_of(project: &str, repo: &str) -> bool {
    let name = repo.rsplit('/').next().unwrap_or(repo);
    project.eq_ignore_ascii_case(repo) || project.eq_ignore_ascii_case(name)
}

pub fn on_recorded(event: &Event) -> Result<()> {
    let recorded: Recorded = event.json()?;
    let heartbeats: Vec<(&str, Timestamp)> = recorded
        .records
        .iter()
        .filter(|record| record.kind == "heartbeat" && record.removed.is_none())
        .filter_map(|record| Some((record.heartbeat.as_ref()?.project.as_deref()?, record.at)))
        .collect();
    if heartbeats.is_empty() {
        return Ok(());
    }
    for mut workspace in Workspace::of_owner(&recorded.user)? {
        let latest =
            heartbeats.iter().filter(|(project, _)| is_project_of(project, &workspace.repo)).map(|(_, at)| *at).max();
        if let Some(at) = latest
            && workspace.desired == Desired::Running
            && at > workspace.last_activity_at
        {
            workspace.last_activity_at = at;
            workspace.save()?;
        }
    }
    Ok(())
}
