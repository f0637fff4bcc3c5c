//! What an org's admins decide for themselves: the repositories whose pull
//! requests get preview workspaces, the monthly budget and the running limit
//! per person (the last two default to the operator's settings).

use crate::settings::Settings;
use devpulse_sdk::prelude::*;

const KEY: &str = "policy";

/// A policy change is an event, so a rebuild sees the policy each moment had.
pub const UPDATED: &str = "k8s.policy.updated";

/// The policy as stored and announced, with when it was set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Stored {
    input: PolicyInput,
    set_at: Timestamp,
}

/// As an admin sets it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyInput {
    /// Repositories (`owner/name`) whose pull requests get a preview workspace
    /// when they open or become ready, deleted when they close.
    #[serde(default)]
    #[schemars(length(max = 200), inner(pattern(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")))]
    pub preview_repos: Vec<String>,
    /// US dollars the org's workspaces may cost per calendar month (UTC); the
    /// operator's `monthly_budget_usd` when absent. 0 means no budget.
    #[schemars(range(min = 0.0))]
    pub monthly_budget_usd: Option<f64>,
    /// Workspaces one person may run at once; the operator's `max_running_per_user` when absent.
    #[schemars(range(min = 0))]
    pub max_running_per_user: Option<u32>,
}

/// The policy in force.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    pub preview_repos: Vec<String>,
    pub monthly_budget_usd: f64,
    pub max_running_per_user: u32,
}

impl Policy {
    pub fn load(settings: &Settings) -> Result<Policy> {
        let input = storage::get::<Stored>(KEY)?.unwrap_or_default().input;
        Ok(Policy {
            preview_repos: input.preview_repos,
            monthly_budget_usd: input.monthly_budget_usd.unwrap_or(settings.monthly_budget_usd),
            max_running_per_user: input.max_running_per_user.unwrap_or(settings.max_running_per_user),
        })
    }

    /// Keeps an admin's policy and announces it.
    pub fn set(input: PolicyInput, at: Timestamp) -> Result<()> {
        if let Some(repo) = input.preview_repos.iter().find(|repo| !repo.contains('/')) {
            return Err(Error::invalid(format!("{repo:?} is not a repository as owner/name")));
        }
        let stored = Stored { input, set_at: at };
        keep(&stored)?;
        events::emit(UPDATED, &stored)?;
        Ok(())
    }

    /// Folds an announced policy (a rebuild's only way to learn it).
    pub fn on_updated(event: &Event) -> Result<()> {
        keep(&event.json()?)
    }

    /// True when the org has a budget and `spent` reached it.
    pub fn over_budget(&self, spent: f64) -> bool {
        self.monthly_budget_usd > 0.0 && spent >= self.monthly_budget_usd
    }

    pub fn previews(&self, repo: &str) -> bool {
        self.preview_repos.iter().any(|wanted| wanted.eq_ignore_ascii_case(repo))
    }
}

/// Stores `stored` unless a newer policy is there already.
fn keep(stored: &Stored) -> Result<()> {
    if storage::get::<Stored>(KEY)?.is_none_or(|current| current.set_at <= stored.set_at) {
        storage::put(KEY, stored)?;
    }
    Ok(())
}
