//! `/api/v1/plugins`: what is loaded, what failed and why, and the operator's
//! switch to disable or enable a plugin.

use super::AppState;
use super::error::{ApiError, BearerAuth};
use super::pagination;
use crate::audit::{self, Entry};
use crate::runtime::manifest::{RouteDoc, ScheduleDoc, WebhookSourceDoc};
use crate::runtime::plugin::{Limits, LoadedPlugin};
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

/// A plugin, or a plugin file that failed to load.
#[derive(Object, Clone)]
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
    pub limits: Option<Limits>,
    pub routes: Vec<RouteDoc>,
    pub subscriptions: Vec<String>,
    pub schedules: Vec<ScheduleDoc>,
    pub webhook_sources: Vec<WebhookSourceDoc>,
    /// Calls per export (`on-request`, `on-event`, `on-tick`).
    pub stats: BTreeMap<String, ExportStats>,
}

/// One page of plugins, sorted by name.
#[derive(Object)]
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
        limits: Some(plugin.limits),
        routes: manifest.routes.clone(),
        subscriptions: manifest.subscriptions.clone(),
        schedules: manifest.schedules.clone(),
        webhook_sources: manifest.webhook_sources.clone(),
        stats: plugin.stats.snapshot(),
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
        limits: None,
        routes: Vec::new(),
        subscriptions: Vec::new(),
        schedules: Vec::new(),
        webhook_sources: Vec::new(),
        stats: BTreeMap::new(),
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
        cursor: Query<Option<String>>,
    ) -> Result<Json<PluginPage>, ApiError> {
        self.state.principal(&auth).await?;
        let after = pagination::after(cursor.0.as_deref())?;
        let (items, next_cursor) = pagination::page(self.state.plugin_infos(), after.as_deref(), limit.0);
        Ok(Json(PluginPage { items, next_cursor }))
    }

    /// One plugin: status, WIT version, sha256, capabilities, routes, call stats.
    #[oai(path = "/plugins/:name", method = "get", operation_id = "getPlugin")]
    async fn get(&self, auth: BearerAuth, name: Path<String>) -> Result<Json<Box<PluginInfo>>, ApiError> {
        self.state.principal(&auth).await?;
        match self.state.plugin_info(&name) {
            Some(info) => Ok(Json(Box::new(info))),
            None => Err(ApiError::not_found(format!("no plugin named {}", name.0))),
        }
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
