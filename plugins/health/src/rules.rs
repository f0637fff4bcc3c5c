//! The org's health rules: each can be switched off and its thresholds
//! changed (`PUT /api/v1/health/rules`); the defaults are those of
//! `docs/health.md`. A change is an event, so a rebuild sees the rules each
//! moment had, and every condition is evaluated again under the new ones.

use devpulse_sdk::prelude::*;

/// The event a rules change becomes.
pub const UPDATED: &str = "health.rules.updated";

/// Every rule, by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// A pull request ready for review with no review by someone other than its author (bots excluded).
    pub review_waiting: ReviewWaiting,
    /// A pull request open for too long.
    pub stale_pull: StalePull,
    /// A pull request with too many changed lines, while it is open.
    pub large_pull: LargePull,
    /// A reviewer with too many pending review requests.
    pub review_load: ReviewLoad,
    /// A failed production deployment not followed by a successful one in time.
    pub failed_deployment: FailedDeployment,
    /// Failed production deployments over all of them, in a trailing window.
    pub change_failure_rate: ChangeFailureRate,
    /// The Delivery Reliability Score (`docs/metrics.md`) of the org's merged pull
    /// requests and production deployments, in a trailing window.
    pub delivery_reliability: DeliveryReliability,
    /// Worked time above the org's daily maximum (the attendance rules) on too many recent days.
    pub overwork: Overwork,
    /// A recent day without the breaks the org's attendance rules require.
    pub missing_breaks: Switch,
    /// More consecutive working days than the org's attendance rules allow.
    pub consecutive_days: Switch,
    /// A developer with no activity at all for some working days in their time zone.
    pub inactivity: Inactivity,
    /// A plugin that failed to load or was disabled.
    pub plugin_down: Switch,
    /// A plugin behind the log, as the host reports it each minute while it lasts.
    pub delivery_lag: DeliveryLag,
    /// Events dead-lettered in the last hour.
    pub dead_letters: DeadLetters,
    /// Repeated bad webhook signatures on a source.
    pub bad_signatures: BadSignatures,
    /// A workspace whose pod cannot run (an image that cannot be pulled, a crash loop), from the k8s plugin.
    pub workspace_failed: Switch,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewWaiting {
    pub enabled: bool,
    /// Hours without a review before a warning (default 24).
    #[schemars(range(min = 0.0, max = 8760.0))]
    pub warning_hours: f64,
    /// Hours without a review before it is critical (default 72); at or below
    /// `warning_hours`, it is critical as soon as it fires.
    #[schemars(range(min = 0.0, max = 8760.0))]
    pub critical_hours: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StalePull {
    pub enabled: bool,
    /// Days open (default 7).
    #[schemars(range(min = 0.0, max = 3650.0))]
    pub days: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LargePull {
    pub enabled: bool,
    /// More changed lines (additions plus deletions) than this (default 400).
    #[schemars(range(min = 0, max = 100000000))]
    pub lines: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewLoad {
    pub enabled: bool,
    /// Pending review requests on open pull requests, at least (default 5).
    #[schemars(range(min = 1, max = 10000))]
    pub pending_requests: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedDeployment {
    pub enabled: bool,
    /// Hours a failure may stand without a later success in its environment (default 24).
    #[schemars(range(min = 0.0, max = 8760.0))]
    pub recovery_hours: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeFailureRate {
    pub enabled: bool,
    /// Above this percentage (default 15).
    #[schemars(range(min = 0.0, max = 100.0))]
    pub percent: f64,
    /// Over this many trailing days (default 30).
    #[schemars(range(min = 1, max = 366))]
    pub days: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryReliability {
    pub enabled: bool,
    /// Below this score, 0 to 100 (default 60).
    #[schemars(range(min = 0.0, max = 100.0))]
    pub below: f64,
    /// Over this many trailing days (default 30).
    #[schemars(range(min = 1, max = 366))]
    pub days: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Overwork {
    pub enabled: bool,
    /// Days over the daily maximum, at least (default 3; more than `of_last_days` never fires) ...
    #[schemars(range(min = 1, max = 366))]
    pub days: u32,
    /// ... among the last this many days (default 7).
    #[schemars(range(min = 1, max = 366))]
    pub of_last_days: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inactivity {
    pub enabled: bool,
    /// Working days (Monday to Friday, in the person's time zone) without activity (default 3).
    #[schemars(range(min = 1, max = 366))]
    pub working_days: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryLag {
    pub enabled: bool,
    /// Seconds between an event's arrival and now, for the oldest a plugin has
    /// not handled, above which it fires (default 300). The host reports lags
    /// from `delivery.lag_report_seconds` (60) up.
    #[schemars(range(min = 0, max = 604800))]
    pub seconds: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetters {
    pub enabled: bool,
    /// Dead letters in the last hour, at least (default 1).
    #[schemars(range(min = 1, max = 1000000))]
    pub per_hour: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BadSignatures {
    pub enabled: bool,
    /// Minutes of the last hour with bad signatures on one source, at least (default 3).
    #[schemars(range(min = 1, max = 60))]
    pub minutes_per_hour: u32,
}

impl Default for Rules {
    fn default() -> Self {
        let on = Switch { enabled: true };
        Rules {
            review_waiting: ReviewWaiting { enabled: true, warning_hours: 24.0, critical_hours: 72.0 },
            stale_pull: StalePull { enabled: true, days: 7.0 },
            large_pull: LargePull { enabled: true, lines: 400 },
            review_load: ReviewLoad { enabled: true, pending_requests: 5 },
            failed_deployment: FailedDeployment { enabled: true, recovery_hours: 24.0 },
            change_failure_rate: ChangeFailureRate { enabled: true, percent: 15.0, days: 30 },
            delivery_reliability: DeliveryReliability { enabled: true, below: 60.0, days: 30 },
            overwork: Overwork { enabled: true, days: 3, of_last_days: 7 },
            missing_breaks: on.clone(),
            consecutive_days: on.clone(),
            inactivity: Inactivity { enabled: true, working_days: 3 },
            plugin_down: on.clone(),
            workspace_failed: on,
            delivery_lag: DeliveryLag { enabled: true, seconds: 300 },
            dead_letters: DeadLetters { enabled: true, per_hour: 1 },
            bad_signatures: BadSignatures { enabled: true, minutes_per_hour: 3 },
        }
    }
}

/// The rules as stored and announced, with when they were set (0: the defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub rules: Rules,
    pub set_at: Timestamp,
}

/// The org's rules now.
pub fn current() -> Result<Stored> {
    Ok(storage::get("rules")?.unwrap_or_default())
}

/// Keeps `stored` unless newer rules are there already; true when kept.
pub fn keep(stored: &Stored) -> Result<bool> {
    if current()?.set_at > stored.set_at {
        return Ok(false);
    }
    storage::put("rules", stored)?;
    Ok(true)
}
