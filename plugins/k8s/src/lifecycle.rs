//! The lifecycle pass: on the `lifecycle` schedule the plugin emits
//! `k8s.lifecycle.ticked`, and folding it goes over every live workspace:
//! its cost is counted, and it is stopped when idle past its timeout (unless
//! a keep-alive holds it) or when the org's budget is spent, marked dormant
//! when stopped and unused long enough, and deleted when dormant long enough
//! or past its time to live. Going through the log keeps the fold the only
//! writer of a workspace, and a rebuild sees the same passes.

use crate::cost;
use crate::policy::Policy;
use crate::requests::{self, Action, Requested};
use crate::settings::{Settings, hours};
use crate::workspace::{Desired, Reason, Status, Timers, Workspace};
use devpulse_sdk::prelude::*;

pub const SCHEDULE: &str = "lifecycle";
pub const EVERY_S: u32 = 60;
pub const TICKED: &str = "k8s.lifecycle.ticked";

/// What `k8s.lifecycle.ticked` carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ticked {
    pub at: Time,
}

/// Announces a pass, while the org has workspaces to pass over.
pub fn tick(now: Timestamp) -> Result<()> {
    if storage::count("live/")? > 0 {
        events::emit(TICKED, &Ticked { at: Time(now) })?;
    }
    Ok(())
}

/// How often a running workspace's cost is counted between its transitions.
pub const BILL_EVERY_MS: Timestamp = 5 * 60_000;

/// What the lifecycle does to a workspace at `at`, if anything.
pub fn due(settings: &Settings, timers: &Timers, at: Timestamp, over_budget: bool) -> Option<(Action, Reason)> {
    let expired = at >= timers.expires_at;
    match timers.desired {
        Desired::Running if expired => Some((Action::Delete, Reason::Ttl)),
        Desired::Running if over_budget => Some((Action::Stop, Reason::Quota)),
        Desired::Running => {
            let idle = at >= timers.last_activity_at + timers.idle_timeout_ms;
            let held = timers.keep_alive_until.is_some_and(|until| at < until);
            (idle && !held).then_some((Action::Stop, Reason::Idle))
        }
        Desired::Stopped if expired => Some((Action::Delete, Reason::Ttl)),
        Desired::Stopped => timers
            .dormant_at
            .is_some_and(|dormant| at >= dormant + hours(settings.delete_dormant_after_hours))
            .then_some((Action::Delete, Reason::Dormant)),
        Desired::Deleted => None,
    }
}

/// True when a stopped workspace has gone unused long enough to become dormant.
fn turns_dormant(settings: &Settings, timers: &Timers, at: Timestamp) -> bool {
    timers.status == Status::Stopped
        && timers.dormant_at.is_none()
        && timers.stopped_at.is_some_and(|stopped| at >= stopped + hours(settings.dormant_after_hours))
}

/// One pass over every live workspace, by their timers: only those with
/// something due (an action, dormancy, their cost to count) are read and written.
pub fn on_ticked(event: &Event) -> Result<()> {
    let at = event.json::<Ticked>()?.at.0;
    let settings = Settings::load()?;
    let over_budget = Policy::load(&settings)?.over_budget(cost::spent(at)?);
    for (id, timers) in Workspace::timers()? {
        let action = due(&settings, &timers, at, over_budget);
        let dormant = action.is_none() && turns_dormant(&settings, &timers, at);
        let bill = timers.billed_until.is_some_and(|since| at >= since + BILL_EVERY_MS);
        if action.is_none() && !dormant && !bill {
            continue;
        }
        let Some(mut workspace) = Workspace::load(&id)? else { continue };
        cost::accrue(&settings, &mut workspace, at)?;
        if let Some((action, reason)) = action {
            let request = Requested::new(&workspace.id, action, reason, &format!("schedule:{SCHEDULE}"), at);
            requests::carry_out(&settings, &mut workspace, &request)?;
        } else if dormant {
            workspace.dormant_at = Some(at);
            let unused = (at - workspace.last_activity_at) / 3_600_000;
            workspace.note(Reason::Dormant, format!("dormant: unused for {unused} hours"), at);
            crate::announce::updated(&workspace)?;
        }
        workspace.save()?;
    }
    Ok(())
}
