//! The workspace API under `/api/v1/k8s`. A person creates and drives their
//! own workspaces; managers and above see and drive the org's. Changes after
//! creation are carried out by the fold (see `requests`): the answers are
//! `202 Accepted` with the workspace as it stands, and its status follows.

use crate::cluster;
use crate::cost;
use crate::policy::{Policy, PolicyInput};
use crate::render;
use crate::requests::{self, Action, Requested};
use crate::settings::{Settings, Tier, minutes};
use crate::workspace::{Desired, Preview, Reason, Spec, Status, Transition, Workspace};
use devpulse_sdk::kube::ObjectRef;
use devpulse_sdk::prelude::*;

/// A workspace as the API shows it.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceView {
    pub id: String,
    /// The DevPulse user it belongs to.
    pub owner: String,
    pub repo: String,
    pub branch: String,
    pub tier: String,
    pub image: String,
    pub status: Status,
    /// What it was last asked to be.
    pub desired: Desired,
    /// Why it failed, when `status` is `failed` (such as an image that cannot be pulled).
    pub failure: Option<String>,
    /// Where the IDE answers.
    pub url: String,
    pub namespace: String,
    pub created_at: Time,
    /// Deleted at this time (its time to live).
    pub expires_at: Time,
    pub idle_timeout_minutes: f64,
    pub last_activity_at: Time,
    /// A keep-alive holds off hibernation until then.
    pub keep_alive_until: Option<Time>,
    pub stopped_at: Option<Time>,
    /// When it became dormant (stopped and unused); it is deleted some time after.
    pub dormant_at: Option<Time>,
    /// The pull request of a preview workspace.
    pub preview: Option<Preview>,
    /// Running hours times the tier's price, so far.
    pub cost_usd: f64,
    pub running_hours: f64,
}

/// One of its Kubernetes objects.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct ObjectView {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// A workspace with its history and objects.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceDetail {
    #[serde(flatten)]
    pub workspace: WorkspaceView,
    /// Every status change, oldest first, each with its reason.
    pub history: Vec<Transition>,
    pub objects: Vec<ObjectView>,
}

fn view(settings: &Settings, workspace: &Workspace) -> WorkspaceView {
    let (cost_usd, running_hours) = cost::so_far(settings, workspace, now());
    WorkspaceView {
        id: workspace.id.clone(),
        owner: workspace.owner.clone(),
        repo: workspace.repo.clone(),
        branch: workspace.branch.clone(),
        tier: workspace.tier.clone(),
        image: workspace.image.clone(),
        status: workspace.status,
        desired: workspace.desired,
        failure: workspace.failure.clone(),
        url: render::url_of(settings, workspace),
        namespace: workspace.namespace.clone(),
        created_at: Time(workspace.created_at),
        expires_at: Time(workspace.created_at + workspace.ttl_ms),
        idle_timeout_minutes: workspace.idle_timeout_ms as f64 / 60_000.0,
        last_activity_at: Time(workspace.last_activity_at),
        keep_alive_until: workspace.keep_alive_until.map(Time),
        stopped_at: workspace.stopped_at.map(Time),
        dormant_at: workspace.dormant_at.map(Time),
        preview: workspace.preview.clone(),
        cost_usd,
        running_hours,
    }
}

/// Refuses to run one more workspace of `owner`'s beyond the running limit or the org's budget.
fn check_quota(settings: &Settings, owner: &str, at: Timestamp) -> Result<()> {
    let policy = Policy::load(settings)?;
    let running = Workspace::of_owner(owner)?.iter().filter(|workspace| workspace.holds_a_running_slot()).count();
    if running >= policy.max_running_per_user as usize {
        return Err(Error::Denied(format!(
            "quota max_running_per_user: {running} workspaces of this person run already, the most allowed is {}; stop one first",
            policy.max_running_per_user
        )));
    }
    let spent = cost::spent(at)?;
    if policy.over_budget(spent) {
        return Err(Error::Denied(format!(
            "quota monthly_budget_usd: the org's workspaces cost ${spent:.2} this month, its budget is ${:.2}",
            policy.monthly_budget_usd
        )));
    }
    Ok(())
}

pub fn create(call: Call<(), Spec>) -> Result<WorkspaceView> {
    let settings = Settings::load()?;
    let body = call.body;
    let caller = &call.principal;
    let at = now();
    check_quota(&settings, &caller.user_id, at)?;
    // Random, and safe in a Kubernetes name.
    let random = getrandom::u64().map_err(|err| Error::internal(format!("no randomness for an id: {err}")))?;
    let id = format!("ws-{random:016x}");
    let workspace = Workspace::new(&settings, &id, &caller.user_id, &caller.org_id, body, Reason::User, at)?;
    // Asking the cluster once tells a caller at once when `kube` is not granted or no cluster is configured.
    devpulse_sdk::kube::get::<serde_json::Value>(&ObjectRef::cluster("v1", "Namespace", &workspace.namespace))?;
    workspace.save_new()?;
    let mut request = Requested::new(&id, Action::Create, Reason::User, &caller.user_id, at);
    request.created = Some(Box::new(workspace.clone()));
    requests::ask(&request)?;
    Ok(view(&settings, &workspace))
}

/// Which workspaces to list (deleted ones are left out; `GET .../{id}` still shows them).
#[derive(Deserialize, JsonSchema)]
pub struct ListQuery {
    /// Whose: the caller's by default; managers and above may name anyone, or `*` for the whole org.
    #[schemars(length(min = 1, max = 64))]
    pub owner: Option<String>,
    /// Only those in this status.
    pub status: Option<Status>,
    /// Page size (50 by default).
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
    pub cursor: Option<Cursor>,
}

/// A page of workspaces, in id order.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct WorkspacePage {
    pub items: Vec<WorkspaceView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

pub fn list(call: Call<ListQuery>) -> Result<WorkspacePage> {
    let settings = Settings::load()?;
    let query = call.params;
    let caller = &call.principal;
    let owner = match query.owner.as_deref() {
        None => Some(caller.user_id.as_str()),
        Some(owner) if owner == caller.user_id => Some(owner),
        Some(_) if caller.role == Role::Developer => {
            return Err(Error::Denied("developers list their own workspaces only".into()));
        }
        Some("*") => None,
        Some(owner) => Some(owner),
    };
    let limit = query.limit.unwrap_or(50) as usize;
    // A cursor is the hex of the last id of the page before.
    let after = match query.cursor {
        Some(cursor) => String::from_utf8(hex::decode(&cursor.0).map_err(Error::invalid)?).map_err(Error::invalid)?,
        None => String::new(),
    };
    let mut items = Vec::new();
    let mut next_cursor = None;
    for id in Workspace::live_ids(owner)?.into_iter().filter(|id| *id > after) {
        let Some(workspace) = Workspace::load(&id)? else { continue };
        if query.status.is_some_and(|status| workspace.status != status) {
            continue;
        }
        if items.len() == limit {
            next_cursor = items.last().map(|last: &WorkspaceView| hex::encode(&last.id));
            break;
        }
        items.push(view(&settings, &workspace));
    }
    Ok(WorkspacePage { items, next_cursor })
}

/// Names one workspace.
#[derive(Deserialize, JsonSchema)]
pub struct ById {
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
}

pub fn get_one(call: Call<ById>) -> Result<WorkspaceDetail> {
    let settings = Settings::load()?;
    let workspace = Workspace::visible_to(&call.params.id, &call.principal)?;
    let objects = cluster::objects(&workspace)
        .into_iter()
        .map(|ObjectRef { api_version, kind, namespace, name }| ObjectView { api_version, kind, namespace, name })
        .collect();
    Ok(WorkspaceDetail { history: workspace.history.clone(), objects, workspace: view(&settings, &workspace) })
}

/// The settings and the workspace `id`, when the caller may see it.
fn target(id: &str, caller: &Principal) -> Result<(Settings, Workspace)> {
    Ok((Settings::load()?, Workspace::visible_to(id, caller)?))
}

/// Asks the fold for `action` on a workspace the caller may drive; answers it as it stands.
fn ask(
    settings: &Settings,
    workspace: &Workspace,
    caller: &Principal,
    action: Action,
    until: Option<Timestamp>,
) -> Result<WorkspaceView> {
    if workspace.desired == Desired::Deleted {
        return Err(Error::conflict(format!("workspace {} is deleted", workspace.id)));
    }
    let mut request = Requested::new(&workspace.id, action, Reason::User, &caller.user_id, now());
    request.until = until.map(Time);
    requests::ask(&request)?;
    Ok(view(settings, workspace))
}

pub fn start(call: Call<ById>) -> Result<WorkspaceView> {
    let (settings, workspace) = target(&call.params.id, &call.principal)?;
    if workspace.desired != Desired::Running && workspace.preview.is_none() {
        check_quota(&settings, &workspace.owner, now())?;
    }
    ask(&settings, &workspace, &call.principal, Action::Start, None)
}

pub fn stop(call: Call<ById>) -> Result<WorkspaceView> {
    let (settings, workspace) = target(&call.params.id, &call.principal)?;
    ask(&settings, &workspace, &call.principal, Action::Stop, None)
}

pub fn delete(call: Call<ById>) -> Result<()> {
    let (settings, workspace) = target(&call.params.id, &call.principal)?;
    ask(&settings, &workspace, &call.principal, Action::Delete, None).map(|_| ())
}

/// Activity reports closer together than this ask for nothing new.
const ACTIVITY_EVERY_MS: Timestamp = 30_000;

pub fn activity(call: Call<ById>) -> Result<WorkspaceView> {
    let (settings, workspace) = target(&call.params.id, &call.principal)?;
    if now() - workspace.last_activity_at < ACTIVITY_EVERY_MS {
        return Ok(view(&settings, &workspace));
    }
    ask(&settings, &workspace, &call.principal, Action::Activity, None)
}

/// How long a running job holds off hibernation.
#[derive(Deserialize, JsonSchema)]
pub struct KeepAlive {
    /// From now; at most the operator's `keep_alive_max_minutes` (240 by default): beyond it, 409.
    #[schemars(range(min = 0.0))]
    pub minutes: f64,
}

pub fn keep_alive(call: Call<ById, KeepAlive>) -> Result<WorkspaceView> {
    let settings = Settings::load()?;
    let wanted = call.body.minutes;
    if wanted > settings.keep_alive_max_minutes {
        return Err(Error::conflict(format!(
            "minutes is at most {} (the operator's keep_alive_max_minutes)",
            settings.keep_alive_max_minutes
        )));
    }
    let workspace = Workspace::visible_to(&call.params.id, &call.principal)?;
    let until = now() + minutes(wanted);
    let mut answer = ask(&settings, &workspace, &call.principal, Action::KeepAlive, Some(until))?;
    answer.keep_alive_until = Some(Time(answer.keep_alive_until.map_or(until, |held| held.0.max(until))));
    Ok(answer)
}

/// Which container's log, and how much of it.
#[derive(Deserialize, JsonSchema)]
pub struct LogsQuery {
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    /// `ide` (default) or `clone`, the init container that cloned the repository.
    pub container: Option<Container>,
    /// The last lines to show (200 by default).
    #[schemars(range(min = 1, max = 5000))]
    pub tail_lines: Option<u32>,
}

#[derive(Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Ide,
    Clone,
}

/// The last lines one container of the workspace's pod wrote.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Logs {
    pub pod: String,
    pub container: String,
    pub text: String,
}

pub fn logs(call: Call<LogsQuery>) -> Result<Logs> {
    let query = call.params;
    let workspace = Workspace::visible_to(&query.id, &call.principal)?;
    let pod = cluster::pods(&workspace)?.into_iter().next().ok_or_else(|| {
        Error::not_found(format!("workspace {} has no pod now ({:?})", workspace.id, workspace.status))
    })?;
    let container = match query.container.unwrap_or(Container::Ide) {
        Container::Ide => "ide",
        Container::Clone => "clone",
    };
    let reference = ObjectRef::namespaced("v1", "Pod", &workspace.namespace, &pod);
    let text = devpulse_sdk::kube::logs(&reference, Some(container), query.tail_lines.unwrap_or(200))?;
    Ok(Logs { pod, container: container.to_owned(), text })
}

/// A tier by name.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct TierView {
    pub name: String,
    #[serde(flatten)]
    pub tier: Tier,
}

pub fn tiers(_call: Call) -> Result<Vec<TierView>> {
    let settings = Settings::load()?;
    Ok(settings.tiers.into_iter().map(|(name, tier)| TierView { name, tier }).collect())
}

pub fn get_policy(_call: Call) -> Result<Policy> {
    Policy::load(&Settings::load()?)
}

pub fn put_policy(call: Call<(), PolicyInput>) -> Result<Policy> {
    Policy::set(call.body, now())?;
    Policy::load(&Settings::load()?)
}

/// What the org's workspaces cost this month, against its budget.
#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// `YYYY-MM`, UTC.
    pub month: String,
    /// Counted up to the last lifecycle pass.
    pub spent_usd: f64,
    /// 0: no budget.
    pub budget_usd: f64,
    /// Workspaces asked to run now.
    pub running: u64,
}

pub fn usage(_call: Call) -> Result<Usage> {
    let settings = Settings::load()?;
    let at = now();
    let running = Workspace::timers()?.iter().filter(|(_, timers)| timers.desired == Desired::Running).count() as u64;
    Ok(Usage {
        month: cost::month_of(at),
        spent_usd: cost::spent(at)?,
        budget_usd: Policy::load(&settings)?.monthly_budget_usd,
        running,
    })
}
