//! Domain events for other plugins (`docs/events.md`): where a pull request
//! stands, as review and delivery rules need it, and how each production
//! deployment ended. Each is emitted when what it carries changes, so a
//! repeated or late delivery that changes nothing announces nothing.

use crate::pull::Pull;
use crate::repo::Deploy;
use crate::routes::PullState;
use devpulse_sdk::prelude::*;

pub const PULL_UPDATED: &str = "github.pull.updated";
pub const DEPLOYMENT_UPDATED: &str = "github.deployment.updated";

/// What `github.pull.updated` carries: the pull request as the plugin knows it
/// after folding every delivery so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PullUpdated {
    /// `owner/name`.
    pub repo: String,
    pub number: u64,
    pub title: String,
    /// The pull request on GitHub.
    pub url: String,
    /// The author's GitHub login.
    pub author: String,
    /// The DevPulse user the login maps to, if any.
    pub author_user: Option<String>,
    pub author_bot: bool,
    pub state: PullState,
    pub draft: bool,
    /// The branch it proposes to merge (its head); empty while not known.
    #[serde(default)]
    pub head_ref: String,
    pub created_at: Option<Time>,
    /// The earliest moment it was ready for review (opened as non-draft or marked ready).
    pub ready_at: Option<Time>,
    /// The first review or review comment by someone other than the author, bots excluded.
    pub first_review_at: Option<Time>,
    /// Logins of the reviewers whose review is requested now.
    pub requested_reviewers: Vec<String>,
    pub additions: u64,
    pub deletions: u64,
    /// Additions plus deletions.
    pub size: u64,
    /// The first commit, or creation when no commit is known: where its cycle time starts.
    pub started_at: Option<Time>,
    /// The newest commit on its branch.
    pub last_commit_at: Option<Time>,
    /// Reviews by others (bots excluded), not counting dismissed ones or comments.
    pub reviews: u64,
    /// Commits authored after the first review.
    pub rework_commits: u64,
    pub merged_at: Option<Time>,
    pub closed_at: Option<Time>,
}

impl PullUpdated {
    pub fn of(pull: &Pull) -> Self {
        let figures = pull.figures();
        PullUpdated {
            repo: pull.repo.clone(),
            number: pull.number,
            title: pull.title.clone(),
            url: format!("https://github.com/{}/pull/{}", pull.repo, pull.number),
            author: pull.author.clone(),
            author_user: pull.author_user.clone(),
            author_bot: pull.author_bot,
            state: pull.state(),
            draft: pull.draft,
            head_ref: pull.head_ref.clone(),
            created_at: pull.created_at.map(Time),
            ready_at: pull.ready_at.map(Time),
            first_review_at: pull.first_review_at().map(Time),
            requested_reviewers: pull.requested_reviewers.iter().cloned().collect(),
            additions: pull.additions,
            deletions: pull.deletions,
            size: figures.size,
            started_at: pull.started_at().map(Time),
            last_commit_at: pull.commits.values().map(|commit| commit.at).max().map(Time),
            reviews: figures.reviews,
            rework_commits: figures.rework_commits,
            merged_at: pull.merged_at.map(Time),
            closed_at: pull.closed_at.map(Time),
        }
    }
}

/// Emits `github.pull.updated` when the pull request changed since it was last announced.
pub fn pull(pull: &mut Pull) -> Result<()> {
    let now = PullUpdated::of(pull);
    if pull.announced.as_ref() != Some(&now) {
        events::emit(PULL_UPDATED, &now)?;
        pull.announced = Some(now);
    }
    Ok(())
}

/// How a production deployment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

/// What `github.deployment.updated` carries: a production deployment (a
/// `deployment_status` in a production environment, or a deploy workflow run
/// on the default branch) once its outcome is known, and again if it changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentUpdated {
    pub repo: String,
    /// `deployment/<id>` or `workflow_run/<id>`.
    pub id: String,
    /// The environment, or `workflow:<name>` for a deploy workflow.
    pub environment: String,
    pub outcome: Outcome,
    /// When it reached that outcome.
    pub at: Time,
    pub sha: Option<String>,
    /// The events it was read from.
    pub event_ids: Vec<String>,
}

/// Emits `github.deployment.updated` when a deployment's outcome or its time
/// differs from `before`.
pub fn deployment(repo: &str, before: Option<(Option<String>, Timestamp)>, deploy: &Deploy) -> Result<()> {
    let outcome = match deploy.outcome.as_deref() {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        _ => return Ok(()),
    };
    if before == Some((deploy.outcome.clone(), deploy.at)) {
        return Ok(());
    }
    let update = DeploymentUpdated {
        repo: repo.to_owned(),
        id: deploy.id.clone(),
        environment: deploy.environment.clone(),
        outcome,
        at: Time(deploy.at),
        sha: deploy.sha.clone(),
        event_ids: deploy.event_ids.clone(),
    };
    events::emit(DEPLOYMENT_UPDATED, &update).map(drop)
}
