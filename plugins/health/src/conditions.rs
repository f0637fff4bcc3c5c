//! Conditions: what a rule finds true now, each under a stable key. The open
//! ones are kept, so a condition is raised once when it becomes true (again
//! if its severity or wording changes), resolved once when it clears, and
//! evaluating again, after a retry, a restart or a rebuild, raises nothing new.

use devpulse_sdk::alerts::{self, Alert, Severity};
use devpulse_sdk::prelude::*;
use serde_json::Value;

/// The rules, as alerts and the overview name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    ReviewWaiting,
    StalePull,
    LargePull,
    ReviewLoad,
    FailedDeployment,
    ChangeFailureRate,
    DeliveryReliability,
    Overwork,
    MissingBreaks,
    ConsecutiveDays,
    Inactivity,
    PluginDown,
    DeliveryLag,
    DeadLetters,
    BadSignatures,
    WorkspaceFailed,
}

impl Rule {
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|name| name.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// How bad a condition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

/// A condition that holds: the alert it raises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// `<scope>/<rule>`: the alert's key, stable for as long as the condition holds.
    pub key: String,
    pub rule: Rule,
    pub level: Level,
    pub summary: String,
    /// The person it is about: they and their managers see it.
    pub user: Option<String>,
    /// The figures that triggered it.
    pub figures: Value,
    /// Where the facts come from: the pull request on GitHub (absolute URLs).
    pub urls: Vec<String>,
    /// Where the facts come from in DevPulse's API: the pull request's
    /// timeline, the days, the plugin (paths, shown in the details).
    #[serde(default)]
    pub provenance: Vec<String>,
    /// The events the facts were read from.
    pub event_ids: Vec<String>,
}

impl Condition {
    pub fn new(key: String, rule: Rule, level: Level, summary: String, figures: Value) -> Self {
        Condition {
            key,
            rule,
            level,
            summary,
            user: None,
            figures,
            urls: Vec::new(),
            provenance: Vec::new(),
            event_ids: Vec::new(),
        }
    }

    pub fn about(mut self, user: Option<String>) -> Self {
        self.user = user;
        self
    }

    /// Links to the facts: API paths go to the details, absolute URLs to
    /// the alert's links, and the newest of the events (an alert links 32 at most).
    pub fn links(mut self, links: Vec<String>, event_ids: Vec<String>) -> Self {
        let (mut urls, paths): (Vec<String>, Vec<String>) =
            links.into_iter().partition(|link| link.starts_with("https://"));
        urls.truncate(MAX_LINKS);
        self.urls = urls;
        self.provenance = paths;
        let ids: Vec<String> = event_ids.into_iter().filter(|id| !id.is_empty()).collect();
        self.event_ids = ids[ids.len().saturating_sub(MAX_LINKS)..].to_vec();
        self
    }

    /// Whether raising `self` over the open `other` would tell anyone anything
    /// new: figures that only grow with time (hours waited) do not.
    fn differs_from(&self, other: &Condition) -> bool {
        (self.level, &self.summary, &self.user) != (other.level, &other.summary, &other.user)
    }

    fn alert(&self) -> Result<Alert> {
        let severity = match self.level {
            Level::Info => Severity::Info,
            Level::Warning => Severity::Warning,
            Level::Critical => Severity::Critical,
        };
        let mut alert = Alert::new(self.key.clone(), severity, self.summary.clone()).label("rule", self.rule.name());
        if let Some(user) = &self.user {
            alert = alert.label("user", user);
        }
        let details = serde_json::json!({ "rule": self.rule, "figures": self.figures, "provenance": self.provenance });
        alert = alert.details(&details)?;
        for url in &self.urls {
            alert = alert.url(url);
        }
        for id in &self.event_ids {
            alert = alert.event(id);
        }
        Ok(alert)
    }
}

/// The most events and URLs an alert links.
const MAX_LINKS: usize = 32;

pub fn open_key(key: &str) -> String {
    format!("open/{key}")
}

/// Makes the open conditions under `scope` (a key prefix) exactly `holding`:
/// raises the new and the changed, resolves the rest.
pub fn reconcile(scope: &str, holding: Vec<Condition>) -> Result<()> {
    let mut open: std::collections::BTreeMap<String, Condition> =
        storage::scan_all::<Condition>(&open_key(scope))?.into_iter().map(|(_, c)| (c.key.clone(), c)).collect();
    for condition in holding {
        let known = open.remove(&condition.key);
        if known.as_ref().is_none_or(|known| condition.differs_from(known)) {
            alerts::raise(condition.alert()?)?;
            storage::put(&open_key(&condition.key), &condition)?;
        }
    }
    for key in open.keys() {
        alerts::resolve(key)?;
        storage::delete(&open_key(key))?;
    }
    Ok(())
}

/// Every open condition, in key order.
pub fn all_open() -> Result<Vec<Condition>> {
    Ok(storage::scan_all::<Condition>("open/")?.into_iter().map(|(_, condition)| condition).collect())
}
