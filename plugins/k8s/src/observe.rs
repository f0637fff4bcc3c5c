//! The cluster's side: the plugin watches its Deployments and its pods
//! (WIT 0.1.7 watches), and each change they report updates the workspace it
//! belongs to.

use crate::render::{NAME, NAME_LABEL, WORKSPACE_LABEL};
use crate::settings::Settings;
use crate::status::{self, is_failing};
use crate::workspace::{PodSeen, Reason, Status, Workspace};
use devpulse_sdk::kube::{Change, Watch, WatchEvent};
use devpulse_sdk::prelude::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

pub const DEPLOYMENTS: &str = "deployments";
pub const PODS: &str = "pods";

pub fn watches() -> Vec<Watch> {
    let selector = format!("{NAME_LABEL}={NAME}");
    vec![Watch::new(DEPLOYMENTS, "apps/v1", "Deployment", &selector), Watch::new(PODS, "v1", "Pod", &selector)]
}

/// The event kind of one of this plugin's watches.
pub fn kind(watch: &str) -> String {
    format!("kube.k8s.{watch}")
}

pub fn on_watch(event: &Event) -> Result<()> {
    if event.kind == kind(DEPLOYMENTS) {
        let change: WatchEvent<Deployment> = WatchEvent::read(event)?;
        let Some(mut workspace) = of(&change.object.metadata.labels)? else { return Ok(()) };
        let observed = &mut workspace.observed;
        if change.change == Change::Deleted {
            observed.deployment = None;
            observed.deployment_deleted = true;
        } else {
            let status = change.object.status.unwrap_or_default();
            let count = |value: Option<i32>| value.unwrap_or(0).max(0) as u64;
            observed.deployment = Some((count(status.replicas), count(status.ready_replicas)));
            observed.deployment_deleted = false;
        }
        observe(workspace, event, None)
    } else {
        let change: WatchEvent<Pod> = WatchEvent::read(event)?;
        let Some(mut workspace) = of(&change.object.metadata.labels)? else { return Ok(()) };
        let name = change.object.metadata.name.clone().unwrap_or_default();
        let detail = if change.change == Change::Deleted {
            workspace.observed.pods.remove(&name);
            None
        } else {
            let seen = pod_seen(&change.object);
            let detail = seen.ready.then(|| format!("pod {name} is ready"));
            workspace.observed.pods.insert(name, seen);
            detail
        };
        observe(workspace, event, detail)
    }
}

/// The workspace an object's labels name, unless it is gone.
fn of(labels: &Option<std::collections::BTreeMap<String, String>>) -> Result<Option<Workspace>> {
    let Some(id) = labels.as_ref().and_then(|labels| labels.get(WORKSPACE_LABEL)) else { return Ok(None) };
    Ok(Workspace::load(id)?.filter(|workspace| workspace.status != Status::Deleted))
}

fn observe(mut workspace: Workspace, event: &Event, detail: Option<String>) -> Result<()> {
    status::settle(&Settings::load()?, &mut workspace, Reason::Cluster, detail, event.occurred_at)?;
    workspace.save()
}

/// Whether the pod is ready, and a container (init containers included)
/// waiting for a reason that will not clear.
fn pod_seen(pod: &Pod) -> PodSeen {
    let Some(status) = &pod.status else { return PodSeen::default() };
    let ready =
        status.conditions.iter().flatten().any(|condition| condition.type_ == "Ready" && condition.status == "True");
    let failure = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter_map(|container| container.state.as_ref()?.waiting.as_ref())
        .find(|waiting| waiting.reason.as_deref().is_some_and(is_failing))
        .map(|waiting| (waiting.reason.clone().unwrap_or_default(), waiting.message.clone().unwrap_or_default()));
    PodSeen { ready, failure }
}
