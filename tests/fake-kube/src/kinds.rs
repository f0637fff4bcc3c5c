//! The kinds the fake serves and the discovery documents that announce them
//! (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`), which clients read
//! before anything else to map a kind to its URL.

use serde_json::{Value, json};

/// One served resource.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// Empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Whether a change to the object's `status` alone leaves `generation` as it is.
    pub fn has_status(&self) -> bool {
        !matches!(self.kind, "ConfigMap" | "Secret" | "LimitRange" | "Event")
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Kind {
    Kind { group, version, kind, plural, namespaced, short_names }
}

/// Every kind a workspace uses, plus the few a user lists beside them.
pub static KINDS: &[Kind] = &[
    kind("", "v1", "Namespace", "namespaces", false, &["ns"]),
    kind("", "v1", "Pod", "pods", true, &["po"]),
    kind("", "v1", "Service", "services", true, &["svc"]),
    kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"]),
    kind("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"]),
    kind("", "v1", "LimitRange", "limitranges", true, &["limits"]),
    kind("", "v1", "ConfigMap", "configmaps", true, &["cm"]),
    kind("", "v1", "Secret", "secrets", true, &[]),
    kind("", "v1", "Event", "events", true, &["ev"]),
    kind("apps", "v1", "Deployment", "deployments", true, &["deploy"]),
    kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"]),
    kind("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"]),
];

/// The kind served at `group/version/plural`.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The kind named by an object's `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.api_version() == api_version && k.kind == kind)
}

fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&str> = KINDS.iter().map(|k| k.group).filter(|g| !g.is_empty()).collect();
    groups.dedup();
    groups
}

/// `GET /api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `GET /apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|group| {
            let version = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
            json!({"name": group, "versions": [version.clone()], "preferredVersion": version})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`; `None` for a group version not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Kind> = KINDS.iter().filter(|k| k.group == group && k.version == version).collect();
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for k in &served {
        resources.push(json!({
            "name": k.plural,
            "singularName": k.kind.to_lowercase(),
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": ["delete", "get", "list", "patch", "watch"],
            "shortNames": k.short_names,
        }));
        if k.has_status() {
            resources.push(json!({
                "name": format!("{}/status", k.plural), "singularName": "", "namespaced": k.namespaced,
                "kind": k.kind, "verbs": ["get"],
            }));
        }
    }
    if group.is_empty() {
        resources.push(json!({
            "name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"],
        }));
    }
    let group_version = served[0].api_version();
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

/// `GET /version`: the release whose protocol the fake follows.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-devpulse-fake",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "none", "compiler": "none", "platform": "linux/amd64",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_is_announced_and_resolves_back_to_its_kinds() {
        let groups = group_list();
        let names: Vec<&str> =
            groups["groups"].as_array().into_iter().flatten().filter_map(|g| g["name"].as_str()).collect();
        assert_eq!(names, ["apps", "networking.k8s.io"]);
        for k in KINDS {
            let list = resource_list(k.group, k.version).expect("served");
            assert!(list["resources"].as_array().into_iter().flatten().any(|r| r["name"] == k.plural));
            assert_eq!(by_kind(&k.api_version(), k.kind), Some(k));
        }
        assert!(resource_list("batch", "v1").is_none());
    }
}
