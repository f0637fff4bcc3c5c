//! Event handlers: each folds one GitHub delivery into the stored facts, then
//! re-records the figures it may have changed. Figures are metric points under
//! keys (`metrics::put`), so a late or repeated delivery replaces a figure
//! instead of adding a second one.

use crate::payload::{self, Account, PullRequest, Repository, time};
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
    let reviewer = body.review.user.clone().unwrap_or_default();
    let at = time(body.review.submitted_at.as_deref()).unwrap_or_default();
    let id = format!("review/{}", body.review.id);
    let dismissed = body.action == "dismissed" || body.review.state.as_deref() == Some("dismissed");
    let entry = pull.reviews.entry(id).or_insert_with(|| Review {
        by: reviewer.login.clone(),
        at,
        kind: body.review.state.clone().unwrap_or_default().to_ascii_lowercase(),
        dismissed,
        counts: counts_as_reviewer(&reviewer, &pull_author(&body.pull_request)),
        event_id: event.id.clone(),
    });
    entry.dismissed |= dismissed;
    if !dismissed {
        entry.kind = body.review.state.clone().unwrap_or_default().to_ascii_lowercase();
    }
    let what = if dismissed { "review_dismissed" } else { "review" };
    let actor = body.sender.as_ref().map(|sender| sender.login.as_str()).unwrap_or(&reviewer.login).to_owned();
    pull.moment(at, what, Some(&actor), &event.id);
    save(pull, settings)
}

fn review_comment(event: &Event, body: payload::ReviewCommentEvent, settings: &Settings) -> Result<()> {
    if body.action != "created" {
        return Ok(());
    }
    let mut pull = load(&body.repository, &body.pull_request)?;
    let author = body.comment.user.clone().unwrap_or_default();
    let at = time(body.comment.created_at.as_deref()).unwrap_or_default();
    pull.reviews.entry(format!("comment/{}", body.comment.id)).or_insert_with(|| Review {
        by: author.login.clone(),
        at,
        kind: "comment".into(),
        dismissed: false,
        counts: counts_as_reviewer(&author, &pull_author(&body.pull_request)),
        event_id: event.id.clone(),
    });
    pull.moment(at, "comment", Some(&author.login), &event.id);
    save(pull, settings)
}

fn pull_author(pr: &PullRequest) -> String {
    pr.user.as_ref().map(|user| user.login.clone()).unwrap_or_default()
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
    let environment = body.deployment.environment.clone().unwrap_or_default();
    if !settings.is_production(&environment) {
        return Ok(());
    }
    let id = format!("deployment/{}", body.deployment.id);
    let created = time(body.deployment.created_at.as_deref()).unwrap_or_default();
    update_deploy(&body.repository.full_name, &id, settings, |deploy| {
        deploy.environment = environment.clone();
        deploy.sha = deploy.sha.clone().or(body.deployment.sha.clone());
        deploy.created_at = created;
        deploy.at = deploy.at.max(created);
        deploy.event_ids.push(event.id.clone());
    })
}

fn deployment_status(event: &Event, body: payload::DeploymentStatusEvent, settings: &Settings) -> Result<()> {
    let environment =
        body.deployment_status.environment.clone().or(body.deployment.environment.clone()).unwrap_or_default();
    if !settings.is_production(&environment) {
        return Ok(());
    }
    let outcome = match body.deployment_status.state.as_str() {
        "success" => "success",
        "failure" | "error" => "failure",
        _ => return Ok(()),
    };
    let at = time(body.deployment_status.created_at.as_deref()).unwrap_or_default();
    let created = time(body.deployment.created_at.as_deref()).unwrap_or(at);
    let id = format!("deployment/{}", body.deployment.id);
    update_deploy(&body.repository.full_name, &id, settings, |deploy| {
        deploy.environment = environment.clone();
        deploy.sha = deploy.sha.clone().or(body.deployment.sha.clone());
        deploy.created_at = created;
        // The latest final status decides.
        if deploy.outcome.is_none() || at >= deploy.at {
            deploy.outcome = Some(outcome.into());
            deploy.at = at;
        }
        deploy.event_ids.push(event.id.clone());
    })
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
    change(deploy);
    deploy.event_ids.sort();
    deploy.event_ids.dedup();
    if let Some(outcome) = deploy.outcome.as_deref() {
        let labels = [("repo", repo), ("environment", deploy.environment.as_str()), ("outcome", outcome)];
        metrics::put(&format!("{repo}/{id}"), names::DEPLOYMENT, &labels, deploy.at, 1.0)?;
    }
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
