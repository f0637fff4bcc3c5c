//! `kube` (WIT 0.1.6; `logs` since 0.1.7): Kubernetes objects in the namespaces and kinds the
//! operator granted the plugin. Every object a plugin applies is labelled with
//! the plugin and the caller's org; a plugin sees, changes and deletes only
//! its org's objects, so two orgs sharing a cluster never touch each other's.
//! Calls reach the cluster at once (they are not staged with the call's
//! writes) and are idempotent: server-side apply, never create. While a
//! rebuild replays events, `apply` and `delete` leave the cluster alone (they
//! were done when the events were first handled) and answer as it stands.

use super::deny;
use crate::capabilities::state::CallState;
use crate::config::KubeGrant;
use crate::kube::{Cluster, ClusterError, MANAGED_BY_LABEL, ORG_LABEL, ObjectRef, PLUGIN_LABEL};
use crate::wit::PluginError;
use crate::wit::devpulse::plugin::kube::{self as wit, Host};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Most objects one `list` returns.
const MAX_PAGE: u32 = 500;

/// Most lines one `logs` returns.
const MAX_LOG_LINES: u32 = 10_000;

/// Most bytes of log one `logs` returns.
const MAX_LOG_BYTES: i64 = 1 << 20;

/// True when `name` matches `pattern`, where `*` stands for any run of characters.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// True when a granted pattern covers the namespace `name`.
fn namespace_granted(grant: &KubeGrant, name: &str) -> bool {
    grant.namespaces.iter().any(|pattern| pattern_matches(pattern, name))
}

impl From<ClusterError> for PluginError {
    fn from(error: ClusterError) -> Self {
        let text = error.to_string();
        match error {
            ClusterError::UnknownKind(_) => PluginError::InvalidInput(text),
            ClusterError::Refused { code: 409, .. } => PluginError::Conflict(text),
            ClusterError::Refused { code: 400 | 422, .. } => PluginError::InvalidInput(text),
            ClusterError::Refused { code: 401 | 403, .. } => {
                PluginError::Denied(format!("the cluster refused: {text}"))
            }
            ClusterError::Refused { code: 404, .. } => PluginError::NotFound(text),
            ClusterError::Malformed(_) => PluginError::Internal(text),
            ClusterError::NotConfigured
            | ClusterError::Config(_)
            | ClusterError::Refused { .. }
            | ClusterError::Unreachable(_) => PluginError::Unavailable(text),
        }
    }
}

/// Labels `metadata` (an object's, or a pod template's) with whose it is.
fn stamp(metadata: &mut Value, org: &str, plugin: &str) {
    let labels = &mut metadata["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[ORG_LABEL] = json!(org);
    labels[PLUGIN_LABEL] = json!(plugin);
    labels[MANAGED_BY_LABEL] = json!("devpulse");
}

fn is_orgs(object: &Value, org: &str) -> bool {
    object["metadata"]["labels"][ORG_LABEL] == org
}

impl CallState {
    /// The cluster and the caller's org, when the plugin may use `kube` at all.
    fn kube_access(&self) -> Result<(Arc<Cluster>, String), PluginError> {
        if !self.grants.allows("kube") {
            return Err(deny(self, "kube", "the kube capability is not granted to this plugin".into()));
        }
        let Some(scope) = &self.scope else {
            return Err(PluginError::Denied("kube is not available while describing the plugin".into()));
        };
        let cluster = self.services.cluster.clone().ok_or_else(|| PluginError::from(ClusterError::NotConfigured))?;
        Ok((cluster, scope.org.clone()))
    }

    /// Runs a cluster call within what is left of the call's deadline.
    async fn before_deadline<T>(
        &mut self,
        work: impl Future<Output = Result<T, ClusterError>>,
    ) -> Result<T, PluginError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, work).await {
            Ok(result) => result.map_err(PluginError::from),
            Err(_) => Err(PluginError::Unavailable("the call's deadline passed while waiting for the cluster".into())),
        }
    }

    /// Refuses a kind or namespace outside the grant. A cluster-scoped object
    /// may only be a Namespace, checked by its own name.
    async fn check_target(
        &mut self,
        cluster: &Cluster,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), PluginError> {
        let grant = self.grants.clone();
        let grant = &grant.kube;
        if !grant.kinds.iter().any(|granted| granted == kind) {
            return Err(deny(self, "kube", format!("kind {kind} is not among the kinds granted to this plugin")));
        }
        let namespaced = self.before_deadline(cluster.is_namespaced(api_version, kind)).await?;
        let checked = match (namespaced, namespace) {
            (true, Some(namespace)) => namespace,
            (true, None) => return Err(PluginError::InvalidInput(format!("{kind} lives in a namespace: name one"))),
            (false, Some(_)) => {
                return Err(PluginError::InvalidInput(format!("{kind} is cluster-scoped: it has no namespace")));
            }
            (false, None) if kind != "Namespace" => {
                return Err(deny(
                    self,
                    "kube",
                    format!("{kind} is cluster-scoped; the only cluster-scoped kind a plugin may touch is Namespace"),
                ));
            }
            (false, None) => match name {
                Some(name) => name,
                None => return Ok(()),
            },
        };
        if !namespace_granted(grant, checked) {
            return Err(deny(
                self,
                "kube",
                format!("namespace {checked} is outside the namespaces granted to this plugin"),
            ));
        }
        Ok(())
    }

    async fn apply_object(&mut self, text: String, force: bool) -> Result<String, PluginError> {
        let (cluster, org) = self.kube_access()?;
        let mut object: Value = serde_json::from_str(&text)
            .map_err(|err| PluginError::InvalidInput(format!("the object is not JSON: {err}")))?;
        let field = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let (Some(api_version), Some(kind), Some(name)) =
            (field(&object["apiVersion"]), field(&object["kind"]), field(&object["metadata"]["name"]))
        else {
            return Err(PluginError::InvalidInput("an object needs apiVersion, kind and metadata.name".into()));
        };
        let target = ObjectRef { api_version, kind, namespace: field(&object["metadata"]["namespace"]), name };
        self.check_target(&cluster, &target.api_version, &target.kind, target.namespace.as_deref(), Some(&target.name))
            .await?;
        if let Some(live) = self.before_deadline(cluster.get(&target)).await?
            && !is_orgs(&live, &org)
        {
            return Err(deny(self, "kube", format!("{} {} exists and is not this org's", target.kind, target.name)));
        }
        // A namespace another org's plugin made is that org's: nothing goes into it. One an
        // operator made (no org label) is open to every org the grant lets in.
        if let Some(namespace) = &target.namespace {
            let reference = ObjectRef {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: namespace.clone(),
            };
            if let Some(live) = self.before_deadline(cluster.get(&reference)).await?
                && live["metadata"]["labels"][ORG_LABEL].as_str().is_some_and(|owner| owner != org)
            {
                return Err(deny(self, "kube", format!("namespace {namespace} is another org's")));
            }
        }
        stamp(&mut object["metadata"], &org, self.plugin());
        // Pods made from a template (a Deployment's) carry the same labels, so they can be told apart too.
        if object["spec"]["template"].is_object() {
            stamp(&mut object["spec"]["template"]["metadata"], &org, self.plugin());
        }
        if self.rebuilding() {
            // The apply happened when the event was first handled: the cluster's object stands for it.
            let live = self.before_deadline(cluster.get(&target)).await?;
            return Ok(live.unwrap_or(object).to_string());
        }
        let manager = format!("devpulse.{}", self.plugin());
        let stored = self.before_deadline(cluster.apply(&target, &object, &manager, force)).await?;
        Ok(stored.to_string())
    }

    /// True while a rebuild replays events: changes to the cluster were made
    /// when they were first handled, and are not made again.
    fn rebuilding(&self) -> bool {
        self.cause.as_ref().is_some_and(|cause| cause.rebuilding)
    }

    /// The object when it exists and is the caller's org's.
    async fn owned(
        &mut self,
        target: &wit::ObjectRef,
    ) -> Result<Option<(Arc<Cluster>, ObjectRef, Value)>, PluginError> {
        let (cluster, org) = self.kube_access()?;
        let target = ObjectRef {
            api_version: target.api_version.clone(),
            kind: target.kind.clone(),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
        };
        self.check_target(&cluster, &target.api_version, &target.kind, target.namespace.as_deref(), Some(&target.name))
            .await?;
        let found = self.before_deadline(cluster.get(&target)).await?;
        Ok(found.filter(|object| is_orgs(object, &org)).map(|object| (cluster, target, object)))
    }

    async fn list_objects(
        &mut self,
        selection: wit::Selection,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<wit::ObjectPage, PluginError> {
        let (cluster, org) = self.kube_access()?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(PluginError::InvalidInput(format!("limit is 1 to {MAX_PAGE}")));
        }
        let wit::Selection { api_version, kind, namespace, labels } = selection;
        self.check_target(&cluster, &api_version, &kind, namespace.as_deref(), None).await?;
        let own = format!("{ORG_LABEL}={org}");
        let labels = if labels.trim().is_empty() { own } else { format!("{labels},{own}") };
        let (items, cursor) = self
            .before_deadline(cluster.list(&api_version, &kind, namespace.as_deref(), &labels, cursor.as_deref(), limit))
            .await?;
        let grant = &self.grants.kube;
        // Namespaces are listed cluster-wide: keep those the grant covers.
        let items = items
            .into_iter()
            .filter(|item| {
                kind != "Namespace"
                    || item["metadata"]["name"].as_str().is_some_and(|name| namespace_granted(grant, name))
            })
            .map(|item| item.to_string())
            .collect();
        Ok(wit::ObjectPage { items, cursor })
    }
}

impl CallState {
    /// A pod's log, when the pod is the caller's org's (checked as `get` checks it).
    async fn pod_logs(
        &mut self,
        pod: &wit::ObjectRef,
        container: Option<&str>,
        tail_lines: u32,
    ) -> Result<String, PluginError> {
        if pod.kind != "Pod" || pod.api_version != "v1" {
            return Err(PluginError::InvalidInput("logs are a pod's (api-version v1, kind Pod)".into()));
        }
        if !(1..=MAX_LOG_LINES).contains(&tail_lines) {
            return Err(PluginError::InvalidInput(format!("tail-lines is 1 to {MAX_LOG_LINES}")));
        }
        let Some((cluster, target, _)) = self.owned(pod).await? else {
            return Err(PluginError::NotFound(format!("pod {} not found in this org", pod.name)));
        };
        let namespace = target.namespace.unwrap_or_default();
        self.before_deadline(cluster.logs(&namespace, &target.name, container, tail_lines, MAX_LOG_BYTES)).await
    }
}

/// The outcome label of a call: `ok`, or the error's kind.
fn outcome<T>(result: &Result<T, PluginError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(PluginError::NotFound(_)) => "not_found",
        Err(PluginError::InvalidInput(_)) => "invalid_input",
        Err(PluginError::Denied(_)) => "denied",
        Err(PluginError::Conflict(_)) => "conflict",
        Err(PluginError::Unavailable(_)) => "unavailable",
        Err(PluginError::Internal(_)) => "internal",
    }
}

impl CallState {
    /// Counts a finished call in `/metrics`.
    fn counted<T>(
        &self,
        verb: &str,
        started: Instant,
        result: Result<T, PluginError>,
    ) -> wasmtime::Result<Result<T, PluginError>> {
        self.services.telemetry.kube_call(self.plugin(), verb, outcome(&result), started.elapsed());
        Ok(result)
    }
}

impl Host for CallState {
    async fn apply(&mut self, object: String, force: bool) -> wasmtime::Result<Result<String, PluginError>> {
        let started = Instant::now();
        let result = self.apply_object(object, force).await;
        self.counted("apply", started, result)
    }

    async fn get(&mut self, target: wit::ObjectRef) -> wasmtime::Result<Result<Option<String>, PluginError>> {
        let started = Instant::now();
        let result = self.owned(&target).await.map(|found| found.map(|(_, _, object)| object.to_string()));
        self.counted("get", started, result)
    }

    async fn list(
        &mut self,
        selection: wit::Selection,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<wit::ObjectPage, PluginError>> {
        let started = Instant::now();
        let result = self.list_objects(selection, cursor, limit).await;
        self.counted("list", started, result)
    }

    async fn logs(
        &mut self,
        pod: wit::ObjectRef,
        container: Option<String>,
        tail_lines: u32,
    ) -> wasmtime::Result<Result<String, PluginError>> {
        let started = Instant::now();
        let result = self.pod_logs(&pod, container.as_deref(), tail_lines).await;
        self.counted("logs", started, result)
    }

    async fn delete(&mut self, target: wit::ObjectRef) -> wasmtime::Result<Result<bool, PluginError>> {
        let started = Instant::now();
        let result = match self.owned(&target).await {
            Ok(Some(_)) if self.rebuilding() => Ok(false),
            Ok(Some((cluster, target, _))) => self.before_deadline(cluster.delete(&target)).await,
            Ok(None) => Ok(false),
            Err(err) => Err(err),
        };
        self.counted("delete", started, result)
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn namespace_patterns_match_whole_names() {
        assert!(pattern_matches("ws-*", "ws-ada"));
        assert!(pattern_matches("ws-*", "ws-"));
        assert!(!pattern_matches("ws-*", "kube-system"));
        assert!(pattern_matches("devpulse", "devpulse"));
        assert!(!pattern_matches("devpulse", "devpulse-2"));
        assert!(pattern_matches("*-ws", "team-a-ws"));
        assert!(pattern_matches("org-*-ws-*", "org-1-ws-ada"));
        assert!(!pattern_matches("org-*-ws-*", "org-1-db"));
        assert!(pattern_matches("*", "anything"));
        assert!(!pattern_matches("a*a", "a"));
    }
}
