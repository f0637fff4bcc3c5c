//! What running workspaces cost: running hours times the tier's price,
//! counted while a pod runs, recorded as metrics by user, repository and tier,
//! and summed per org and month for the budget.

use crate::settings::Settings;
use crate::workspace::{Status, Workspace};
use devpulse_sdk::prelude::*;

pub const COST_METRIC: &str = "k8s.workspace.cost_usd";
pub const HOURS_METRIC: &str = "k8s.workspace.running_hours";

/// A pod is running (or being started) for it.
fn billable(workspace: &Workspace) -> bool {
    matches!(workspace.status, Status::Starting | Status::Running)
}

/// What an hour of the workspace's tier costs (nothing for a tier no longer configured).
fn price(settings: &Settings, workspace: &Workspace) -> f64 {
    settings.tiers.get(&workspace.tier).map_or(0.0, |tier| tier.usd_per_hour)
}

/// `2026-11` of a time: the month the budget counts in.
pub fn month_of(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at).map(|at| at.format("%Y-%m").to_string()).unwrap_or_default()
}

fn spend_key(month: &str) -> String {
    format!("spend/{month}")
}

/// What the org's workspaces cost in the month of `at`, counted so far.
pub fn spent(at: Timestamp) -> Result<f64> {
    Ok(storage::get::<f64>(&spend_key(&month_of(at)))?.unwrap_or(0.0))
}

/// Counts the workspace's cost up to `now` and records it; call it before
/// every status change and on every lifecycle pass.
pub fn accrue(settings: &Settings, workspace: &mut Workspace, now: Timestamp) -> Result<()> {
    if let Some(since) = workspace.cost.since.filter(|since| now > *since) {
        let ms = now - since;
        let hours = ms as f64 / 3_600_000.0;
        let usd = hours * price(settings, workspace);
        workspace.cost.running_ms += ms;
        workspace.cost.usd += usd;
        let labels =
            [("user", workspace.owner.as_str()), ("repo", workspace.repo.as_str()), ("tier", workspace.tier.as_str())];
        metrics::record(COST_METRIC, &labels, now, usd)?;
        metrics::record(HOURS_METRIC, &labels, now, hours)?;
        storage::update(&spend_key(&month_of(now)), 0.0, |spent: &mut f64| *spent += usd)?;
    }
    workspace.cost.since = billable(workspace).then_some(now.max(workspace.cost.since.unwrap_or(now)));
    Ok(())
}

/// The cost so far, counting the running time not yet accrued.
pub fn so_far(settings: &Settings, workspace: &Workspace, now: Timestamp) -> (f64, f64) {
    let pending_ms = workspace.cost.since.map_or(0, |since| (now - since).max(0));
    let hours = (workspace.cost.running_ms + pending_ms) as f64 / 3_600_000.0;
    (workspace.cost.usd + pending_ms as f64 / 3_600_000.0 * price(settings, workspace), hours)
}
