//! `k8s.workspace.updated`: a workspace's status changed, for the live stream,
//! the health plugin and anyone else (`docs/events.md`).

use crate::workspace::{Preview, Reason, Status, Workspace};
use devpulse_sdk::prelude::*;

pub const UPDATED: &str = "k8s.workspace.updated";

/// What `k8s.workspace.updated` carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceUpdated {
    pub id: String,
    /// The DevPulse user it belongs to.
    pub owner: String,
    /// `owner/name`.
    pub repo: String,
    pub branch: String,
    pub tier: String,
    pub status: Status,
    /// The status before; absent for a new workspace.
    pub previous: Option<Status>,
    pub reason: Reason,
    /// Why it failed, when `status` is `failed`.
    pub failure: Option<String>,
    pub at: Time,
    /// The pull request of a preview workspace.
    pub preview: Option<Preview>,
}

/// Announces the workspace's latest transition.
pub fn updated(workspace: &Workspace) -> Result<()> {
    let Some(last) = workspace.history.last() else { return Ok(()) };
    let payload = WorkspaceUpdated {
        id: workspace.id.clone(),
        owner: workspace.owner.clone(),
        repo: workspace.repo.clone(),
        branch: workspace.branch.clone(),
        tier: workspace.tier.clone(),
        status: workspace.status,
        previous: last.from,
        reason: last.reason,
        failure: workspace.failure.clone(),
        at: last.at,
        preview: workspace.preview.clone(),
    };
    events::emit(UPDATED, &payload)?;
    Ok(())
}
