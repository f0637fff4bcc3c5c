//! The Kubernetes cluster that plugins granted `kube` reach: one client for the
//! process, built at first use from `[kube]` (a kubeconfig file or the pod's
//! service account), and each kind's URL and scope learned once from the
//! cluster's discovery documents. What a plugin may touch is decided by the
//! capability (`capabilities::kube`); this module only talks to the cluster.

use crate::config::KubeConfig;
use ::kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use ::kube::core::{ApiResource, GroupVersionKind};
use ::kube::discovery::Scope;
use ::kube::runtime::{WatchStreamExt, watcher};
use futures::Stream;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::OnceCell;

/// Labels the host puts on every object a plugin applies, so it can tell whose it is.
pub const ORG_LABEL: &str = "devpulse.dev/org";
pub const PLUGIN_LABEL: &str = "devpulse.dev/plugin";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Why a call to the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no Kubernetes cluster is configured: set [kube] kubeconfig or in_cluster in the config file")]
    NotConfigured,
    #[error("the cluster's configuration cannot be used: {0}")]
    Config(String),
    #[error("the cluster does not serve {0}")]
    UnknownKind(String),
    /// The API server refused the request, with its status code and words.
    #[error("{message}")]
    Refused { code: u16, reason: String, message: String },
    #[error("the cluster cannot be reached: {0}")]
    Unreachable(String),
    #[error("the cluster answered with an object that cannot be read: {0}")]
    Malformed(String),
}

impl From<::kube::Error> for ClusterError {
    fn from(error: ::kube::Error) -> Self {
        match error {
            ::kube::Error::Api(status) => ClusterError::Refused {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => ClusterError::Unreachable(other.to_string()),
        }
    }
}

/// A kind as the cluster serves it.
#[derive(Clone)]
struct Served {
    resource: ApiResource,
    namespaced: bool,
}

/// One object, as `apiVersion`, `kind`, namespace (none when cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

pub struct Cluster {
    config: KubeConfig,
    client: OnceCell<::kube::Client>,
    kinds: Mutex<HashMap<(String, String), Served>>,
}

fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    match api_version.split_once('/') {
        Some((group, version)) => GroupVersionKind::gvk(group, version, kind),
        None => GroupVersionKind::gvk("", api_version, kind),
    }
}

fn to_value(object: DynamicObject) -> Result<Value, ClusterError> {
    serde_json::to_value(object).map_err(|err| ClusterError::Malformed(err.to_string()))
}

impl Cluster {
    /// The cluster `[kube]` names; `None` when it names none.
    pub fn configured(config: &KubeConfig) -> Option<Self> {
        let named = !config.kubeconfig.as_os_str().is_empty() || config.in_cluster;
        named.then(|| Cluster { config: config.clone(), client: OnceCell::new(), kinds: Mutex::default() })
    }

    async fn client(&self) -> Result<::kube::Client, ClusterError> {
        let client = self
            .client
            .get_or_try_init(|| async {
                let config = if self.config.in_cluster {
                    ::kube::Config::incluster().map_err(|err| ClusterError::Config(err.to_string()))?
                } else {
                    let file = ::kube::config::Kubeconfig::read_from(&self.config.kubeconfig)
                        .map_err(|err| ClusterError::Config(format!("{}: {err}", self.config.kubeconfig.display())))?;
                    let context = (!self.config.context.is_empty()).then(|| self.config.context.clone());
                    let options = ::kube::config::KubeConfigOptions { context, ..Default::default() };
                    ::kube::Config::from_custom_kubeconfig(file, &options)
                        .await
                        .map_err(|err| ClusterError::Config(err.to_string()))?
                };
                ::kube::Client::try_from(config).map_err(|err| ClusterError::Config(err.to_string()))
            })
            .await?;
        Ok(client.clone())
    }

    /// The kind's URL and scope, from discovery the first time it is used.
    async fn served(&self, api_version: &str, kind: &str) -> Result<Served, ClusterError> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(served) = self.kinds.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(served.clone());
        }
        let client = self.client().await?;
        let (resource, capabilities) =
            ::kube::discovery::pinned_kind(&client, &gvk(api_version, kind)).await.map_err(|err| match err {
                ::kube::Error::Discovery(_) => ClusterError::UnknownKind(format!("{kind} ({api_version})")),
                ::kube::Error::Api(status) if status.code == 404 => {
                    ClusterError::UnknownKind(format!("{kind} ({api_version})"))
                }
                other => ClusterError::from(other),
            })?;
        let served = Served { resource, namespaced: capabilities.scope == Scope::Namespaced };
        self.kinds.lock().unwrap_or_else(|p| p.into_inner()).insert(key, served.clone());
        Ok(served)
    }

    /// Whether the kind lives in namespaces.
    pub async fn is_namespaced(&self, api_version: &str, kind: &str) -> Result<bool, ClusterError> {
        Ok(self.served(api_version, kind).await?.namespaced)
    }

    async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, ClusterError> {
        let served = self.served(api_version, kind).await?;
        let client = self.client().await?;
        Ok(match (served.namespaced, namespace) {
            (true, Some(namespace)) => Api::namespaced_with(client, namespace, &served.resource),
            _ => Api::all_with(client, &served.resource),
        })
    }

    /// Server-side apply of `object` as `manager`.
    pub async fn apply(
        &self,
        target: &ObjectRef,
        object: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ClusterError> {
        let api = self.api(&target.api_version, &target.kind, target.namespace.as_deref()).await?;
        let params = if force { PatchParams::apply(manager).force() } else { PatchParams::apply(manager) };
        to_value(api.patch(&target.name, &params, &Patch::Apply(object)).await?)
    }

    pub async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let api = self.api(&target.api_version, &target.kind, target.namespace.as_deref()).await?;
        api.get_opt(&target.name).await?.map(to_value).transpose()
    }

    /// One page of objects and the continue token of the next.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        labels: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Value>, Option<String>), ClusterError> {
        let api = self.api(api_version, kind, namespace).await?;
        let mut params = ListParams::default().labels(labels).limit(limit);
        if let Some(cursor) = cursor {
            params = params.continue_token(cursor);
        }
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.filter(|token| !token.is_empty());
        let items = page.items.into_iter().map(to_value).collect::<Result<_, _>>()?;
        Ok((items, next))
    }

    /// Deletes the object (its dependents in the background); false when it was not there.
    pub async fn delete(&self, target: &ObjectRef) -> Result<bool, ClusterError> {
        let api = self.api(&target.api_version, &target.kind, target.namespace.as_deref()).await?;
        match api.delete(&target.name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(::kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// The last `tail_lines` lines of a pod's container, at most `max_bytes` of them.
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        tail_lines: u32,
        max_bytes: i64,
    ) -> Result<String, ClusterError> {
        let params = ::kube::api::LogParams {
            container: container.map(str::to_owned),
            tail_lines: Some(i64::from(tail_lines)),
            limit_bytes: Some(max_bytes),
            ..Default::default()
        };
        let request = ::kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
            .logs(pod, &params)
            .map_err(|err| ClusterError::Malformed(err.to_string()))?;
        Ok(self.client().await?.request_text(request).await?)
    }

    /// Every change to the kind's objects that match `labels`, in every
    /// namespace: a kube-rs watcher, which lists first, then watches, and lists
    /// again after a `410 Gone` or a broken connection (waiting longer after
    /// each failure in a row; errors are passed on and the stream goes on).
    pub async fn watch(
        &self,
        api_version: &str,
        kind: &str,
        labels: &str,
    ) -> Result<impl Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Send + use<>, ClusterError>
    {
        let served = self.served(api_version, kind).await?;
        let api: Api<DynamicObject> = Api::all_with(self.client().await?, &served.resource);
        Ok(watcher(api, watcher::Config::default().labels(labels)).default_backoff())
    }
}
