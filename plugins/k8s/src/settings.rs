//! The operator's settings (`[plugins.k8s.settings]` in the config file),
//! each with the default `devpulse.example.toml` shows.

use devpulse_sdk::prelude::*;
use std::collections::BTreeMap;

/// A size of workspace: what its IDE container gets, and what an hour of it costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tier {
    /// CPU as Kubernetes writes it (`500m`, `2`).
    pub cpu: String,
    /// Memory as Kubernetes writes it (`1Gi`).
    pub memory: String,
    /// US dollars per running hour.
    pub usd_per_hour: f64,
}

/// Where workspace namespaces are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespacePer {
    /// One namespace per person.
    User,
    /// One per team; DevPulse has no teams yet, so the org is the team.
    Team,
}

pub struct Settings {
    pub namespace_prefix: String,
    pub namespace_per: NamespacePer,
    pub image: String,
    pub git_image: String,
    /// `{repo}` is replaced by `owner/name`.
    pub git_url: String,
    /// `{workspace}` and `{namespace}` are replaced.
    pub url: String,
    pub volume_size: String,
    /// Empty: the cluster's default class.
    pub storage_class: String,
    pub ingress_namespace: String,
    pub tiers: BTreeMap<String, Tier>,
    pub default_tier: String,
    pub idle_timeout_minutes: f64,
    pub min_idle_timeout_minutes: f64,
    pub ttl_hours: f64,
    pub max_ttl_hours: f64,
    pub keep_alive_max_minutes: f64,
    pub dormant_after_hours: f64,
    pub delete_dormant_after_hours: f64,
    pub max_running_per_user: u32,
    pub monthly_budget_usd: f64,
    /// Hard limits of each workspace namespace's ResourceQuota.
    pub namespace_cpu: String,
    pub namespace_memory: String,
    pub namespace_storage: String,
}

/// micro, small and large, as the design names them.
pub fn default_tiers() -> BTreeMap<String, Tier> {
    let tier = |cpu: &str, memory: &str, usd_per_hour| Tier { cpu: cpu.into(), memory: memory.into(), usd_per_hour };
    BTreeMap::from([
        ("micro".to_owned(), tier("500m", "1Gi", 0.05)),
        ("small".to_owned(), tier("2", "4Gi", 0.20)),
        ("large".to_owned(), tier("8", "16Gi", 0.80)),
    ])
}

impl Settings {
    pub fn load() -> Result<Self> {
        let text = |key: &str, default: &str| -> Result<String> {
            Ok(config::get::<String>(key)?.unwrap_or_else(|| default.to_owned()))
        };
        let number = |key: &str, default: f64| -> Result<f64> {
            let value = config::get::<f64>(key)?.unwrap_or(default);
            if value.is_finite() && value >= 0.0 {
                Ok(value)
            } else {
                Err(Error::internal(format!("setting `{key}` must be a number of at least 0")))
            }
        };
        let tiers = config::get::<BTreeMap<String, Tier>>("tiers")?.unwrap_or_else(default_tiers);
        let default_tier = text("default_tier", "micro")?;
        if !tiers.contains_key(&default_tier) {
            return Err(Error::internal(format!("setting `default_tier`: no tier is named {default_tier:?}")));
        }
        Ok(Settings {
            namespace_prefix: text("namespace_prefix", "devpulse-ws-")?,
            namespace_per: config::get("namespace_per")?.unwrap_or(NamespacePer::User),
            image: text("image", "codercom/code-server:4.96.4")?,
            git_image: text("git_image", "alpine/git:2.47.2")?,
            git_url: text("git_url", "https://github.com/{repo}.git")?,
            url: text("url", "https://{workspace}.{namespace}.workspaces.example.com")?,
            volume_size: text("volume_size", "10Gi")?,
            storage_class: text("storage_class", "")?,
            ingress_namespace: text("ingress_namespace", "ingress-nginx")?,
            tiers,
            default_tier,
            idle_timeout_minutes: number("idle_timeout_minutes", 30.0)?,
            min_idle_timeout_minutes: number("min_idle_timeout_minutes", 5.0)?,
            ttl_hours: number("ttl_hours", 168.0)?,
            max_ttl_hours: number("max_ttl_hours", 720.0)?,
            keep_alive_max_minutes: number("keep_alive_max_minutes", 240.0)?,
            dormant_after_hours: number("dormant_after_hours", 72.0)?,
            delete_dormant_after_hours: number("delete_dormant_after_hours", 336.0)?,
            max_running_per_user: config::get("max_running_per_user")?.unwrap_or(2),
            monthly_budget_usd: number("monthly_budget_usd", 1000.0)?,
            namespace_cpu: text("namespace_cpu", "16")?,
            namespace_memory: text("namespace_memory", "64Gi")?,
            namespace_storage: text("namespace_storage", "200Gi")?,
        })
    }

    pub fn tier(&self, name: &str) -> Result<&Tier> {
        self.tiers.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.tiers.keys().map(String::as_str).collect();
            Error::conflict(format!("no tier is named {name:?}; the tiers are {}", known.join(", ")))
        })
    }
}

/// Minutes or hours as milliseconds.
pub fn minutes(value: f64) -> Timestamp {
    (value * 60_000.0) as Timestamp
}

pub fn hours(value: f64) -> Timestamp {
    (value * 3_600_000.0) as Timestamp
}
