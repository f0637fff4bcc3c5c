//! The `github` plugin: ingests GitHub webhooks (pull requests, reviews,
//! pushes, deployments, workflow runs, installations) and answers pull request
//! flow, delivery reliability and DORA figures, each traceable to the events it
//! came from. Definitions: `docs/metrics.md`.

mod ingest;
mod payload;
mod pull;
mod repo;
mod report;
mod routes;
mod settings;

use devpulse_sdk::WebhookSource;
use devpulse_sdk::prelude::*;

pub struct Github;

impl Plugin for Github {
    fn manifest() -> Manifest {
        Manifest::new(
            "github",
            env!("CARGO_PKG_VERSION"),
            "Pull request flow, DORA and delivery reliability from GitHub webhooks",
        )
        .webhook_source(WebhookSource::github("github"))
        .subscribe("github.*")
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
        ]
    }

    fn on_event(event: Event) -> Result<()> {
        ingest::handle(&event)
    }
}

devpulse_sdk::export_plugin!(Github);
