//! A workspace's status, derived from what it is asked to be and what the
//! cluster was last seen doing; and the one place a status changes.

use crate::announce;
use crate::cost;
use crate::settings::Settings;
use crate::workspace::{Desired, Reason, Status, Workspace};
use devpulse_sdk::prelude::*;

/// Container waiting reasons that do not clear by themselves.
const FAILING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

pub fn is_failing(reason: &str) -> bool {
    FAILING.contains(&reason)
}

/// The status the workspace is in, and why it failed if it did.
pub fn derive(workspace: &Workspace) -> (Status, Option<String>) {
    let observed = &workspace.observed;
    let pods_gone = observed.pods.is_empty();
    match workspace.desired {
        Desired::Deleted if observed.deployment_deleted || observed.deployment.is_none() && pods_gone => {
            (Status::Deleted, None)
        }
        Desired::Deleted => (Status::Deleting, None),
        Desired::Stopped if pods_gone => (Status::Stopped, None),
        Desired::Stopped => (Status::Stopping, None),
        Desired::Running => {
            if let Some((reason, message)) = observed.pods.values().find_map(|pod| pod.failure.clone()) {
                return (Status::Failed, Some(format!("{reason}: {message}")));
            }
            match observed.deployment {
                Some((_, ready)) if ready > 0 => (Status::Running, None),
                _ if !pods_gone => (Status::Starting, None),
                _ => (Status::Pending, None),
            }
        }
    }
}

/// Brings the status up to date at `at`: the cost is counted first (at the
/// old status), then a change is recorded with `reason` and announced. The
/// caller saves the workspace.
pub fn settle(
    settings: &Settings,
    workspace: &mut Workspace,
    reason: Reason,
    detail: Option<String>,
    at: Timestamp,
) -> Result<()> {
    cost::accrue(settings, workspace, at)?;
    let (status, failure) = derive(workspace);
    workspace.failure = failure.clone();
    let detail = failure.or(detail);
    if workspace.enter(status, reason, detail, at) {
        if status == Status::Stopped {
            workspace.stopped_at = Some(at);
        }
        // A new status may start or stop the meter.
        cost::accrue(settings, workspace, at)?;
        announce::updated(workspace)?;
    }
    Ok(())
}
