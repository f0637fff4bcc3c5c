//! Changes asked of a workspace, by a person (a route) or by the lifecycle:
//! emitted as `k8s.workspace.requested` and carried out when the plugin folds
//! that event, in log order with what the cluster reports. Only the fold
//! writes a workspace after it is created.

use crate::cluster;
use crate::settings::Settings;
use crate::status;
use crate::workspace::{Desired, Reason, Status, Workspace};
use devpulse_sdk::prelude::*;

pub const REQUESTED: &str = "k8s.workspace.requested";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Make its objects and run it (the route stored it already).
    Create,
    Start,
    Stop,
    Delete,
    /// The IDE, a proxy or the owner's editor was used at `at`.
    Activity,
    /// A job holds off hibernation until `until`.
    KeepAlive,
}

/// What `k8s.workspace.requested` carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Requested {
    pub workspace: String,
    pub action: Action,
    pub reason: Reason,
    /// Who asked: a user id, or the schedule.
    pub by: String,
    pub at: Time,
    /// For a keep-alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    /// For a create: the workspace as the route stored it, so a rebuild,
    /// which replays the log into empty storage, makes it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Box<Workspace>>,
}

impl Requested {
    pub fn new(workspace: &str, action: Action, reason: Reason, by: &str, at: Timestamp) -> Self {
        Requested {
            workspace: workspace.to_owned(),
            action,
            reason,
            by: by.to_owned(),
            at: Time(at),
            until: None,
            created: None,
        }
    }
}

/// Asks for a change; it happens when the plugin folds the event.
pub fn ask(request: &Requested) -> Result<()> {
    events::emit(REQUESTED, request)?;
    Ok(())
}

pub fn on_requested(event: &Event) -> Result<()> {
    let request: Requested = event.json()?;
    let (mut workspace, new) = match (Workspace::load(&request.workspace)?, request.created.as_deref()) {
        (Some(stored), _) => (stored, false),
        (None, Some(created)) => (created.clone(), true),
        (None, None) => return Ok(()),
    };
    if workspace.status == Status::Deleted {
        return Ok(());
    }
    let settings = Settings::load()?;
    carry_out(&settings, &mut workspace, &request)?;
    if new { workspace.save_new() } else { workspace.save() }
}

/// Does what was asked, if it still applies (a stop of a stopped workspace is nothing).
pub fn carry_out(settings: &Settings, workspace: &mut Workspace, request: &Requested) -> Result<()> {
    let at = request.at.0;
    let detail = Some(format!("{:?} by {}", request.action, request.by).to_lowercase());
    match request.action {
        Action::Create => {
            workspace.desired = Desired::Running;
            cluster::provision(settings, workspace, 1)?;
        }
        Action::Start if workspace.desired != Desired::Running => {
            workspace.desired = Desired::Running;
            workspace.last_activity_at = at;
            workspace.stopped_at = None;
            workspace.dormant_at = None;
            cluster::provision(settings, workspace, 1)?;
        }
        Action::Stop if workspace.desired == Desired::Running => {
            workspace.desired = Desired::Stopped;
            workspace.keep_alive_until = None;
            cluster::scale(settings, workspace, 0)?;
        }
        Action::Delete if workspace.desired != Desired::Deleted => {
            // Deleted once the watch sees the Deployment go (at once if it never saw it).
            workspace.desired = Desired::Deleted;
            cluster::remove(workspace)?;
        }
        Action::Activity => {
            workspace.last_activity_at = workspace.last_activity_at.max(at);
            return Ok(());
        }
        Action::KeepAlive => {
            let until = request.until.map_or(at, |until| until.0);
            workspace.keep_alive_until = Some(workspace.keep_alive_until.unwrap_or(0).max(until));
            return Ok(());
        }
        Action::Start | Action::Stop | Action::Delete => return Ok(()),
    }
    status::settle(settings, workspace, request.reason, detail, at)
}
