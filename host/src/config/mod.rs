//! Operator configuration: command-line options (each also a `DEVPULSE_*`
//! variable) and the TOML file they may name.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings for one plugin, `[plugins.NAME]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginConfig {
    /// Wall-clock limit of one call, host calls included.
    pub deadline_ms: u64,
    /// Cap on the plugin's linear memory during one call.
    pub memory_mib: u64,
    /// Capabilities the operator grants, if the plugin asks for them (`http`).
    pub grants: Vec<String>,
    /// Hosts `http` may reach: exact names or `*.example.com`.
    pub http_allow: Vec<String>,
    /// Free-form settings the plugin reads through the `config` import.
    pub settings: toml::Table,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            deadline_ms: 2_000,
            memory_mib: 64,
            grants: Vec::new(),
            http_allow: Vec::new(),
            settings: toml::Table::new(),
        }
    }
}

/// The config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Longest chain of events caused by events.
    pub max_event_depth: Option<i32>,
    pub plugins: BTreeMap<String, PluginConfig>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is invalid: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("plugin {plugin}: memory_mib must be between 1 and {max}")]
    Memory { plugin: String, max: usize },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The settings for `plugin`, or the defaults.
    pub fn plugin(&self, plugin: &str) -> PluginConfig {
        self.plugins.get(plugin).cloned().unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let max = crate::runtime::engine::MAX_MEMORY_BYTES >> 20;
        for (plugin, config) in &self.plugins {
            if config.memory_mib == 0 || config.memory_mib as usize > max {
                return Err(ConfigError::Memory { plugin: plugin.clone(), max });
            }
        }
        Ok(())
    }
}

/// Everything `devpulse serve` needs, resolved from options, environment and file.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub plugins_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub file: FileConfig,
}

/// Converts TOML settings to the JSON the `config` import hands out.
pub fn settings_json(table: &toml::Table) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(table) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}
