//! Backfill: imports a repository's pull requests (with their reviews, review
//! comments, commits and draft changes), production deployments (with their
//! statuses) and deploy workflow runs through the REST API, as events the
//! ingest folds exactly like webhooks (`github.backfill.*`). Facts are keyed
//! by GitHub ids, so history known from both a backfill and webhooks counts
//! once.
//!
//! A job is a document; the `backfill` schedule advances running jobs a few
//! requests per tick and commits their progress with the events, so a restart
//! resumes where the last tick left off. Rate limits pause a job until GitHub
//! says it may go on.

use crate::payload::{
    Account, BackfillDeployment, BackfillPull, CommentBody, Deployment, DeploymentStatus, DraftChange, PullRequest,
    PushCommit, Repository, ReviewBody, WorkflowRun, WorkflowRunEvent, time,
};
use crate::rest::{Api, Page, Reply};
use crate::routes::rfc3339;
use crate::settings::Settings;
use devpulse_sdk::prelude::*;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const SCHEDULE: &str = "backfill";
pub const EVERY_S: u32 = 5;

/// Wall time a tick spends starting requests; the last one may run past it, so
/// it stays well inside the default 2 s call deadline.
const TICK_BUDGET: Duration = Duration::from_millis(1000);
const PER_PAGE: u32 = 100;
/// Requests one pull request takes: itself, draft changes, reviews, comments, commits.
const REQUESTS_PER_PULL: u64 = 5;
/// Consecutive failed requests (GitHub errors, timeouts) before a job fails.
const GIVE_UP_AFTER: u32 = 5;

fn job_key(id: &str) -> String {
    format!("backfill/{id}")
}

fn active_key(id: &str) -> String {
    format!("backfill-active/{id}")
}

/// What to import.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBackfill {
    /// `owner/name`.
    #[schemars(pattern(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"))]
    pub repo: String,
    /// Pull requests updated, and deployments and runs created, at or after this time.
    pub since: Time,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pulls,
    Deployments,
    WorkflowRuns,
    Finished,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Items {
    pub pulls: u64,
    pub deployments: u64,
    pub workflow_runs: u64,
}

/// A backfill job as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub repo: String,
    pub since: Timestamp,
    pub requested_by: String,
    pub repository: Repository,
    pub phase: Phase,
    /// The next page of the current phase's listing; `None` before the first.
    pub next: Option<String>,
    /// Whether the current phase's listing has been read to its end.
    pub listed: bool,
    pub pending_pulls: VecDeque<u64>,
    pub pending_deployments: VecDeque<Deployment>,
    pub items: Items,
    pub pages_done: u64,
    pub requests: u64,
    pub rate_limit_waits: u64,
    /// Pull request listing pages read, and the last page number GitHub announced.
    pub pull_pages: u64,
    pub pull_last_page: Option<u32>,
    pub waiting_until: Option<Timestamp>,
    pub failures_in_a_row: u32,
    /// Milliseconds spent working (waits excluded), for the pace behind the ETA.
    pub busy_ms: u64,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// A backfill job's progress.
#[derive(Serialize, JsonSchema)]
pub struct JobView {
    pub id: String,
    pub repo: String,
    pub since: String,
    /// `running`, `waiting` (rate limited or backing off after an error), `done` or `failed`.
    pub state: String,
    /// What it is importing: `pulls`, `deployments`, `workflow_runs`, `finished`.
    pub phase: Phase,
    /// Pages (API responses) read.
    pub pages_done: u64,
    /// Requests made, rate-limited and failed ones included.
    pub requests: u64,
    /// Items imported, each one an event (`github.backfill.*`).
    pub items: Items,
    /// Pull requests and deployments listed and not imported yet.
    pub pending: u64,
    /// Times GitHub's rate limits paused the job.
    pub rate_limit_waits: u64,
    pub waiting_until: Option<String>,
    /// Seconds until done, estimated from the work known to remain and the
    /// pace so far; `null` until there is a pace, or when done.
    pub eta_s: Option<f64>,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl Job {
    fn view(&self, now: Timestamp) -> JobView {
        let state = match (&self.error, self.finished_at, self.waiting_until) {
            (Some(_), _, _) => "failed",
            (None, Some(_), _) => "done",
            (None, None, Some(until)) if until > now => "waiting",
            _ => "running",
        };
        JobView {
            id: self.id.clone(),
            repo: self.repo.clone(),
            since: rfc3339(self.since),
            state: state.into(),
            phase: self.phase,
            pages_done: self.pages_done,
            requests: self.requests,
            items: self.items.clone(),
            pending: (self.pending_pulls.len() + self.pending_deployments.len()) as u64,
            rate_limit_waits: self.rate_limit_waits,
            waiting_until: self.waiting_until.filter(|until| *until > now).map(rfc3339),
            eta_s: self.eta_s(now),
            error: self.error.clone(),
            requested_by: self.requested_by.clone(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            finished_at: self.finished_at.map(rfc3339),
        }
    }

    /// Requests known to remain times the pace so far, plus any wait.
    fn eta_s(&self, now: Timestamp) -> Option<f64> {
        if self.finished_at.is_some() || self.error.is_some() || self.requests == 0 {
            return None;
        }
        let pulls_per_page = if self.pull_pages > 0 {
            (self.items.pulls + self.pending_pulls.len() as u64) as f64 / self.pull_pages as f64
        } else {
            f64::from(PER_PAGE)
        };
        let unlisted_pages = match (self.phase, self.listed, self.pull_last_page) {
            (Phase::Pulls, false, Some(last)) => u64::from(last).saturating_sub(self.pull_pages) as f64,
            _ => 0.0,
        };
        let remaining = self.pending_pulls.len() as f64 * REQUESTS_PER_PULL as f64
            + self.pending_deployments.len() as f64
            + unlisted_pages * (1.0 + pulls_per_page * REQUESTS_PER_PULL as f64);
        let pace_s = self.busy_ms as f64 / 1000.0 / self.requests as f64;
        let wait_s = self.waiting_until.map_or(0.0, |until| (until - now).max(0) as f64 / 1000.0);
        Some(remaining * pace_s + wait_s)
    }
}

/// `POST /backfill`: checks the repository is reachable with the token, then
/// queues the job.
pub fn start(call: Call<(), StartBackfill>) -> Result<JobView> {
    let body = call.body;
    let Some((owner, name)) = body.repo.split_once('/').filter(|(owner, name)| {
        let ok =
            |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        ok(owner) && ok(name)
    }) else {
        return Err(Error::invalid(format!("`repo` is owner/name, not {:?}", body.repo)));
    };
    let now = now();
    // A `since` in the future imports nothing: the job finishes at once.
    let since = body.since.0;
    let settings = Settings::load()?;
    let api = Api::from_settings(&settings)?;
    let repository: Repository = match api.get(&format!("repos/{owner}/{name}"), now)? {
        Reply::Ok(page) => page.json()?,
        Reply::Wait(until) => {
            return Err(Error::Unavailable(format!("GitHub's rate limit allows no request before {}", rfc3339(until))));
        }
    };
    let running: Vec<(String, String)> = storage::scan_all(&active_key(""))?;
    if let Some((_, id)) = running.iter().find(|(_, id)| {
        storage::get::<Job>(&job_key(id)).ok().flatten().is_some_and(|job| job.repo == repository.full_name)
    }) {
        return Err(Error::conflict(format!("backfill {id} of {} is still running", repository.full_name)));
    }
    let id = format!("{now:013}");
    let job = Job {
        id: id.clone(),
        repo: repository.full_name.clone(),
        since,
        requested_by: call.principal.user_id.clone(),
        repository,
        phase: Phase::Pulls,
        next: None,
        listed: false,
        pending_pulls: VecDeque::new(),
        pending_deployments: VecDeque::new(),
        items: Items::default(),
        pages_done: 1,
        requests: 1,
        rate_limit_waits: 0,
        pull_pages: 0,
        pull_last_page: None,
        waiting_until: None,
        failures_in_a_row: 0,
        busy_ms: 0,
        error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    storage::put(&job_key(&id), &job)?;
    storage::put(&active_key(&id), &id)?;
    log::info(&format!("backfill {id} of {} since {} queued", job.repo, rfc3339(since)));
    Ok(job.view(now))
}

#[derive(Deserialize, JsonSchema)]
pub struct JobId {
    pub id: String,
}

/// `GET /backfill/{id}`.
pub fn progress(call: Call<JobId>) -> Result<JobView> {
    let id = call.params.id;
    let job: Job = storage::get(&job_key(&id))?.ok_or_else(|| Error::not_found(format!("no backfill {id}")))?;
    Ok(job.view(now()))
}

#[derive(Deserialize, JsonSchema)]
pub struct JobListQuery {
    pub cursor: Option<Cursor>,
    /// At most this many (20 by default).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
pub struct JobPage {
    pub items: Vec<JobView>,
    pub next_cursor: Option<String>,
}

/// `GET /backfill`: jobs, oldest first.
pub fn list(call: Call<JobListQuery>) -> Result<JobPage> {
    let limit = call.params.limit.unwrap_or(20).clamp(1, 100);
    let page = storage::scan::<Job>(&job_key(""), call.params.cursor.as_deref(), limit)?;
    let now = now();
    Ok(JobPage { items: page.entries.iter().map(|(_, job)| job.view(now)).collect(), next_cursor: page.next_cursor })
}

/// The `backfill` schedule: advances every running job of the org.
pub fn tick(now: Timestamp) -> Result<()> {
    let active: Vec<(String, String)> = storage::scan_all(&active_key(""))?;
    if active.is_empty() {
        return Ok(());
    }
    let settings = Settings::load()?;
    // Without a usable configuration every job fails, saying why.
    let api = Api::from_settings(&settings);
    let started = Instant::now();
    for (_, id) in active {
        let Some(mut job) = storage::get::<Job>(&job_key(&id))? else {
            storage::delete(&active_key(&id))?;
            continue;
        };
        let began = Instant::now();
        let outcome = match &api {
            Ok(api) => advance(&mut job, api, &settings, now, started),
            Err(err) => Err(Error::Denied(err.to_string())),
        };
        job.busy_ms += began.elapsed().as_millis() as u64;
        job.updated_at = now;
        match outcome {
            Ok(()) => job.failures_in_a_row = 0,
            Err(err) => fail_or_retry(&mut job, err, now),
        }
        if job.finished_at.is_some() {
            storage::delete(&active_key(&id))?;
        }
        storage::put(&job_key(&id), &job)?;
    }
    Ok(())
}

/// Transient errors back off and retry; the others end the job, saying why.
fn fail_or_retry(job: &mut Job, err: Error, now: Timestamp) {
    job.failures_in_a_row += 1;
    let transient = matches!(err, Error::Unavailable(_) | Error::Internal(_));
    if transient && job.failures_in_a_row < GIVE_UP_AFTER {
        let backoff = 5_000 * (1 << job.failures_in_a_row.min(6));
        job.waiting_until = Some(now + backoff);
        log::warn(&format!("backfill {} of {}: {err}; retrying in {} s", job.id, job.repo, backoff / 1000));
    } else {
        log::error(&format!("backfill {} of {} failed: {err}", job.id, job.repo));
        job.error = Some(err.to_string());
        job.finished_at = Some(now);
    }
}

/// Does requests until the tick's budget is spent, the job waits, or it is done.
fn advance(job: &mut Job, api: &Api, settings: &Settings, now: Timestamp, started: Instant) -> Result<()> {
    while job.finished_at.is_none() && started.elapsed() < TICK_BUDGET {
        if job.waiting_until.is_some_and(|until| until > now) {
            return Ok(());
        }
        job.waiting_until = None;
        let mut client = Client { api, job, now };
        let progressed = match client.job.phase {
            Phase::Pulls => client.pulls()?,
            Phase::Deployments => client.deployments(settings)?,
            Phase::WorkflowRuns => client.workflow_runs(settings)?,
            Phase::Finished => client.finish(),
        };
        if !progressed {
            return Ok(());
        }
    }
    Ok(())
}

/// One job's requests within one tick.
struct Client<'a> {
    api: &'a Api,
    job: &'a mut Job,
    now: Timestamp,
}

/// A REST commit (`GET .../pulls/{n}/commits`).
#[derive(Deserialize)]
struct RestCommit {
    sha: String,
    commit: RestCommitDetail,
}

#[derive(Deserialize)]
struct RestCommitDetail {
    author: Option<RestSignature>,
}

#[derive(Deserialize)]
struct RestSignature {
    date: Option<String>,
}

/// An issue event (`GET .../issues/{n}/events`).
#[derive(Deserialize)]
struct IssueEvent {
    event: String,
    created_at: String,
    actor: Option<Account>,
}

#[derive(Deserialize)]
struct WorkflowRuns {
    workflow_runs: Vec<WorkflowRun>,
}

impl Client<'_> {
    /// One request; `None` when a rate limit paused the job.
    fn get(&mut self, path: &str) -> Result<Option<Page>> {
        self.job.requests += 1;
        match self.api.get(path, self.now)? {
            Reply::Wait(until) => {
                self.pause(until);
                Ok(None)
            }
            Reply::Ok(page) => {
                self.job.pages_done += 1;
                if let Some(until) = page.exhausted_until {
                    self.pause(until);
                }
                Ok(Some(page))
            }
        }
    }

    fn pause(&mut self, until: Timestamp) {
        self.job.rate_limit_waits += 1;
        self.job.waiting_until = Some(until);
        log::info(&format!("backfill {} rate limited until {}", self.job.id, rfc3339(until)));
    }

    /// Every page of a list; `None` when a rate limit paused the job.
    fn get_all<T: DeserializeOwned>(&mut self, path: &str) -> Result<Option<Vec<T>>> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(url) = next {
            if self.job.waiting_until.is_some() {
                return Ok(None);
            }
            let Some(page) = self.get(&url)? else { return Ok(None) };
            items.extend(page.json::<Vec<T>>()?);
            next = page.next;
        }
        Ok(Some(items))
    }

    /// The next page of the current phase's listing, or `None` when paused.
    fn list_page(&mut self, first: String) -> Result<Option<Page>> {
        let url = self.job.next.clone().unwrap_or(first);
        let page = self.get(&url)?;
        if let Some(page) = &page {
            self.job.next = page.next.clone();
            self.job.listed = page.next.is_none();
        }
        Ok(page)
    }

    fn finish(&mut self) -> bool {
        let job = &mut *self.job;
        job.finished_at = Some(self.now);
        log::info(&format!(
            "backfill {} of {} done: {} pull requests, {} deployments, {} workflow runs",
            job.id, job.repo, job.items.pulls, job.items.deployments, job.items.workflow_runs
        ));
        true
    }

    fn next_phase(&mut self, phase: Phase) {
        self.job.phase = phase;
        self.job.next = None;
        self.job.listed = false;
    }

    /// Imports the next listed pull request, or lists the next page of them.
    fn pulls(&mut self) -> Result<bool> {
        if let Some(&number) = self.job.pending_pulls.front() {
            if !self.import_pull(number)? {
                return Ok(false);
            }
            self.job.pending_pulls.pop_front();
            self.job.items.pulls += 1;
            return Ok(true);
        }
        if self.job.listed {
            self.next_phase(Phase::Deployments);
            return Ok(true);
        }
        let repo = self.job.repo.clone();
        let first = format!("repos/{repo}/pulls?state=all&sort=updated&direction=desc&per_page={PER_PAGE}");
        let Some(page) = self.list_page(first)? else { return Ok(false) };
        self.job.pull_pages += 1;
        self.job.pull_last_page = page.last_page.or(self.job.pull_last_page);
        for pull in page.json::<Vec<PullRequest>>()? {
            // Newest updates first: the first one older than `since` ends the listing.
            if time(pull.updated_at.as_deref()).unwrap_or_default() < self.job.since {
                self.job.listed = true;
                self.job.next = None;
                break;
            }
            self.job.pending_pulls.push_back(pull.number);
        }
        Ok(true)
    }

    /// Reads one pull request and emits it; false when a rate limit paused it
    /// (it is read again from the start after the wait).
    fn import_pull(&mut self, number: u64) -> Result<bool> {
        let base = format!("repos/{}", self.job.repo);
        let Some(page) = self.get(&format!("{base}/pulls/{number}"))? else { return Ok(false) };
        let pull_request: PullRequest = page.json()?;
        let Some(issue_events) =
            self.get_all::<IssueEvent>(&format!("{base}/issues/{number}/events?per_page={PER_PAGE}"))?
        else {
            return Ok(false);
        };
        let Some(reviews) =
            self.get_all::<ReviewBody>(&format!("{base}/pulls/{number}/reviews?per_page={PER_PAGE}"))?
        else {
            return Ok(false);
        };
        let Some(comments) =
            self.get_all::<CommentBody>(&format!("{base}/pulls/{number}/comments?per_page={PER_PAGE}"))?
        else {
            return Ok(false);
        };
        let Some(commits) =
            self.get_all::<RestCommit>(&format!("{base}/pulls/{number}/commits?per_page={PER_PAGE}"))?
        else {
            return Ok(false);
        };
        let draft_changes = issue_events
            .into_iter()
            .filter(|event| event.event == "ready_for_review" || event.event == "convert_to_draft")
            .map(|event| DraftChange { event: event.event, created_at: event.created_at, actor: event.actor })
            .collect();
        let commits = commits
            .into_iter()
            .map(|commit| PushCommit { id: commit.sha, timestamp: commit.commit.author.and_then(|author| author.date) })
            .collect();
        let pull = BackfillPull {
            repository: self.job.repository.clone(),
            pull_request,
            draft_changes,
            reviews,
            comments,
            commits,
        };
        events::emit("github.backfill.pull", &pull)?;
        Ok(true)
    }

    /// Imports the next listed production deployment, or lists more.
    fn deployments(&mut self, settings: &Settings) -> Result<bool> {
        if let Some(deployment) = self.job.pending_deployments.front().cloned() {
            let path = format!("repos/{}/deployments/{}/statuses?per_page={PER_PAGE}", self.job.repo, deployment.id);
            let Some(statuses) = self.get_all::<DeploymentStatus>(&path)? else { return Ok(false) };
            let repository = self.job.repository.clone();
            events::emit("github.backfill.deployment", &BackfillDeployment { repository, deployment, statuses })?;
            self.job.pending_deployments.pop_front();
            self.job.items.deployments += 1;
            return Ok(true);
        }
        if self.job.listed {
            self.next_phase(Phase::WorkflowRuns);
            return Ok(true);
        }
        let first = format!("repos/{}/deployments?per_page={PER_PAGE}", self.job.repo);
        let Some(page) = self.list_page(first)? else { return Ok(false) };
        for deployment in page.json::<Vec<Deployment>>()? {
            // Newest first: the first one older than `since` ends the listing.
            if time(deployment.created_at.as_deref()).unwrap_or_default() < self.job.since {
                self.job.listed = true;
                self.job.next = None;
                break;
            }
            if settings.is_production(deployment.environment.as_deref().unwrap_or_default()) {
                self.job.pending_deployments.push_back(deployment);
            }
        }
        Ok(true)
    }

    /// Emits completed deploy workflow runs on the default branch, a page at a time.
    fn workflow_runs(&mut self, settings: &Settings) -> Result<bool> {
        let default_branch = self.job.repository.default_branch.clone().unwrap_or_else(|| "main".into());
        if self.job.listed || settings.deploy_workflows.is_empty() {
            self.next_phase(Phase::Finished);
            return Ok(true);
        }
        let since = rfc3339(self.job.since);
        let first = format!(
            "repos/{}/actions/runs?branch={default_branch}&status=completed&created=%3E%3D{}&per_page={PER_PAGE}",
            self.job.repo,
            since.replace('+', "%2B")
        );
        let Some(page) = self.list_page(first)? else { return Ok(false) };
        for run in page.json::<WorkflowRuns>()?.workflow_runs {
            if settings.is_deploy_workflow(run.name.as_deref().unwrap_or_default()) {
                let repository = self.job.repository.clone();
                let event = WorkflowRunEvent { action: "completed".into(), workflow_run: run, repository };
                events::emit("github.backfill.workflow_run", &event)?;
                self.job.items.workflow_runs += 1;
            }
        }
        Ok(true)
    }
}
