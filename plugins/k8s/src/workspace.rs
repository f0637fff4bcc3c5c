//! A workspace as the plugin keeps it: what was asked for, what the cluster
//! was last seen doing, the status derived from both, its history and its cost.
//!
//! Only the fold (`on_event`) changes a stored workspace after it is created,
//! one event at a time in log order; routes and the schedule ask for changes
//! with `k8s.workspace.requested` events. So a watch event and a request never
//! overwrite each other's writes.

use crate::render;
use crate::settings::{Settings, hours, minutes};
use devpulse_sdk::prelude::*;
use std::collections::BTreeMap;

/// Where a workspace stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Asked to run; no pod yet.
    Pending,
    /// Its pod exists and is not ready yet (cloning, pulling, starting).
    Starting,
    Running,
    /// Scaled to zero; its pod is going.
    Stopping,
    /// No pod; the home volume is kept.
    Stopped,
    /// Its pod cannot run: `reason` says why (an image that cannot be pulled, a crash loop).
    Failed,
    /// Its objects are being deleted.
    Deleting,
    Deleted,
}

/// What a workspace is asked to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Running,
    Stopped,
    Deleted,
}

/// Why a transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A person asked (create, start, stop, delete).
    User,
    /// No activity for longer than its idle timeout, and no keep-alive holding it.
    Idle,
    /// Older than its time to live.
    Ttl,
    /// The org's monthly budget is spent.
    Quota,
    /// Stopped and unused for long enough: dormant, then deleted.
    Dormant,
    /// Its pull request opened, became ready or closed.
    Preview,
    /// The cluster reported a change (a pod became ready, an image could not be pulled).
    Cluster,
}

/// One change of status, or of dormancy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Transition {
    pub at: Time,
    /// Absent for the first.
    pub from: Option<Status>,
    pub to: Status,
    pub reason: Reason,
    /// What the cluster said, or who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The pull request a preview workspace belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Preview {
    pub repo: String,
    pub number: u64,
}

/// A pod of the workspace as the watch last showed it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSeen {
    pub ready: bool,
    /// A container waiting for a reason that will not go away by itself, with its message.
    pub failure: Option<(String, String)>,
}

/// What the cluster was last seen doing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The Deployment's pods, all and ready; `None` before it was seen or after it was deleted.
    pub deployment: Option<(u64, u64)>,
    /// True once the Deployment's deletion was seen.
    pub deployment_deleted: bool,
    pub pods: BTreeMap<String, PodSeen>,
}

/// Running time and its price so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub running_ms: i64,
    pub usd: f64,
    /// Cost is counted up to here; `None` while the workspace does not run.
    pub since: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub owner: String,
    pub repo: String,
    pub branch: String,
    pub tier: String,
    pub image: String,
    pub namespace: String,
    pub idle_timeout_ms: i64,
    pub ttl_ms: i64,
    pub created_at: Timestamp,
    pub desired: Desired,
    pub status: Status,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    pub last_activity_at: Timestamp,
    pub keep_alive_until: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    pub dormant_at: Option<Timestamp>,
    pub preview: Option<Preview>,
    pub observed: Observed,
    pub history: Vec<Transition>,
    pub cost: Cost,
}

/// What a new workspace is made from.
#[derive(Deserialize, JsonSchema)]
pub struct Spec {
    /// `owner/name` on GitHub.
    #[schemars(length(min = 3, max = 200), regex(pattern = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"))]
    pub repo: String,
    #[schemars(length(min = 1, max = 200), regex(pattern = r"^[A-Za-z0-9._/-]+$"))]
    pub branch: String,
    /// A tier from `GET /api/v1/k8s/tiers`; the operator's default when absent (409 for one the operator has not configured).
    #[schemars(length(min = 1, max = 63))]
    pub tier: Option<String>,
    /// The IDE image; the operator's (code-server) when absent.
    #[schemars(length(min = 1, max = 300))]
    pub image: Option<String>,
    /// Stopped after this long without activity; the operator's default when absent (409 below the operator's `min_idle_timeout_minutes`).
    #[schemars(range(min = 0.0))]
    pub idle_timeout_minutes: Option<f64>,
    /// Deleted this long after creation; the operator's default when absent (409 above the operator's `max_ttl_hours`).
    #[schemars(range(min = 0.0))]
    pub ttl_hours: Option<f64>,
}

/// What the lifecycle decides by, kept small beside each live workspace so a
/// pass reads these instead of every whole workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timers {
    pub desired: Desired,
    pub status: Status,
    pub expires_at: Timestamp,
    pub last_activity_at: Timestamp,
    pub idle_timeout_ms: i64,
    pub keep_alive_until: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    pub dormant_at: Option<Timestamp>,
    /// Cost is counted up to here, while it runs.
    pub billed_until: Option<Timestamp>,
}

impl From<&Workspace> for Timers {
    fn from(workspace: &Workspace) -> Self {
        Timers {
            desired: workspace.desired,
            status: workspace.status,
            expires_at: workspace.created_at + workspace.ttl_ms,
            last_activity_at: workspace.last_activity_at,
            idle_timeout_ms: workspace.idle_timeout_ms,
            keep_alive_until: workspace.keep_alive_until,
            stopped_at: workspace.stopped_at,
            dormant_at: workspace.dormant_at,
            billed_until: workspace.cost.since,
        }
    }
}

/// The longest history kept; the oldest transitions go first.
const MAX_HISTORY: usize = 200;

fn key(id: &str) -> String {
    format!("ws/{id}")
}

/// The index of a person's workspaces, for their quota and their heartbeats.
fn owner_key(owner: &str, id: &str) -> String {
    format!("owner/{owner}/{id}")
}

/// The index of workspaces not deleted, for the lifecycle.
fn live_key(id: &str) -> String {
    format!("live/{id}")
}

impl Workspace {
    /// A new workspace of `owner`'s from `spec`, checked against the
    /// settings, `pending` for `reason`; not stored yet.
    pub fn new(
        settings: &Settings,
        id: &str,
        owner: &str,
        org: &str,
        spec: Spec,
        reason: Reason,
        at: Timestamp,
    ) -> Result<Workspace> {
        let tier = spec.tier.unwrap_or_else(|| settings.default_tier.clone());
        settings.tier(&tier)?;
        let idle = spec.idle_timeout_minutes.unwrap_or(settings.idle_timeout_minutes);
        if idle < settings.min_idle_timeout_minutes {
            return Err(Error::conflict(format!(
                "idle_timeout_minutes is at least {} (the operator's min_idle_timeout_minutes)",
                settings.min_idle_timeout_minutes
            )));
        }
        let ttl = spec.ttl_hours.unwrap_or(settings.ttl_hours);
        if ttl > settings.max_ttl_hours {
            return Err(Error::conflict(format!(
                "ttl_hours is at most {} (the operator's max_ttl_hours)",
                settings.max_ttl_hours
            )));
        }
        let mut workspace = Workspace {
            id: id.to_owned(),
            owner: owner.to_owned(),
            repo: spec.repo,
            branch: spec.branch,
            tier,
            image: spec.image.unwrap_or_else(|| settings.image.clone()),
            namespace: render::namespace_of(settings, owner, org),
            idle_timeout_ms: minutes(idle),
            ttl_ms: hours(ttl),
            created_at: at,
            desired: Desired::Running,
            status: Status::Pending,
            failure: None,
            last_activity_at: at,
            keep_alive_until: None,
            stopped_at: None,
            dormant_at: None,
            preview: None,
            observed: Observed::default(),
            history: Vec::new(),
            cost: Cost::default(),
        };
        workspace.enter(Status::Pending, reason, None, at);
        Ok(workspace)
    }

    pub fn load(id: &str) -> Result<Option<Workspace>> {
        storage::get(&key(id))
    }

    /// The workspace, or 404 when it does not exist or the caller may not see it.
    pub fn visible_to(id: &str, caller: &Principal) -> Result<Workspace> {
        match Workspace::load(id)? {
            Some(workspace) if workspace.owner == caller.user_id || caller.role != Role::Developer => Ok(workspace),
            _ => Err(Error::not_found(format!("no workspace {id}"))),
        }
    }

    /// Stores a new workspace and lists it in its owner's index.
    pub fn save_new(&self) -> Result<()> {
        storage::put(&owner_key(&self.owner, &self.id), &())?;
        self.save()
    }

    /// Stores it with its timers (the lifecycle's index of live workspaces);
    /// once deleted, it leaves the indexes.
    pub fn save(&self) -> Result<()> {
        storage::put(&key(&self.id), self)?;
        if self.status == Status::Deleted {
            storage::delete(&live_key(&self.id))?;
            storage::delete(&owner_key(&self.owner, &self.id))?;
        } else {
            storage::put(&live_key(&self.id), &Timers::from(self))?;
        }
        Ok(())
    }

    /// The timers of every live workspace, by id: what a lifecycle pass reads.
    pub fn timers() -> Result<Vec<(String, Timers)>> {
        let live = storage::scan_all::<Timers>("live/")?;
        Ok(live.into_iter().map(|(key, timers)| (key["live/".len()..].to_owned(), timers)).collect())
    }

    /// The ids of the workspaces not deleted, the person's or the org's, in id order.
    pub fn live_ids(owner: Option<&str>) -> Result<Vec<String>> {
        match owner {
            Some(owner) => {
                let prefix = format!("owner/{owner}/");
                let keys = storage::scan_all::<()>(&prefix)?;
                Ok(keys.into_iter().map(|(key, ())| key[prefix.len()..].to_owned()).collect())
            }
            None => Ok(Workspace::timers()?.into_iter().map(|(id, _)| id).collect()),
        }
    }

    /// The person's workspaces that are not deleted.
    pub fn of_owner(owner: &str) -> Result<Vec<Workspace>> {
        let mut found = Vec::new();
        for id in Workspace::live_ids(Some(owner))? {
            found.extend(Workspace::load(&id)?);
        }
        Ok(found)
    }

    /// Records a transition when the status changes.
    pub fn enter(&mut self, status: Status, reason: Reason, detail: Option<String>, at: Timestamp) -> bool {
        if self.status == status && !self.history.is_empty() {
            return false;
        }
        let from = (!self.history.is_empty()).then_some(self.status);
        self.history.push(Transition { at: Time(at), from, to: status, reason, detail });
        if self.history.len() > MAX_HISTORY {
            self.history.remove(0);
        }
        self.status = status;
        true
    }

    /// Records something that happened without changing the status (dormancy).
    pub fn note(&mut self, reason: Reason, detail: String, at: Timestamp) {
        self.history.push(Transition {
            at: Time(at),
            from: Some(self.status),
            to: self.status,
            reason,
            detail: Some(detail),
        });
        if self.history.len() > MAX_HISTORY {
            self.history.remove(0);
        }
    }

    /// Counts against the owner's running quota: asked to run and not deleted.
    pub fn holds_a_running_slot(&self) -> bool {
        self.desired == Desired::Running && self.preview.is_none()
    }
}
