//! What the plugin asks of the cluster, through the host's `kube` capability.
//! Every call is a server-side apply or a delete, so repeating one (a retried
//! event) changes nothing.

use crate::render::{self, Shared};
use crate::settings::Settings;
use crate::workspace::Workspace;
use devpulse_sdk::kube::{self, ObjectRef};
use devpulse_sdk::prelude::*;

/// Creates or updates everything the workspace needs, scaled to `replicas`.
pub fn provision(settings: &Settings, workspace: &Workspace, replicas: i32) -> Result<()> {
    let smallest = settings.tier(&settings.default_tier)?;
    let Shared { namespace, quota, limits, policy } = render::shared(settings, &workspace.namespace, smallest);
    kube::apply(&namespace)?;
    kube::apply(&quota)?;
    kube::apply(&limits)?;
    kube::apply(&policy)?;
    kube::apply(&render::volume(settings, workspace))?;
    scale(settings, workspace, replicas)?;
    kube::apply(&render::service(workspace))?;
    Ok(())
}

/// Runs (1) or stops (0) the IDE; the volume stays. The plugin decides the
/// replicas, so it takes them back from anyone who changed them by hand.
pub fn scale(settings: &Settings, workspace: &Workspace, replicas: i32) -> Result<()> {
    let tier = settings.tier(&workspace.tier)?;
    kube::apply_forced(&render::deployment(settings, workspace, tier, replicas))?;
    Ok(())
}

/// The workspace's own objects (the namespace and what it shares stay).
pub fn objects(workspace: &Workspace) -> Vec<ObjectRef> {
    let namespace = &workspace.namespace;
    vec![
        ObjectRef::namespaced("apps/v1", "Deployment", namespace, &workspace.id),
        ObjectRef::namespaced("v1", "Service", namespace, &workspace.id),
        ObjectRef::namespaced("v1", "PersistentVolumeClaim", namespace, &render::volume_name(workspace)),
    ]
}

/// Deletes the workspace's objects: its pods go with its Deployment, and its
/// home volume with it.
pub fn remove(workspace: &Workspace) -> Result<()> {
    for object in objects(workspace) {
        kube::delete(&object)?;
    }
    Ok(())
}

/// The names of the workspace's pods now.
pub fn pods(workspace: &Workspace) -> Result<Vec<String>> {
    let selection = kube::Selection::new(
        "v1",
        "Pod",
        Some(&workspace.namespace),
        &format!("{}={}", render::WORKSPACE_LABEL, workspace.id),
    );
    let (pods, _) = kube::list::<serde_json::Value>(&selection, None, 10)?;
    Ok(pods.iter().filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_owned)).collect())
}
