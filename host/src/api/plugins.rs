//! `/api/v1/plugins`: what is loaded, what failed and why, and the operator's
//! switch to disable or enable a plugin.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use super::params::Cursor;
use crate::audit::{self, Entry};
use crate::auth::Role;
use crate::auth::signature::Scheme;
use crate::runtime::manifest::{Method, ParamLocation, RouteDoc, ScheduleDoc, WatchDoc, WebhookSourceDoc};
use crate::runtime::plugin::LoadedPlugin;
use crate::runtime::registry::Failure;
use crate::runtime::stats::ExportStats;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi, Tags};
use std::collections::BTreeMap;

#[derive(Tags)]
enum PluginTag {
    /// Loaded plugins, their status, routes and call statistics.
    Plugins,
}

/// Whether a plugin serves calls.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum PluginStatus {
    Running,
    Disabled,
    Failed,
}

/// A parameter of a plugin route.
#[derive(Object, Clone)]
pub struct ParamView {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
    pub description: String,
    /// Its JSON Schema.
    pub schema: serde_json::Value,
}

/// A response a plugin route declares.
#[derive(Object, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct ResponseView {
    pub status: u16,
    pub description: String,
    /// Its JSON Schema; absent when the response has no body.
    pub schema: Option<serde_json::Value>,
}

/// A REST operation a plugin serves under `/api/v1/{plugin}`.
#[derive(Object, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct RouteView {
    pub method: Method,
    /// Template relative to `/api/v1/{plugin}`.
    pub path: String,
    pub summary: String,
    pub description: String,
    pub params: Vec<ParamView>,
    /// The JSON Schema of the request body; absent when it takes none.
    pub body_schema: Option<serde_json::Value>,
    pub responses: Vec<ResponseView>,
    /// The lowest role that may call it.
    pub min_role: Role,
}

impl From<&RouteDoc> for RouteView {
    fn from(route: &RouteDoc) -> Self {
        RouteView {
            method: route.method,
            path: route.path.clone(),
            summary: route.summary.clone(),
            description: route.description.clone(),
            params: route
                .params
                .iter()
                .map(|param| ParamView {
                    name: param.name.clone(),
                    location: param.location,
                    required: param.required,
                    description: param.description.clone(),
                    schema: param.schema.clone(),
                })
                .collect(),
            body_schema: route.body_schema.clone(),
            responses: route
                .responses
                .iter()
                .map(|response| ResponseView {
                    status: response.status,
                    description: response.description.clone(),
                    schema: response.schema.clone(),
                })
                .collect(),
            min_role: route.min_role,
        }
    }
}

/// A schedule a plugin runs once per interval per org.
#[derive(Object, Clone)]
pub struct ScheduleView {
    pub name: String,
    pub interval_seconds: u32,
}

impl From<&ScheduleDoc> for ScheduleView {
    fn from(schedule: &ScheduleDoc) -> Self {
        ScheduleView { name: schedule.name.clone(), interval_seconds: schedule.interval_seconds }
    }
}

/// Kubernetes objects a plugin follows: each change becomes an event of `event_kind`.
#[derive(Object, Clone)]
pub struct WatchView {
    pub name: String,
    pub api_version: String,
    pub kind: String,
    /// Label selector narrowing the objects the plugin made; empty: all of them.
    pub labels: String,
    /// `kube.{plugin}.{name}`.
    pub event_kind: String,
    /// True when the operator granted `kube` with this kind; otherwise the watch does not run.
    pub granted: bool,
}

impl WatchView {
    fn of(plugin: &LoadedPlugin, watch: &WatchDoc) -> Self {
        WatchView {
            name: watch.name.clone(),
            api_version: watch.api_version.clone(),
            kind: watch.kind.clone(),
            labels: watch.labels.clone(),
            event_kind: WatchDoc::event_kind(plugin.name(), &watch.name),
            granted: plugin.grants.allows("kube") && plugin.grants.kube.kinds.contains(&watch.kind),
        }
    }
}

/// A webhook sender a plugin understands.
#[derive(Object, Clone)]
pub struct WebhookSourceView {
    pub name: String,
    pub scheme: Scheme,
    /// The header naming the event kind.
    pub kind_header: String,
    /// The header carrying the sender's delivery id.
    pub delivery_header: String,
    /// The header carrying the signature.
    pub signature_header: String,
}

impl From<&WebhookSourceDoc> for WebhookSourceView {
    fn from(source: &WebhookSourceDoc) -> Self {
        WebhookSourceView {
            name: source.name.clone(),
            scheme: source.scheme,
            kind_header: source.kind_header.clone(),
            delivery_header: source.delivery_header.clone(),
            signature_header: source.signature_header.clone(),
        }
    }
}

/// The limits every call of the plugin runs under.
#[derive(Object, Clone, Copy)]
pub struct LimitsView {
    /// Wall-clock limit of one call, host calls included.
    pub deadline_ms: u64,
    /// Cap on linear memory during one call.
    pub memory_bytes: u64,
    /// Largest response body a route may answer with.
    pub response_bytes: u64,
}

/// A plugin, or a plugin file that failed to load.
#[derive(Object, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct PluginInfo {
    /// The plugin's name, or the file's stem when no manifest could be read.
    pub name: String,
    pub status: PluginStatus,
    /// Why it failed to load; for a running plugin, why its latest replacement was rejected.
    pub error: Option<String>,
    /// `bundled` or the file it came from.
    pub source: String,
    pub version: Option<String>,
    pub description: Option<String>,
    /// The WIT version of `devpulse:plugin` it was built against.
    pub wit_version: Option<String>,
    pub sha256: Option<String>,
    pub loaded_at: Option<chrono::DateTime<chrono::Utc>>,
    pub capabilities_requested: Vec<String>,
    pub capabilities_granted: Vec<String>,
    pub http_allowed_hosts: Vec<String>,
    /// Namespaces (names or `*` patterns) `kube` may touch, when granted.
    pub kube_namespaces: Vec<String>,
    /// Kinds `kube` may touch, when granted.
    pub kube_kinds: Vec<String>,
    pub limits: Option<LimitsView>,
    pub routes: Vec<RouteView>,
    pub subscriptions: Vec<String>,
    pub schedules: Vec<ScheduleView>,
    pub webhook_sources: Vec<WebhookSourceView>,
    /// Kubernetes watches (WIT 0.1.7); their event kinds are among `subscriptions`.
    pub watches: Vec<WatchView>,
    /// Calls per export (`on-request`, `on-event`, `on-tick`).
    pub stats: BTreeMap<String, ExportStats>,
    /// How the plugin keeps up with the log (`GET /api/v1/plugins/{name}` only,
    /// for a running plugin with subscriptions).
    pub fold: Option<FoldView>,
}

/// How a plugin keeps up with the event log.
#[derive(Object, Clone)]
#[oai(skip_serializing_if_is_none)]
pub struct FoldView {
    /// Events it handled per second over the last minute, on the replica that
    /// answered, across every org, rebuilds included.
    pub events_per_second: f64,
    /// Events of the caller's org it subscribes to and has not handled yet.
    pub behind: u64,
    /// When the oldest of them was received.
    pub oldest_pending_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Seconds since then: how far behind the log the plugin's figures are; 0 when caught up.
    pub lag_seconds: f64,
}

/// One page of plugins, sorted by name.
#[derive(Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PluginPage {
    pub items: Vec<PluginInfo>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn running(plugin: &LoadedPlugin, disabled: bool, failure: Option<&Failure>) -> PluginInfo {
    let manifest = &plugin.manifest;
    PluginInfo {
        name: manifest.name.clone(),
        status: if disabled { PluginStatus::Disabled } else { PluginStatus::Running },
        error: failure.map(|f| format!("replacement rejected, previous version kept: {}", f.reason)),
        source: plugin.origin.describe(),
        version: Some(manifest.version.clone()),
        description: Some(manifest.description.clone()),
        wit_version: Some(plugin.wit_version.clone()),
        sha256: Some(plugin.sha256.clone()),
        loaded_at: Some(plugin.loaded_at),
        capabilities_requested: manifest.capabilities.clone(),
        capabilities_granted: plugin.grants.granted.clone(),
        http_allowed_hosts: plugin.grants.http_hosts.clone(),
        kube_namespaces: plugin.grants.kube.namespaces.clone(),
        kube_kinds: plugin.grants.kube.kinds.clone(),
        limits: Some(LimitsView {
            deadline_ms: plugin.limits.deadline_ms,
            memory_bytes: plugin.limits.memory_bytes,
            response_bytes: plugin.limits.response_bytes as u64,
        }),
        routes: manifest.routes.iter().map(RouteView::from).collect(),
        subscriptions: manifest.subscriptions.clone(),
        schedules: manifest.schedules.iter().map(ScheduleView::from).collect(),
        webhook_sources: manifest.webhook_sources.iter().map(WebhookSourceView::from).collect(),
        watches: manifest.watches.iter().map(|watch| WatchView::of(plugin, watch)).collect(),
        stats: plugin.stats.snapshot(),
        fold: None,
    }
}

fn failed(failure: &Failure) -> PluginInfo {
    let stem = std::path::Path::new(&failure.source)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| failure.source.clone());
    PluginInfo {
        name: failure.plugin.clone().unwrap_or(stem),
        status: PluginStatus::Failed,
        error: Some(failure.reason.clone()),
        source: failure.source.clone(),
        version: None,
        description: None,
        wit_version: None,
        sha256: None,
        loaded_at: None,
        capabilities_requested: Vec::new(),
        capabilities_granted: Vec::new(),
        http_allowed_hosts: Vec::new(),
        kube_namespaces: Vec::new(),
        kube_kinds: Vec::new(),
        limits: None,
        routes: Vec::new(),
        subscriptions: Vec::new(),
        schedules: Vec::new(),
        webhook_sources: Vec::new(),
        watches: Vec::new(),
        stats: BTreeMap::new(),
        fold: None,
    }
}

impl AppState {
    /// Every plugin and failed file, keyed for sorting and paging by name then source.
    pub fn plugin_infos(&self) -> Vec<(String, PluginInfo)> {
        let registry = self.runtime.registry();
        let failures = registry.failures();
        let plugins = registry.all();
        let mut infos: Vec<(String, PluginInfo)> = Vec::new();
        for plugin in &plugins {
            let source = plugin.origin.describe();
            let failure = failures.iter().find(|f| f.source == source);
            let info = running(plugin, registry.is_disabled(plugin.name()), failure);
            infos.push((format!("{}\n{}", info.name, source), info));
        }
        for failure in &failures {
            if plugins.iter().any(|p| p.origin.describe() == failure.source) {
                continue;
            }
            let info = failed(failure);
            infos.push((format!("{}\n{}", info.name, failure.source), info));
        }
        infos.sort_by(|a, b| a.0.cmp(&b.0));
        infos
    }

    fn plugin_info(&self, name: &str) -> Option<PluginInfo> {
        let infos = self.plugin_infos();
        let mut matching = infos.into_iter().map(|(_, info)| info).filter(|info| info.name == name);
        let first = matching.next()?;
        // Prefer the running version over a file that failed under the same name.
        Some(if first.status == PluginStatus::Failed { matching.next().unwrap_or(first) } else { first })
    }
}

pub struct PluginsApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "PluginTag::Plugins")]
impl PluginsApi {
    /// Lists loaded plugins and plugin files that failed to load, with the reason.
    #[oai(path = "/plugins", method = "get", operation_id = "listPlugins")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// At most this many items (1 to 200).
        #[oai(default = "default_limit", validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<u32>,
        /// From `next_cursor` of the previous page.
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<PluginPage>, ApiError> {
        self.state.principal(&auth).await?;
        let after = cursor.0.map(|cursor| cursor.0);
        let (items, next_cursor) = pagination::page(self.state.plugin_infos(), after.as_deref(), limit.0);
        Ok(Json(PluginPage { items, next_cursor }))
    }

    /// One plugin: status, WIT version, sha256, capabilities, routes, call stats,
    /// and how it keeps up with the caller's org's log (fold rate and lag).
    #[oai(path = "/plugins/:name", method = "get", operation_id = "getPlugin")]
    async fn get(&self, auth: BearerAuth, name: Path<String>) -> Result<Json<Box<PluginInfo>>, ApiError> {
        let principal = self.state.principal(&auth).await?;
        let mut info =
            self.state.plugin_info(&name).ok_or_else(|| ApiError::not_found(format!("no plugin named {}", name.0)))?;
        if let Some(plugin) = self.state.runtime.registry().get(&name.0)
            && !plugin.manifest.subscriptions.is_empty()
        {
            info.fold = Some(self.fold(&plugin, &principal.org_id).await?);
        }
        Ok(Json(Box::new(info)))
    }

    /// Stops serving a plugin's routes until it is enabled again; survives restarts
    /// (operator tokens only: plugins serve every org).
    #[oai(path = "/plugins/:name/disable", method = "post", operation_id = "disablePlugin")]
    async fn disable(&self, auth: BearerAuth, name: Path<String>) -> Result<Json<Box<PluginInfo>>, ApiError> {
        self.switch(&auth, &name, false).await
    }

    /// Serves a disabled plugin again (operator tokens only).
    #[oai(path = "/plugins/:name/enable", method = "post", operation_id = "enablePlugin")]
    async fn enable(&self, auth: BearerAuth, name: Path<String>) -> Result<Json<Box<PluginInfo>>, ApiError> {
        self.switch(&auth, &name, true).await
    }
}

impl PluginsApi {
    /// Where `plugin` stands with the log of `org`, in its live generation.
    async fn fold(&self, plugin: &LoadedPlugin, org: &str) -> Result<FoldView, ApiError> {
        let db = self.state.runtime.reader();
        let generation = crate::bus::generations::live(db, plugin.name(), org).await?;
        let cursor = crate::bus::delivery::cursors::find(db, plugin.name(), org, generation).await?;
        let position = cursor.map_or(0, |cursor| cursor.position);
        let (behind, oldest) = crate::bus::log::backlog(db, org, position, &plugin.manifest.subscriptions).await?;
        let lag_ms = oldest.map_or(0, |oldest| (crate::store::now_ms() - oldest).max(0));
        Ok(FoldView {
            events_per_second: plugin.stats.fold_rate(),
            behind,
            oldest_pending_at: oldest.and_then(chrono::DateTime::from_timestamp_millis),
            lag_seconds: lag_ms as f64 / 1000.0,
        })
    }

    async fn switch(&self, auth: &BearerAuth, name: &str, enabled: bool) -> Result<Json<Box<PluginInfo>>, ApiError> {
        let principal = self.state.principal(auth).await?;
        principal.require_operator()?;
        if self.state.runtime.registry().get(name).is_none() {
            return Err(ApiError::not_found(format!("no loaded plugin named {name}")));
        }
        self.state.runtime.set_enabled(name, enabled).await.map_err(ApiError::unavailable)?;
        let action = if enabled { "plugin.enable" } else { "plugin.disable" };
        audit::record(self.state.runtime.db(), Entry::by(&principal, action, &format!("plugin/{name}"))).await?;
        match self.state.plugin_info(name) {
            Some(info) => Ok(Json(Box::new(info))),
            None => Err(ApiError::not_found(format!("no loaded plugin named {name}"))),
        }
    }
}

fn default_limit() -> u32 {
    pagination::DEFAULT_LIMIT
}
