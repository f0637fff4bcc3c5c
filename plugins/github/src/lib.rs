//! The `github` plugin: ingests GitHub webhooks (pull requests, reviews,
//! pushes, deployments, workflow runs, installations) and answers pull request
//! flow, delivery reliability and DORA figures, each traceable to the events it
//! came from. Definitions: `docs/metrics.md`.

pub mod announce;
mod backfill;
mod ingest;
mod payload;
mod pull;
mod redeliver;
mod repo;
mod report;
mod rest;
mod routes;
mod settings;

use devpulse_sdk::WebhookSource;
use devpulse_sdk::prelude::*;

pub struct Github;

impl Plugin for Github {
    fn manifest() -> Manifest {
        let manifest = Manifest::new(
            "github",
            env!("CARGO_PKG_VERSION"),
            "Pull request flow, DORA and delivery reliability from GitHub webhooks",
        );
        ingest::CONSUMED
            .iter()
            .fold(manifest, |manifest, kind| manifest.subscribe(kind))
            .webhook_source(WebhookSource::github("github"))
            .capability("http")
            .schedule(backfill::SCHEDULE, backfill::EVERY_S)
            .schedule(redeliver::SCHEDULE, redeliver::EVERY_S)
    }

    fn routes() -> Vec<Route> {
        vec![
            get("/pulls", routes::list).summary("Pull requests with their cycle-time figures").description(
                "Newest repositories and numbers last, paginated. Developers see their own pull requests, \
                     managers and above everyone's. Durations are seconds, null when unknown: cycle = first commit \
                     (or creation) to merge; coding = first commit to ready for review (opened as non-draft or \
                     marked ready); pickup = ready to the first review or review comment by someone other than the \
                     author (bots excluded); review = that first review to merge; deploy = merge to the first \
                     successful production deployment containing the merge commit.",
            ),
            get("/pulls/{owner}/{repo}/{number}", routes::detail)
                .summary("One pull request, its figures and the timeline they come from")
                .description(
                    "The same figures as the list, plus lead time and rework commits, and every moment of the \
                     timeline with the id of the event it was read from (`GET /api/v1/events/{id}`).",
                ),
            get("/summary", report::summary)
                .summary("Pull request flow and the Delivery Reliability Score over a window")
                .description(&format!(
                    "Merged pull requests in [from, to) by merge time, optionally grouped by author or repo: \
                     p50/p90 of each cycle part (percentiles within 1%, from the metrics store's sketches), median \
                     size (additions + deletions), review coverage (share with a review by someone other than the \
                     author, bots excluded), rework rate (share with commits after the first review), and the \
                     Delivery Reliability Score: {}. Developers see their own figures. `include=items` lists the \
                     pull requests behind the figures.",
                    report::FORMULA
                )),
            get("/dora", report::dora).min_role(Role::Manager).summary("DORA metrics over a window").description(
                "Deployment frequency (successful production deployments and deployment days per week), lead time \
                 for changes (first commit to production deployment, median), change failure rate (failed \
                 production deployments divided by production deployments, never incidents divided by \
                 deployments) and failed deployment recovery time (a failure to the next success in its \
                 environment, median), each with its DORA 2023 band. Production deployments come from \
                 `deployment_status` in environments matching `production_environments` and from successful \
                 default-branch runs of workflows matching `deploy_workflows`; without any in the window, merges \
                 to the default branch stand in and `basis` says `merges`. `include=items` lists the deployments.",
            ),
            post("/backfill", backfill::start)
                .min_role(Role::Admin)
                .status(202)
                .summary("Import a repository's history through GitHub's REST API")
                .description(
                    "Checks that the repository is reachable with the plugin's `token` (through the host's `http` \
                     capability; `api_url` and the plugin's `http_allow` name the API host), then queues a job that \
                     imports pull requests updated since `since` (with their reviews, review comments, commits and \
                     draft changes), production deployments created since then (with their statuses) and deploy \
                     workflow runs. Items become `github.backfill.*` events folded like webhooks: history that also \
                     arrives by webhook counts once. The job honours GitHub's rate limits and resumes after a \
                     restart; follow it at `GET /api/v1/github/backfill/{id}`. 409 while a backfill of the same \
                     repository runs; 409 without a token.",
                ),
            get("/backfill", backfill::list)
                .min_role(Role::Admin)
                .summary("Backfill jobs, oldest first")
                .description("Paginated with `cursor` and `limit`; each job as in `GET /backfill/{id}`."),
            get("/backfill/{id}", backfill::progress)
                .min_role(Role::Admin)
                .summary("A backfill's progress")
                .description(
                    "Pages read, requests made, items imported (each an event), what is still pending, rate-limit \
                 waits, the time it waits until, and an ETA: the requests known to remain at the pace so far \
                 (an estimate that firms up as the listing is read).",
                ),
            put("/redeliver", redeliver::watch)
                .min_role(Role::Admin)
                .summary("Watch webhooks for failed deliveries")
                .description(
                    "GitHub never retries a failed delivery by itself. For each hook listed here (the API path of \
                     a GitHub webhook that delivers to this org's endpoint), the `redeliver` schedule (every 10 \
                     minutes, and once right away when the list is saved) lists its deliveries of the last 3 days \
                     and asks GitHub to redeliver those that never succeeded, 3 times at most each. Needs the \
                     plugin's `token` with admin:repo_hook (or admin:org_hook). Replaces the list.",
                ),
            get("/redeliver", redeliver::watched)
                .min_role(Role::Admin)
                .summary("Watched webhooks and the deliveries asked for again")
                .description("Per hook, by delivery GUID: how many times a redelivery was asked for, and when last."),
        ]
    }

    fn on_tick(schedule: &str, now: Timestamp, _principal: Principal) -> Result<()> {
        match schedule {
            backfill::SCHEDULE => backfill::tick(now),
            redeliver::SCHEDULE => redeliver::tick(now),
            _ => Ok(()),
        }
    }

    fn on_event(event: Event) -> Result<()> {
        ingest::handle(&event)
    }
}

devpulse_sdk::export_plugin!(Github);
