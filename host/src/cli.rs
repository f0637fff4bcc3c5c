//! The command line: `devpulse serve` and `devpulse plugin inspect`.

use crate::config::{ConfigError, FileConfig, Settings};
use crate::runtime::Runtime;
use crate::runtime::plugin::Origin;
use crate::telemetry::Telemetry;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// DevPulse: developer-productivity metrics from sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "devpulse", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server with the bundled plugins and every `*.wasm` in the plugins folder.
    Serve(ServeArgs),
    /// Work with plugin files.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Print a plugin's manifest, WIT version, capabilities and routes, or why it is invalid.
    Inspect {
        /// The component to inspect.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DEVPULSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the SQLite database and the compiled-plugin cache live.
    #[arg(long, env = "DEVPULSE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Folder watched for `*.wasm` plugins; files added, replaced or removed take effect without a restart.
    #[arg(long, env = "DEVPULSE_PLUGINS_DIR", default_value = "./plugins-dir")]
    pub plugins_dir: PathBuf,
    /// Database URL, `postgres://...` or `sqlite://...` [default: SQLite in the data dir]
    #[arg(long, env = "DEVPULSE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Optional Redis URL (`redis://127.0.0.1:6379`) for multi-replica deployments.
    #[arg(long, env = "DEVPULSE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// TOML config file: per-plugin limits, capability grants and settings.
    #[arg(long, env = "DEVPULSE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ServeArgs {
    /// Resolves the options into settings, reading the config file if named.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Ok(Settings {
            listen: self.listen,
            database_url: self
                .database_url
                .clone()
                .unwrap_or_else(|| crate::store::default_url(&self.data_dir)),
            data_dir: self.data_dir.clone(),
            plugins_dir: self.plugins_dir.clone(),
            redis_url: self.redis_url.clone(),
            file,
        })
    }
}

/// Loads a plugin file in a throwaway runtime and describes it.
pub async fn inspect(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let bytes: Arc<[u8]> = std::fs::read(file)?.into();
    let db = crate::store::connect("sqlite::memory:").await?;
    let cache_dir = std::env::temp_dir().join("devpulse-inspect");
    let runtime = Runtime::new(&cache_dir, db, FileConfig::default(), Telemetry::new())?;
    let plugin = runtime
        .prepare(bytes, Origin::File(file.to_owned()))
        .await?;
    Ok(serde_json::json!({
        "file": file.display().to_string(),
        "sha256": plugin.sha256,
        "wit_version": plugin.wit_version,
        "manifest": plugin.manifest,
    }))
}
