//! `devpulse plugin inspect`: loads a file exactly as the server would, in a
//! throwaway runtime, and reports what it declares or why it cannot load.

use crate::config::FileConfig;
use crate::runtime::Runtime;
use crate::runtime::manifest::PluginManifest;
use crate::runtime::plugin::Origin;
use crate::telemetry::Telemetry;
use serde::Serialize;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What the host sees in a plugin file.
#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub bytes: usize,
    pub sha256: String,
    pub wit_version: String,
    pub manifest: PluginManifest,
}

/// Loads `file` (compile, link, `describe`, manifest checks) and describes it.
pub async fn inspect(file: &Path) -> anyhow::Result<Report> {
    let bytes: Arc<[u8]> = std::fs::read(file)?.into();
    let db = crate::store::connect("sqlite::memory:").await?;
    let cache_dir = std::env::temp_dir().join("devpulse-inspect");
    let runtime = Runtime::new(&cache_dir, db, FileConfig::default(), Telemetry::new())?;
    let prepared = runtime.prepare(bytes.clone(), Origin::File(file.to_owned())).await;
    // Closed before returning: a pool left to the runtime's shutdown can keep
    // its maintenance task spinning, and the process never exits.
    runtime.db().clone().close().await?;
    let plugin = prepared?;
    Ok(Report {
        file: file.display().to_string(),
        bytes: bytes.len(),
        sha256: plugin.sha256.clone(),
        wit_version: plugin.wit_version.clone(),
        manifest: plugin.manifest.clone(),
    })
}

/// The report for people: one line per declaration.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(f, "{} {}: {}", m.name, m.version, m.description)?;
        writeln!(f, "file          {} ({} KiB, sha256 {})", self.file, self.bytes.div_ceil(1024), self.sha256)?;
        writeln!(f, "WIT           devpulse:plugin@{}", self.wit_version)?;
        writeln!(f, "capabilities  {}", list(&m.capabilities))?;
        writeln!(f, "subscriptions {}", list(&m.subscriptions))?;
        let schedules: Vec<String> =
            m.schedules.iter().map(|s| format!("{} every {} s", s.name, s.interval_seconds)).collect();
        writeln!(f, "schedules     {}", list(&schedules))?;
        let sources: Vec<String> =
            m.webhook_sources.iter().map(|s| format!("{} ({})", s.name, s.scheme.name())).collect();
        writeln!(f, "webhooks      {}", list(&sources))?;
        let watches: Vec<String> = m
            .watches
            .iter()
            .map(|w| {
                let labels = if w.labels.is_empty() { String::new() } else { format!(" [{}]", w.labels) };
                format!("{} ({} {}{labels})", w.name, w.api_version, w.kind)
            })
            .collect();
        writeln!(f, "watches       {}", list(&watches))?;
        writeln!(f, "routes        {}", if m.routes.is_empty() { "none" } else { "" })?;
        for route in &m.routes {
            let path = format!("/api/v1/{}{}", m.name, if route.path == "/" { "" } else { &route.path });
            writeln!(
                f,
                "  {:<7} {:<40} {:<10} {}",
                route.method.as_str(),
                path,
                route.min_role.as_str(),
                route.summary
            )?;
        }
        Ok(())
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}
