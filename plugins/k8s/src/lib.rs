//! k8s: developer workspaces on Kubernetes. A person asks for a workspace for
//! a repository and branch and gets a browser IDE (code-server by default) in
//! a pod with the code cloned, sized by a tier and priced by the hour. It
//! stops when idle (IDE reports and the owner's editor heartbeats are
//! activity; a keep-alive holds it for a running job), becomes dormant when
//! unused, and is deleted after its time to live; pull requests of listed
//! repositories get preview workspaces.
//!
//! Written with the SDK like any third-party plugin: objects go through the
//! host's `kube` capability, status comes back from its watches as events,
//! and other plugins' facts arrive as events (`github.pull.updated`,
//! `attendance.recorded`). Only the fold writes a workspace after its
//! creation; routes and the schedule ask it to by events. See `docs/workspaces.md`.

pub mod activity;
pub mod announce;
pub mod cluster;
pub mod cost;
pub mod lifecycle;
pub mod observe;
pub mod policy;
pub mod previews;
pub mod render;
pub mod requests;
pub mod routes;
pub mod settings;
pub mod status;
pub mod workspace;

use devpulse_sdk::kube::Watch;
use devpulse_sdk::prelude::*;

pub struct K8s;

impl Plugin for K8s {
    fn manifest() -> Manifest {
        Manifest::new(
            "k8s",
            env!("CARGO_PKG_VERSION"),
            "Developer workspaces on Kubernetes: a browser IDE per repository and branch, hibernated when idle, priced by tier",
        )
        .capability("kube")
        .subscribe(requests::REQUESTED)
        .subscribe(policy::UPDATED)
        .subscribe(lifecycle::TICKED)
        .subscribe(previews::PULL_UPDATED)
        .subscribe(activity::RECORDED)
        .schedule(lifecycle::SCHEDULE, lifecycle::EVERY_S)
    }

    fn watches() -> Vec<Watch> {
        observe::watches()
    }

    fn routes() -> Vec<Route> {
        const ONE: &str = "/workspaces/{id}";
        vec![
            post("/workspaces", routes::create).status(201).summary("Create a workspace").description(
                "A browser IDE for a repository and branch, in the caller's namespace: a home volume, \
                 the IDE's Deployment (an init container clones the branch), a Service, and the \
                 namespace's quota, default limits and ingress-only network policy. Answered at once \
                 as `pending`; the status follows the cluster (`GET .../{id}`). Refused with 403 \
                 naming the limit when the caller runs `max_running_per_user` workspaces already, or \
                 the org's monthly budget is spent.",
            ),
            get("/workspaces", routes::list).summary("Workspaces, paginated").description(
                "The caller's own; managers and above may name an `owner`, or `*` for the org's. \
                 Deleted workspaces are left out.",
            ),
            get(ONE, routes::get_one)
                .summary("A workspace: status and its history, objects, URL and cost so far")
                .description("Every status change is in `history` with its reason: `user`, `idle`, `ttl`, `quota`, `dormant`, `preview` or `cluster`."),
            post(&format!("{ONE}/start"), routes::start).status(202).summary("Start a stopped workspace").description(
                "Scales it back to one pod on the same volume. Refused with 403 naming the limit \
                 beyond the running limit or the budget.",
            ),
            post(&format!("{ONE}/stop"), routes::stop)
                .status(202)
                .summary("Stop a workspace")
                .description("Scales it to zero; the home volume is kept, and `start` brings it back."),
            delete(ONE, routes::delete)
                .summary("Delete a workspace")
                .description("Its Deployment, Service and home volume are deleted; the workspace shows `deleted` once they are gone."),
            post(&format!("{ONE}/activity"), routes::activity).status(202).summary("Report use of a workspace").description(
                "For the IDE or a proxy in front of it: the idle timeout counts from the last report. \
                 The owner's editor heartbeats for the repository count too.",
            ),
            post(&format!("{ONE}/keep-alive"), routes::keep_alive).status(202).summary("Hold off hibernation").description(
                "For a running job (a long build): the workspace is not stopped as idle for the stated \
                 minutes, up to the operator's `keep_alive_max_minutes`.",
            ),
            get(&format!("{ONE}/logs"), routes::logs)
                .summary("The last lines of the workspace's pod")
                .description("The IDE's (`container=ide`) or the clone's (`container=clone`); 404 when no pod runs."),
            get("/tiers", routes::tiers).summary("Tiers: CPU, memory and price per hour"),
            get("/policy", routes::get_policy)
                .summary("The org's preview repositories, budget and running limit"),
            put("/policy", routes::put_policy).min_role(Role::Admin).summary("Set the org's workspace policy"),
            get("/usage", routes::usage)
                .min_role(Role::Manager)
                .summary("What the org's workspaces cost this month, against the budget"),
        ]
    }

    fn on_event(event: Event) -> Result<()> {
        match event.kind.as_str() {
            requests::REQUESTED => requests::on_requested(&event),
            policy::UPDATED => policy::Policy::on_updated(&event),
            lifecycle::TICKED => lifecycle::on_ticked(&event),
            previews::PULL_UPDATED => previews::on_pull(&event),
            activity::RECORDED => activity::on_recorded(&event),
            _ if event.source == "kube" => observe::on_watch(&event),
            _ => Ok(()),
        }
    }

    fn on_tick(_schedule: &str, now: Timestamp, _principal: Principal) -> Result<()> {
        lifecycle::tick(now)
    }
}

devpulse_sdk::export_plugin!(K8s);
