//! The parts of GitHub webhook payloads the plugin reads. Everything else in a
//! payload is ignored; a missing optional field is `None`, never an error.

use devpulse_sdk::prelude::*;

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Account {
    pub login: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Repository {
    pub full_name: String,
    pub default_branch: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Ref {
    #[serde(rename = "ref")]
    pub name: String,
    pub sha: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct PullRequest {
    pub number: u64,
    pub title: Option<String>,
    pub user: Option<Account>,
    pub draft: Option<bool>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub head: Option<Ref>,
    pub base: Option<Ref>,
    pub additions: Option<u64>,
    pub deletions: Option<u64>,
    pub requested_reviewers: Option<Vec<Account>>,
}

#[derive(Deserialize, Debug)]
pub struct PullRequestEvent {
    pub action: String,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Option<Account>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ReviewBody {
    pub id: u64,
    pub user: Option<Account>,
    pub submitted_at: Option<String>,
    pub state: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct ReviewEvent {
    pub action: String,
    pub review: ReviewBody,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Option<Account>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct CommentBody {
    pub id: u64,
    pub user: Option<Account>,
    pub created_at: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct ReviewCommentEvent {
    pub action: String,
    pub comment: CommentBody,
    pub pull_request: PullRequest,
    pub repository: Repository,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct PushCommit {
    pub id: String,
    pub timestamp: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub name: String,
    #[serde(default)]
    pub commits: Vec<PushCommit>,
    pub repository: Repository,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Deployment {
    pub id: u64,
    pub sha: Option<String>,
    pub environment: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct DeploymentEvent {
    pub deployment: Deployment,
    pub repository: Repository,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct DeploymentStatus {
    pub state: String,
    pub environment: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct DeploymentStatusEvent {
    pub deployment_status: DeploymentStatus,
    pub deployment: Deployment,
    pub repository: Repository,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct WorkflowRun {
    pub id: u64,
    pub name: Option<String>,
    pub head_branch: Option<String>,
    pub head_sha: Option<String>,
    pub conclusion: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct WorkflowRunEvent {
    pub action: String,
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
}

#[derive(Deserialize, Debug)]
pub struct Installation {
    pub id: u64,
    pub account: Option<Account>,
}

#[derive(Deserialize, Debug)]
pub struct InstallationRepository {
    pub full_name: String,
}

#[derive(Deserialize, Debug)]
pub struct InstallationEvent {
    pub action: String,
    pub installation: Installation,
    #[serde(default)]
    pub repositories: Option<Vec<InstallationRepository>>,
}

/// What a backfill read about one pull request through the REST API: the
/// event `github.backfill.pull`, emitted so that backfilled facts live in the
/// event log (provenance, rebuilds) like webhook ones.
#[derive(Serialize, Deserialize, Debug)]
pub struct BackfillPull {
    pub repository: Repository,
    pub pull_request: PullRequest,
    /// `ready_for_review` and `convert_to_draft` issue events, in time order.
    pub draft_changes: Vec<DraftChange>,
    pub reviews: Vec<ReviewBody>,
    pub comments: Vec<CommentBody>,
    pub commits: Vec<PushCommit>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DraftChange {
    /// `ready_for_review` or `convert_to_draft`.
    pub event: String,
    pub created_at: String,
    pub actor: Option<Account>,
}

/// One deployment and its statuses, read by a backfill: `github.backfill.deployment`.
#[derive(Serialize, Deserialize, Debug)]
pub struct BackfillDeployment {
    pub repository: Repository,
    pub deployment: Deployment,
    pub statuses: Vec<DeploymentStatus>,
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn time(text: Option<&str>) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(text?).ok().map(|time| time.timestamp_millis())
}
