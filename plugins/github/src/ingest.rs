//! Event handlers: each folds one GitHub delivery into the stored facts, then
//! re-records the figures it may have changed. Figures are metric points under
//! keys (`metrics::put`), so a late or repeated delivery replaces a figure
//! instead of adding a second one.

use crate::announce;
use crate::payload::{self, Account, CommentBody, PullRequest, Repository, ReviewBody, time};
use crate::pull::{Commit, Pull, Review, is_bot};
use crate::repo::{self, Deploy, Merge, RepoState};
use crate::settings::Settings;
use devpulse_sdk::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Metric names; every one is documented in `docs/metrics.md`.
pub mod names {
    pub const CYCLE: &str = "pr_cycle_time_s";
    pub const CODING: &str = "pr_coding_time_s";
    pub const PICKUP: &str = "pr_pickup_time_s";
    pub const REVIEW: &str = "pr_review_time_s";
    pub const DEPLOY: &str = "pr_deploy_time_s";
    pub const SIZE: &str = "pr_size";
    pub const REVIEWS: &str = "pr_reviews";
    pub const REVIEWED: &str = "pr_reviewed";
    pub const REWORK: &str = "pr_rework";
    /// First commit to production deployment, at the deployment's time.
    pub const LEAD: &str = "change_lead_time_s";
    /// First commit to merge into the default branch, at the merge's time (the
    /// stand-in when there are no deployments).
    pub const MERGE_LEAD: &str = "merge_lead_time_s";
    pub const DEPLOYMENT: &str = "deployment";
    pub const RECOVERY: &str = "deployment_recovery_s";
}

pub fn pull_key(repo: &str, number: u64) -> String {
    format!("pr/{repo}/{number:010}")
}

fn branch_key(repo: &str, branch: &str) -> String {
    format!("branch/{repo}/{branch}")
}

/// Commits seen on a branch and the pull requests whose head it is.
#[derive(Default, Serialize, Deserialize)]
struct Branch {
    pulls: BTreeSet<u64>,
    commits: BTreeMap<String, Commit>,
}

/// What a merged pull request is listed under, by month of merge.
#[derive(Serialize, Deserialize)]
pub struct MergedRef {
    pub repo: String,
    pub number: u64,
    pub merged_at: Timestamp,
}

pub fn merged_key(merged_at: Timestamp, repo: &str, number: u64) -> String {
    format!("merged/{}/{repo}/{number:010}", month(merged_at))
}

/// `YYYY-MM` of a time, UTC.
pub fn month(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at).map(|at| at.format("%Y-%m").to_string()).unwrap_or_default()
}

/// Handles one delivery. A body that is not the shape GitHub sends for its
/// kind is logged and skipped: retrying it could never succeed.
pub fn handle(event: &Event) -> Result<()> {
    match dispatch(event) {
        Err(Error::InvalidInput(why)) => {
            log::warn(&format!("skipped {} {}: not a GitHub payload of that kind ({why})", event.kind, event.id));
            Ok(())
        }
        other => other,
    }
}

/// The kinds the plugin folds: GitHub's webhooks and its own backfill items,
/// not the events it announces.
pub const CONSUMED: &[&str] = &[
    "github.pull_request",
    "github.pull_request_review",
    "github.pull_request_review_comment",
    "github.push",
    "github.deployment",
    "github.deployment_status",
    "github.workflow_run",
    "github.installation",
    "github.backfill.pull",
    "github.backfill.deployment",
    "github.backfill.workflow_run",
];

fn dispatch(event: &Event) -> Result<()> {
    let settings = Settings::load()?;
    match event.kind.as_str() {
        "github.pull_request" => pull_request(event, event.json()?, &settings),
        "github.pull_request_review" => review(event, event.json()?, &settings),
        "github.pull_request_review_comment" => review_comment(event, event.json()?, &settings),
        "github.push" => push(event, event.json()?, &settings),
        "github.deployment" => deployment(event, event.json()?, &settings),
        "github.deployment_status" => deployment_status(event, event.json()?, &settings),
        "github.workflow_run" => workflow_run(event, event.json()?, &settings),
        "github.installation" => installation(event.json()?),
        "github.backfill.pull" => backfilled_pull(event, event.json()?, &settings),
        "github.backfill.deployment" => backfilled_deployment(event, event.json()?, &settings),
        "github.backfill.workflow_run" => workflow_run(event, event.json()?, &settings),
        _ => Ok(()),
    }
}

/// Loads the pull request and refreshes its descriptive fields from `pr` when
/// that payload is at least as new as the one they came from.
fn load(repository: &Repository, pr: &PullRequest) -> Result<Pull> {
    let repo = &repository.full_name;
    let mut pull: Pull = storage::get(&pull_key(repo, pr.number))?.unwrap_or_default();
    let updated = time(pr.updated_at.as_deref()).unwrap_or(0);
    if pull.repo.is_empty() || updated >= pull.updated_at {
        let author = pr.user.clone().unwrap_or_default();
        pull.repo = repo.clone();
        pull.number = pr.number;
        pull.updated_at = updated;
        if let Some(title) = &pr.title {
            pull.title = title.clone();
        }
        if !author.login.is_empty() && author.login != pull.author {
            pull.author_user = identity::find_by_identity("github", &author.login)?.map(|user| user.id);
            pull.author = author.login.clone();
        }
        pull.author_bot = is_bot(&author.login, author.kind.as_deref());
        if let Some(head) = &pr.head {
            pull.head_ref = head.name.clone();
            pull.head_sha = head.sha.clone();
        }
        if let Some(base) = &pr.base {
            pull.base_ref = base.name.clone();
            pull.into_default = repository.default_branch.as_deref().is_none_or(|default| default == base.name);
        }
        pull.additions = pr.additions.unwrap_or(pull.additions);
        pull.deletions = pr.deletions.unwrap_or(pull.deletions);
        pull.closed_at = time(pr.closed_at.as_deref());
        pull.draft = pr.draft.unwrap_or(pull.draft);
        if let Some(reviewers) = &pr.requested_reviewers {
            pull.requested_reviewers = reviewers.iter().map(|reviewer| reviewer.login.clone()).collect();
        }
    }
    pull.created_at = pull.created_at.or(time(pr.created_at.as_deref()));
    if pull.merged_at.is_none() {
        pull.merged_at = time(pr.merged_at.as_deref());
        pull.merge_sha = pr.merge_commit_sha.clone().filter(|_| pull.merged_at.is_some());
    }
    Ok(pull)
}

fn earliest(current: Option<Timestamp>, candidate: Option<Timestamp>) -> Option<Timestamp> {
    match (current, candidate) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn pull_request(event: &Event, body: payload::PullRequestEvent, settings: &Settings) -> Result<()> {
    let pr = &body.pull_request;
    let mut pull = load(&body.repository, pr)?;
    let actor = body.sender.as_ref().map(|sender| sender.login.as_str());
    let updated = time(pr.updated_at.as_deref());
    match body.action.as_str() {
        "opened" => {
            let created = time(pr.created_at.as_deref());
            pull.moment(created.unwrap_or_default(), "opened", actor, &event.id);
            if pr.draft != Some(true) {
                pull.ready_at = earliest(pull.ready_at, created);
            }
        }
        "ready_for_review" => {
            pull.ready_at = earliest(pull.ready_at, updated);
            pull.moment(updated.unwrap_or_default(), "ready_for_review", actor, &event.id);
        }
        "closed" => match (pull.merged_at, pull.closed_at) {
            (Some(merged), _) => pull.moment(merged, "merged", actor, &event.id),
            (None, Some(closed)) => pull.moment(closed, "closed", actor, &event.id),
            _ => {}
        },
        other => pull.moment(updated.unwrap_or_default(), other, actor, &event.id),
    }
    adopt_branch_commits(&mut pull)?;
    save(pull, settings)
}

fn review(event: &Event, body: payload::ReviewEvent, settings: &Settings) -> Result<()> {
    let mut pull = load(&body.repository, &body.pull_request)?;
    let dismissed = body.action == "dismissed";
    let sender = body.sender.as_ref().map(|sender| sender.login.as_str());
    add_review(&mut pull, &body.review, dismissed, sender, &event.id);
    save(pull, settings)
}

/// Adds a review, or its dismissal, with its timeline point; what is known
/// already (from a repeated delivery or a backfill) adds nothing.
fn add_review(pull: &mut Pull, review: &ReviewBody, dismissed: bool, actor: Option<&str>, event_id: &str) {
    let reviewer = review.user.clone().unwrap_or_default();
    let at = time(review.submitted_at.as_deref()).unwrap_or_default();
    let state = review.state.clone().unwrap_or_default().to_ascii_lowercase();
    let dismissed = dismissed || state == "dismissed";
    let counts = counts_as_reviewer(&reviewer, &pull.author);
    let entry = pull.reviews.entry(format!("review/{}", review.id)).or_insert_with(|| Review {
        by: reviewer.login.clone(),
        at,
        kind: state.clone(),
        dismissed,
        counts,
        event_id: event_id.into(),
    });
    entry.dismissed |= dismissed;
    if !dismissed {
        entry.kind = state;
    }
    let what = if dismissed { "review_dismissed" } else { "review" };
    pull.moment_once(at, what, Some(&review.id.to_string()), Some(actor.unwrap_or(&reviewer.login)), event_id);
}

fn review_comment(event: &Event, body: payload::ReviewCommentEvent, settings: &Settings) -> Result<()> {
    if body.action != "created" {
        return Ok(());
    }
    let mut pull = load(&body.repository, &body.pull_request)?;
    add_comment(&mut pull, &body.comment, &event.id);
    save(pull, settings)
}

/// Adds a review comment with its timeline point, once.
fn add_comment(pull: &mut Pull, comment: &CommentBody, event_id: &str) {
    let author = comment.user.clone().unwrap_or_default();
    let at = time(comment.created_at.as_deref()).unwrap_or_default();
    let counts = counts_as_reviewer(&author, &pull.author);
    pull.reviews.entry(format!("comment/{}", comment.id)).or_insert_with(|| Review {
        by: author.login.clone(),
        at,
        kind: "comment".into(),
        dismissed: false,
        counts,
        event_id: event_id.into(),
    });
    pull.moment_once(at, "comment", Some(&comment.id.to_string()), Some(&author.login), event_id);
}

/// A pull request read through the REST API by a backfill: the same facts a
/// webhook history gives, merged the same way, so nothing counts twice.
fn backfilled_pull(event: &Event, body: payload::BackfillPull, settings: &Settings) -> Result<()> {
    let pr = &body.pull_request;
    let mut pull = load(&body.repository, pr)?;
    let author = pull.author.clone();
    let created = time(pr.created_at.as_deref());
    if let Some(created) = created {
        pull.moment_once(created, "opened", None, Some(&author), &event.id);
    }
    let changes: Vec<_> =
        body.draft_changes.iter().filter_map(|change| Some((change, time(Some(&change.created_at))?))).collect();
    // Opened ready for review unless its first draft change is marking it ready.
    let opened_ready = match changes.first() {
        Some((first, _)) => first.event != "ready_for_review",
        None => pr.draft != Some(true),
    };
    if opened_ready {
        pull.ready_at = earliest(pull.ready_at, created);
    }
    for (change, at) in changes.iter().filter(|(change, _)| change.event == "ready_for_review") {
        pull.ready_at = earliest(pull.ready_at, Some(*at));
        let actor = change.actor.as_ref().map(|actor| actor.login.as_str());
        pull.moment_once(*at, "ready_for_review", None, actor, &event.id);
    }
    for review in body.reviews.iter().filter(|review| review.submitted_at.is_some()) {
        add_review(&mut pull, review, false, None, &event.id);
    }
    for comment in &body.comments {
        add_comment(&mut pull, comment, &event.id);
    }
    for commit in &body.commits {
        if let Some(at) = time(commit.timestamp.as_deref()) {
            pull.add_commit(&commit.id, Commit { at, event_id: event.id.clone() });
        }
    }
    match (pull.merged_at, pull.closed_at) {
        (Some(merged), _) => pull.moment_once(merged, "merged", None, None, &event.id),
        (None, Some(closed)) => pull.moment_once(closed, "closed", None, None, &event.id),
        _ => {}
    }
    adopt_branch_commits(&mut pull)?;
    save(pull, settings)
}

fn counts_as_reviewer(reviewer: &Account, author: &str) -> bool {
    !is_bot(&reviewer.login, reviewer.kind.as_deref()) && reviewer.login != author
}

/// Pushes to a branch add its commits to the pull requests whose head it is
/// (also those opened later: the branch remembers its commits).
fn push(event: &Event, body: payload::PushEvent, settings: &Settings) -> Result<()> {
    let Some(branch_name) = body.name.strip_prefix("refs/heads/") else { return Ok(()) };
    let repo = &body.repository.full_name;
    let commits: Vec<(String, Commit)> = body
        .commits
        .iter()
        .filter_map(|commit| {
            let at = time(commit.timestamp.as_deref())?;
            Some((commit.id.clone(), Commit { at, event_id: event.id.clone() }))
        })
        .collect();
    let branch = storage::update(&branch_key(repo, branch_name), Branch::default(), |branch| {
        for (sha, commit) in &commits {
            branch.commits.entry(sha.clone()).or_insert_with(|| commit.clone());
        }
    })?;
    for number in &branch.pulls {
        let Some(mut pull) = storage::get::<Pull>(&pull_key(repo, *number))? else { continue };
        for (sha, commit) in &commits {
            pull.add_commit(sha, commit.clone());
        }
        save(pull, settings)?;
    }
    Ok(())
}

/// Registers the pull request on its head branch and takes the commits pushed
/// there before it was opened.
fn adopt_branch_commits(pull: &mut Pull) -> Result<()> {
    if pull.head_ref.is_empty() {
        return Ok(());
    }
    let number = pull.number;
    let branch = storage::update(&branch_key(&pull.repo, &pull.head_ref), Branch::default(), |branch| {
        branch.pulls.insert(number);
    })?;
    for (sha, commit) in branch.commits {
        pull.add_commit(&sha, commit);
    }
    Ok(())
}

/// Stores the pull request, its merge in the repository's list, and its figures.
fn save(mut pull: Pull, settings: &Settings) -> Result<()> {
    if let Some(merged_at) = pull.merged_at {
        if pull.into_default {
            let mut state: RepoState = storage::get(&repo::key(&pull.repo))?.unwrap_or_default();
            state.merges.entry(pull.number).or_insert_with(|| Merge {
                merged_at,
                merge_sha: pull.merge_sha.clone(),
                ..Merge::default()
            });
            let changed = state.link();
            relink(&pull.repo.clone(), &state, changed, settings, Some(&mut pull))?;
            state.trim();
            storage::put(&repo::key(&pull.repo), &state)?;
        }
        storage::put(
            &merged_key(merged_at, &pull.repo, pull.number),
            &MergedRef { repo: pull.repo.clone(), number: pull.number, merged_at },
        )?;
    }
    record_figures(&pull, settings)?;
    announce::pull(&mut pull)?;
    storage::put(&pull_key(&pull.repo, pull.number), &pull)
}

/// The `author` label: the DevPulse user, or the login when it maps to none.
pub fn author_label(pull: &Pull) -> &str {
    pull.author_user.as_deref().unwrap_or(&pull.author)
}

fn record_figures(pull: &Pull, settings: &Settings) -> Result<()> {
    let Some(merged_at) = pull.merged_at else { return Ok(()) };
    if pull.author_bot && !settings.include_bot_authors {
        return Ok(());
    }
    let figures = pull.figures();
    let labels = [("repo", pull.repo.as_str()), ("author", author_label(pull))];
    let key = |name: &str| format!("{}/{}/{name}", pull.repo, pull.number);
    let put = |name: &str, at: Timestamp, value: Option<f64>| match value {
        Some(value) => metrics::put(&key(name), name, &labels, at, value),
        None => Ok(()),
    };
    put(names::CYCLE, merged_at, figures.cycle_time_s)?;
    put(names::CODING, merged_at, figures.coding_time_s)?;
    put(names::PICKUP, merged_at, figures.pickup_time_s)?;
    put(names::REVIEW, merged_at, figures.review_time_s)?;
    put(names::DEPLOY, merged_at, figures.deploy_time_s)?;
    put(names::SIZE, merged_at, Some(figures.size as f64))?;
    put(names::REVIEWS, merged_at, Some(figures.reviews as f64))?;
    put(names::REVIEWED, merged_at, Some(if figures.reviews > 0 { 1.0 } else { 0.0 }))?;
    put(names::REWORK, merged_at, Some(if figures.rework_commits > 0 { 1.0 } else { 0.0 }))?;
    if pull.into_default {
        put(names::MERGE_LEAD, merged_at, figures.cycle_time_s)?;
    }
    if let Some(deployed_at) = pull.deployed_at {
        put(names::LEAD, deployed_at, figures.lead_time_s)?;
    }
    Ok(())
}

fn deployment(event: &Event, body: payload::DeploymentEvent, settings: &Settings) -> Result<()> {
    production_deployment(event, &body.repository, &body.deployment, &[], settings)
}

fn deployment_status(event: &Event, body: payload::DeploymentStatusEvent, settings: &Settings) -> Result<()> {
    let environment =
        body.deployment_status.environment.clone().or(body.deployment.environment.clone()).unwrap_or_default();
    if !settings.is_production(&environment) || final_outcome(&body.deployment_status).is_none() {
        return Ok(());
    }
    let id = format!("deployment/{}", body.deployment.id);
    update_deploy(&body.repository.full_name, &id, settings, |deploy| {
        created(deploy, &body.deployment, &environment, &event.id);
        settle(deploy, &body.deployment_status);
    })
}

/// A deployment and its statuses read by a backfill.
fn backfilled_deployment(event: &Event, body: payload::BackfillDeployment, settings: &Settings) -> Result<()> {
    production_deployment(event, &body.repository, &body.deployment, &body.statuses, settings)
}

/// A deployment (with the statuses known of it) in a production environment.
fn production_deployment(
    event: &Event,
    repository: &Repository,
    deployment: &payload::Deployment,
    statuses: &[payload::DeploymentStatus],
    settings: &Settings,
) -> Result<()> {
    let environment = deployment.environment.clone().unwrap_or_default();
    if !settings.is_production(&environment) {
        return Ok(());
    }
    let id = format!("deployment/{}", deployment.id);
    update_deploy(&repository.full_name, &id, settings, |deploy| {
        created(deploy, deployment, &environment, &event.id);
        for status in statuses {
            settle(deploy, status);
        }
    })
}

/// Takes what the deployment itself says.
fn created(deploy: &mut Deploy, deployment: &payload::Deployment, environment: &str, event_id: &str) {
    let created = time(deployment.created_at.as_deref()).unwrap_or_default();
    deploy.environment = environment.into();
    deploy.sha = deploy.sha.clone().or(deployment.sha.clone());
    deploy.created_at = created;
    if deploy.outcome.is_none() {
        deploy.at = deploy.at.max(created);
    }
    deploy.event_ids.push(event_id.into());
}

/// `success` or `failure` for a final status; `None` while it is in progress.
fn final_outcome(status: &payload::DeploymentStatus) -> Option<&'static str> {
    match status.state.as_str() {
        "success" => Some("success"),
        "failure" | "error" => Some("failure"),
        _ => None,
    }
}

/// Applies a status: the latest final status decides the outcome.
fn settle(deploy: &mut Deploy, status: &payload::DeploymentStatus) {
    let Some(outcome) = final_outcome(status) else { return };
    let at = time(status.created_at.as_deref()).unwrap_or_default();
    if deploy.outcome.is_none() || at >= deploy.at {
        deploy.outcome = Some(outcome.into());
        deploy.at = at;
    }
}

fn workflow_run(event: &Event, body: payload::WorkflowRunEvent, settings: &Settings) -> Result<()> {
    let run = &body.workflow_run;
    let name = run.name.clone().unwrap_or_default();
    let on_default = run.head_branch.as_deref() == body.repository.default_branch.as_deref();
    if body.action != "completed" || !on_default || !settings.is_deploy_workflow(&name) {
        return Ok(());
    }
    let outcome = match run.conclusion.as_deref() {
        Some("success") => "success",
        Some("failure") | Some("timed_out") => "failure",
        _ => return Ok(()),
    };
    let at = time(run.updated_at.as_deref()).unwrap_or_default();
    let created = time(run.created_at.as_deref()).unwrap_or(at);
    let id = format!("workflow_run/{}", run.id);
    update_deploy(&body.repository.full_name, &id, settings, |deploy| {
        deploy.environment = format!("workflow:{name}");
        deploy.sha = run.head_sha.clone();
        deploy.created_at = created;
        deploy.outcome = Some(outcome.into());
        deploy.at = at;
        deploy.event_ids.push(event.id.clone());
    })
}

/// Changes one deployment, relinks the repository's merges, and re-records the
/// figures of the deployments and pull requests that moved.
fn update_deploy(repo: &str, id: &str, settings: &Settings, change: impl FnOnce(&mut Deploy)) -> Result<()> {
    let mut state: RepoState = storage::get(&repo::key(repo))?.unwrap_or_default();
    let recovered_before = recovery_times(&state);
    let deploy =
        state.deploys.entry(id.to_owned()).or_insert_with(|| Deploy { id: id.to_owned(), ..Deploy::default() });
    let outcome_before = deploy.outcome.is_some().then(|| (deploy.outcome.clone(), deploy.at));
    change(deploy);
    deploy.event_ids.sort();
    deploy.event_ids.dedup();
    if let Some(outcome) = deploy.outcome.as_deref() {
        let labels = [("repo", repo), ("environment", deploy.environment.as_str()), ("outcome", outcome)];
        metrics::put(&format!("{repo}/{id}"), names::DEPLOYMENT, &labels, deploy.at, 1.0)?;
    }
    announce::deployment(repo, outcome_before, deploy)?;
    let changed = state.link();
    for (failure, recovered_in) in state.recoveries() {
        let unchanged = recovered_before.get(&failure.id) == Some(&(failure.at, recovered_in));
        if let (Some(millis), false) = (recovered_in, unchanged) {
            let labels = [("repo", repo), ("environment", failure.environment.as_str())];
            let key = format!("{repo}/{}/recovery", failure.id);
            metrics::put(&key, names::RECOVERY, &labels, failure.at, millis as f64 / 1000.0)?;
        }
    }
    relink(repo, &state, changed, settings, None)?;
    state.trim();
    storage::put(&repo::key(repo), &state)
}

/// Gives pull requests whose deployment moved their new deployment, timeline
/// point and figures. `current` is the pull request being saved by the caller.
fn relink(
    repo: &str,
    state: &RepoState,
    changed: Vec<u64>,
    settings: &Settings,
    mut current: Option<&mut Pull>,
) -> Result<()> {
    for number in changed {
        let merge = &state.merges[&number];
        let apply = |pull: &mut Pull| {
            pull.deployed_at = merge.deployed_at;
            pull.deployment = merge.deployment.clone();
            pull.timeline.retain(|_, moment| moment.what != "deployed");
            if let (Some(at), Some(deploy)) =
                (merge.deployed_at, merge.deployment.as_ref().and_then(|id| state.deploys.get(id)))
            {
                let event_id = deploy.event_ids.last().map(String::as_str).unwrap_or_default();
                pull.moment_about(at, "deployed", Some(&deploy.id), None, event_id);
            }
        };
        match current.as_deref_mut() {
            Some(pull) if pull.number == number => apply(pull),
            _ => {
                let Some(mut pull) = storage::get::<Pull>(&pull_key(repo, number))? else { continue };
                apply(&mut pull);
                record_figures(&pull, settings)?;
                storage::put(&pull_key(repo, number), &pull)?;
            }
        }
    }
    Ok(())
}

/// Each failed deployment's time and recovery, to re-record only what moved.
fn recovery_times(state: &RepoState) -> BTreeMap<String, (Timestamp, Option<Timestamp>)> {
    state
        .recoveries()
        .into_iter()
        .map(|(failure, recovered_in)| (failure.id.clone(), (failure.at, recovered_in)))
        .collect()
}

/// Which account installed the app, on which repositories.
fn installation(body: payload::InstallationEvent) -> Result<()> {
    #[derive(Serialize)]
    struct Installed {
        action: String,
        account: Option<String>,
        repositories: Vec<String>,
    }
    let installed = Installed {
        action: body.action,
        account: body.installation.account.map(|account| account.login),
        repositories: body.repositories.unwrap_or_default().into_iter().map(|repo| repo.full_name).collect(),
    };
    storage::put(&format!("installation/{}", body.installation.id), &installed)
}
