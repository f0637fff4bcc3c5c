//! Operator settings (`[plugins.github.settings]` in the config file).

use devpulse_sdk::prelude::*;
use wildmatch::WildMatch;

pub struct Settings {
    /// Deployment environments that count as production (`*` wildcards, any case).
    pub production_environments: Vec<String>,
    /// Workflow names whose successful runs on the default branch count as
    /// production deployments.
    pub deploy_workflows: Vec<String>,
    /// Bot-authored pull requests are left out of the figures unless this is set.
    pub include_bot_authors: bool,
    /// A GitHub token for backfills and redelivery (read access to pull
    /// requests, deployments and actions; admin:repo_hook to redeliver).
    pub token: Option<String>,
    /// The REST API's base URL (GitHub Enterprise: `https://HOST/api/v3`).
    /// Its host must be in the plugin's `http_allow`.
    pub api_url: String,
}

impl Settings {
    pub fn load() -> Result<Self> {
        Ok(Settings {
            production_environments: config::get("production_environments")?
                .unwrap_or_else(|| vec!["production".into(), "prod".into(), "production-*".into()]),
            deploy_workflows: config::get("deploy_workflows")?.unwrap_or_else(|| vec!["deploy*".into()]),
            include_bot_authors: config::get("include_bot_authors")?.unwrap_or(false),
            token: config::get("token")?,
            api_url: config::get("api_url")?.unwrap_or_else(|| "https://api.github.com".into()),
        })
    }

    pub fn is_production(&self, environment: &str) -> bool {
        matches_any(&self.production_environments, environment)
    }

    pub fn is_deploy_workflow(&self, name: &str) -> bool {
        matches_any(&self.deploy_workflows, name)
    }
}

fn matches_any(patterns: &[String], text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    patterns.iter().any(|pattern| WildMatch::new(&pattern.to_ascii_lowercase()).matches(&text))
}
