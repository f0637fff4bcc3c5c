//! Operator configuration: command-line options (each also a `DEVPULSE_*`
//! variable) and the TOML file they may name.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The largest memory cap a plugin may be given; the engine reserves this much
/// address space per pooled instance.
pub const MAX_PLUGIN_MEMORY_MIB: usize = 1024;

/// Settings for one plugin, `[plugins.NAME]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PluginConfig {
    /// Wall-clock limit of one call, host calls included.
    pub deadline_ms: u64,
    /// Cap on the plugin's linear memory during one call.
    pub memory_mib: u64,
    /// Largest body a route of the plugin may answer with; larger ones become a 502 problem.
    pub max_response_bytes: usize,
    /// Capabilities the operator grants, if the plugin asks for them (`http`).
    pub grants: Vec<String>,
    /// Hosts `http` may reach: exact names or `*.example.com`.
    pub http_allow: Vec<String>,
    /// What `kube` may touch, `[plugins.NAME.kube]`.
    pub kube: KubeGrant,
    /// What the manifest may declare, `[plugins.NAME.manifest]`.
    pub manifest: ManifestLimits,
    /// Schedule intervals in seconds by schedule name, replacing what the
    /// manifest declares (`[plugins.NAME.schedules]`).
    pub schedules: BTreeMap<String, u32>,
    /// Free-form settings the plugin reads through the `config` import.
    pub settings: toml::Table,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            deadline_ms: 2_000,
            memory_mib: 64,
            max_response_bytes: 4 << 20,
            grants: Vec::new(),
            http_allow: Vec::new(),
            kube: KubeGrant::default(),
            manifest: ManifestLimits::default(),
            schedules: BTreeMap::new(),
            settings: toml::Table::new(),
        }
    }
}

/// The namespaces and kinds a plugin granted `kube` may touch; nothing when empty.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KubeGrant {
    /// Namespace names or patterns with `*` (`devpulse-ws-*`); a Namespace object itself is checked by its name.
    pub namespaces: Vec<String>,
    /// Kinds by name (`Deployment`, `Namespace`), whatever their API group.
    pub kinds: Vec<String>,
}

/// The Kubernetes cluster, `[kube]` in the config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KubeConfig {
    /// A kubeconfig file; empty: none.
    pub kubeconfig: PathBuf,
    /// The kubeconfig's context to use; empty: its current context.
    pub context: String,
    /// Use the service account of the pod DevPulse runs in instead of a kubeconfig.
    pub in_cluster: bool,
}

/// What a plugin's manifest may declare, so a plugin cannot make the host hold,
/// walk or document without bound.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestLimits {
    /// Most routes, subscriptions, schedules, webhook sources and Kubernetes watches.
    pub max_routes: usize,
    pub max_subscriptions: usize,
    pub max_schedules: usize,
    pub max_webhook_sources: usize,
    pub max_watches: usize,
    /// Largest JSON Schema (as text) and deepest nesting of one, per parameter, body or response.
    pub max_schema_bytes: usize,
    pub max_schema_depth: usize,
    /// Longest name (parameter, schedule, header, version) and text (summary, description).
    pub max_name_bytes: usize,
    pub max_text_bytes: usize,
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_routes: 64,
            max_subscriptions: 64,
            max_schedules: 16,
            max_webhook_sources: 8,
            max_watches: 8,
            max_schema_bytes: 64 << 10,
            max_schema_depth: 32,
            max_name_bytes: 128,
            max_text_bytes: 16 << 10,
        }
    }
}

/// How events reach plugins, `[delivery]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts at one event before it becomes a dead letter for the plugin.
    pub max_attempts: i32,
    /// Wait before the first retry; each further retry waits twice as long.
    pub backoff_ms: u64,
    /// Longest wait between two retries.
    pub max_backoff_ms: u64,
    /// Most events handed to a plugin in one batch (one transaction).
    pub batch_size: u64,
    /// After a batch that reached the end of the log, how long a partition
    /// waits before reading again, so that a steady stream is folded in a few
    /// large transactions rather than one per event or two (0: at once). An
    /// event arriving at an idle partition is still handled at once.
    pub linger_ms: u64,
    /// A plugin whose oldest unhandled event in an org is older than this is
    /// reported as `system.delivery.lagging` while it lasts (0: never).
    pub lag_report_seconds: u64,
    /// How often such a report is repeated while the lag lasts.
    pub lag_report_every_seconds: u64,
    /// How long a replica's lease on a partition or schedule lasts unless
    /// renewed (every second): a dead replica's work moves after this.
    pub lease_seconds: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 5,
            backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            batch_size: 100,
            linger_ms: 50,
            lag_report_seconds: 60,
            lag_report_every_seconds: 60,
            lease_seconds: 5,
        }
    }
}

/// Webhook ingest, `[ingest]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted delivery; GitHub caps payloads at 25 MiB.
    pub max_body_bytes: usize,
    /// How long a delivery waits for its event to be stored before answering 503.
    pub ack_timeout_ms: u64,
    /// How long the previous secret stays valid after a rotation.
    pub rotation_grace_seconds: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { max_body_bytes: 25 << 20, ack_timeout_ms: 5_000, rotation_grace_seconds: 86_400 }
    }
}

/// Rate limits at the edge, `[rate_limits]` in the config file. Counted in
/// Redis (shared by replicas) when it is configured, else in each process.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Length of one counting window.
    pub window_seconds: u64,
    /// Requests per window per API token (every `/api/v1` call with a token); 0 turns it off.
    pub per_token: u64,
    /// Deliveries per window per webhook source of one org; 0 turns it off.
    pub per_webhook_source: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { window_seconds: 60, per_token: 6_000, per_webhook_source: 60_000 }
    }
}

impl RateLimitConfig {
    /// No limits (benchmarks measuring the server itself).
    pub fn unlimited() -> Self {
        RateLimitConfig { per_token: 0, per_webhook_source: 0, ..RateLimitConfig::default() }
    }
}

/// Alerts and their notifications, `[alerts]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Let channels reach loopback, private and link-local addresses. Off, an
    /// org admin cannot point a channel at the server's own network.
    pub allow_private_targets: bool,
    /// The server's public URL, for links in notifications; empty: no links.
    pub public_url: String,
    /// How long one notification attempt may take.
    pub send_timeout_seconds: u64,
    /// Wait before the first retry of a failed notification; doubled each time up to 10 minutes.
    pub retry_seconds: u64,
    /// A notification still failing this long after it was queued is given up.
    pub give_up_after_hours: u64,
    /// How often open alerts are re-sent to Alertmanager channels (it drops alerts not re-sent within 5 minutes).
    pub alertmanager_resend_seconds: u64,
    /// How often resolve timeouts, repeat intervals and the alert gauges are checked.
    pub scan_seconds: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            allow_private_targets: false,
            public_url: String::new(),
            send_timeout_seconds: 10,
            retry_seconds: 1,
            give_up_after_hours: 24,
            alertmanager_resend_seconds: 60,
            scan_seconds: 5,
        }
    }
}

/// The live stream (`GET /api/v1/stream`, `/api/v1/stream/sse`), `[stream]` in the config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// How long a ticket from `POST /api/v1/stream/tickets` may wait before its one use.
    pub ticket_seconds: u64,
    /// How often an idle subscriber gets a keep-alive (an SSE comment, a WebSocket ping).
    pub keep_alive_seconds: u64,
    /// The reconnection delay SSE clients are told to use (`retry:`).
    pub retry_ms: u64,
    /// Concurrent subscriptions one token may hold on one replica.
    pub max_per_token: usize,
    /// Concurrent subscriptions one org may hold on one replica.
    pub max_per_org: usize,
    /// Events a replica keeps for subscribers that fall behind; one further behind catches up from the log.
    pub buffer_events: usize,
    /// A subscriber that has not taken a message within this long is closed (it resumes from its last position).
    pub send_timeout_seconds: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            ticket_seconds: 30,
            keep_alive_seconds: 15,
            retry_ms: 3000,
            max_per_token: 20,
            max_per_org: 1000,
            buffer_events: 1024,
            send_timeout_seconds: 30,
        }
    }
}

/// The config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Longest chain of events caused by events.
    pub max_event_depth: Option<i32>,
    pub delivery: DeliveryConfig,
    pub ingest: IngestConfig,
    pub rate_limits: RateLimitConfig,
    pub alerts: AlertsConfig,
    pub stream: StreamConfig,
    pub kube: KubeConfig,
    pub plugins: BTreeMap<String, PluginConfig>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is invalid: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("{0}")]
    Invalid(&'static str),
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
        if self.delivery.max_attempts < 1 {
            return Err(ConfigError::Invalid("delivery.max_attempts must be at least 1"));
        }
        if self.delivery.batch_size < 1 {
            return Err(ConfigError::Invalid("delivery.batch_size must be at least 1"));
        }
        if self.delivery.linger_ms > 10_000 {
            return Err(ConfigError::Invalid("delivery.linger_ms must be at most 10000"));
        }
        if self.rate_limits.window_seconds < 1 {
            return Err(ConfigError::Invalid("rate_limits.window_seconds must be at least 1"));
        }
        if self.ingest.ack_timeout_ms < 100 {
            return Err(ConfigError::Invalid("ingest.ack_timeout_ms must be at least 100"));
        }
        let alerts = &self.alerts;
        if alerts.send_timeout_seconds < 1 || alerts.retry_seconds < 1 || alerts.scan_seconds < 1 {
            return Err(ConfigError::Invalid(
                "alerts.send_timeout_seconds, retry_seconds and scan_seconds must be at least 1",
            ));
        }
        if !(10..=240).contains(&alerts.alertmanager_resend_seconds) {
            return Err(ConfigError::Invalid("alerts.alertmanager_resend_seconds must be between 10 and 240"));
        }
        if !alerts.public_url.is_empty() && reqwest::Url::parse(&alerts.public_url).is_err() {
            return Err(ConfigError::Invalid("alerts.public_url must be an absolute URL"));
        }
        let stream = &self.stream;
        if stream.ticket_seconds < 1
            || stream.keep_alive_seconds < 1
            || stream.send_timeout_seconds < 1
            || stream.buffer_events < 16
        {
            return Err(ConfigError::Invalid(
                "stream.ticket_seconds, keep_alive_seconds and send_timeout_seconds must be at least 1, \
                 buffer_events at least 16",
            ));
        }
        if self.kube.in_cluster && !self.kube.kubeconfig.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("kube: set kubeconfig or in_cluster, not both"));
        }
        let max = MAX_PLUGIN_MEMORY_MIB;
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

#[cfg(test)]
mod tests {
    use super::{AlertsConfig, DeliveryConfig, FileConfig, IngestConfig, PluginConfig, RateLimitConfig};

    /// `devpulse.example.toml` documents every setting with its default.
    #[test]
    fn the_example_file_parses_with_the_defaults() {
        let example = FileConfig::parse(include_str!("../../../devpulse.example.toml")).unwrap();
        example.validate().unwrap();
        assert_eq!(example.delivery, DeliveryConfig::default());
        assert_eq!(example.ingest, IngestConfig::default());
        assert_eq!(example.rate_limits, RateLimitConfig::default());
        assert_eq!(example.alerts, AlertsConfig::default());
        let hello = example.plugin("hello");
        let defaults = PluginConfig { settings: hello.settings.clone(), ..PluginConfig::default() };
        assert_eq!(hello, defaults, "the example's limits are the defaults");
    }

    /// A linger longer than a few seconds would leave the figures stale for it; refused.
    #[test]
    fn a_linger_over_ten_seconds_is_refused() {
        let config = FileConfig::parse("[delivery]\nlinger_ms = 10001\n").unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("delivery.linger_ms"));
        FileConfig::parse("[delivery]\nlinger_ms = 0\n").unwrap().validate().unwrap();
    }
}
