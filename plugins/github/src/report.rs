//! `summary` and `dora`: figures over a window, answered from the metrics
//! store's rollups (`metrics::Query`), with the pull requests and deployments
//! behind them on request (`include=items`).

use crate::ingest::{MergedRef, month, names, pull_key};
use crate::pull::Pull;
use crate::repo::{Deploy, RepoState};
use crate::routes::{PullView, rfc3339, visible};
use chrono::Datelike;
use devpulse_sdk::metrics::{Aggregation, Query, Step};
use devpulse_sdk::prelude::*;
use std::collections::BTreeMap;

const DAY: i64 = 86_400_000;
const WEEK: i64 = 7 * DAY;

/// The longest window: one daily bucket short of what one metrics query answers.
const MAX_WINDOW_DAYS: i64 = 9_999;

/// The window and selection of a report.
#[derive(Deserialize, JsonSchema)]
pub struct Window {
    /// Start; 30 days before `to` by default, and at most 9,999 days before it.
    pub from: Option<Time>,
    /// End, exclusive; now by default. A window ending at or before its start holds nothing.
    pub to: Option<Time>,
    /// Only this repository (`owner/name`).
    pub repo: Option<String>,
    /// Figures per author or per repository (summary only; dora answers for the whole window).
    pub group_by: Option<GroupBy>,
    /// `items`: also list the pull requests (summary) or deployments (dora) behind the figures.
    pub include: Option<Include>,
}

/// What summary figures are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Author,
    Repo,
}

/// What to list beside the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Include {
    Items,
}

struct Selection {
    from: Timestamp,
    to: Timestamp,
    filters: Vec<(&'static str, String)>,
}

impl Selection {
    fn of(window: &Window, principal: &Principal) -> Result<Self> {
        let to = window.to.map_or_else(now, |time| time.0);
        // Daily figures read one bucket a day, and a query holds at most 10,000:
        // a longer window starts later, and the answer's `from` says where.
        let from = window.from.map_or(to - 30 * DAY, |time| time.0).max(to - MAX_WINDOW_DAYS * DAY);
        // A window ending before it starts holds nothing, like an empty one.
        let to = to.max(from);
        let mut filters = Vec::new();
        if let Some(repo) = &window.repo {
            filters.push(("repo", repo.clone()));
        }
        // Developers see their own numbers.
        if principal.role == Role::Developer {
            filters.push(("author", principal.user_id.clone()));
        }
        Ok(Selection { from, to, filters })
    }

    fn query(&self, name: &str, aggregation: Aggregation) -> Query {
        self.filters
            .iter()
            .fold(Query::new(name, aggregation, self.from, self.to), |query, (label, value)| query.filter(label, value))
    }

    /// One number per group (label value of `group_by`, or `""` for all).
    fn per_group(&self, name: &str, aggregation: Aggregation, group_by: Option<&str>) -> Result<BTreeMap<String, f64>> {
        let query = match group_by {
            Some(label) => self.query(name, aggregation).group_by(label),
            None => self.query(name, aggregation),
        };
        Ok(query
            .run()?
            .into_iter()
            .filter_map(|series| {
                let key = group_by
                    .and_then(|label| {
                        series.labels.iter().find(|(name, _)| name == label).map(|(_, value)| value.clone())
                    })
                    .unwrap_or_default();
                Some((key, series.buckets.first()?.value))
            })
            .collect())
    }

    fn total(&self, name: &str, aggregation: Aggregation) -> Result<Option<f64>> {
        Ok(self.per_group(name, aggregation, None)?.remove(""))
    }
}

/// p50 and p90 of one part of the cycle, in seconds.
#[derive(Serialize, Deserialize, JsonSchema, Default, Clone, PartialEq, Debug)]
pub struct Spread {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
}

/// The Delivery Reliability Score and what it is made of.
#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Debug)]
pub struct Reliability {
    /// 0 to 100, one decimal.
    pub score: Option<f64>,
    pub inputs: ReliabilityInputs,
    pub formula: String,
}

pub use devpulse_sdk::definitions::{RELIABILITY_FORMULA as FORMULA, ReliabilityInputs};

/// The figures of one group of merged pull requests.
#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Debug)]
pub struct SummaryGroup {
    /// The `group_by` value (`null` without grouping).
    pub key: Option<String>,
    /// Pull requests merged in the window (by merge time).
    pub merged: u64,
    pub cycle_time_s: Spread,
    pub coding_time_s: Spread,
    pub pickup_time_s: Spread,
    pub review_time_s: Spread,
    pub deploy_time_s: Spread,
    /// Median of additions + deletions.
    pub median_size: Option<f64>,
    /// Share of merged pull requests with at least one review by someone other than the author.
    pub review_coverage: Option<f64>,
    /// Share of merged pull requests with commits after their first review.
    pub rework_rate: Option<f64>,
    pub delivery_reliability: Reliability,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub groups: Vec<SummaryGroup>,
    /// With `include=items`: the merged pull requests behind the figures.
    pub items: Option<Vec<PullView>>,
}

pub fn summary(call: Call<Window>) -> Result<Summary> {
    let window = &call.params;
    let group_by = window.group_by.map(|group_by| match group_by {
        GroupBy::Author => "author",
        GroupBy::Repo => "repo",
    });
    let selection = Selection::of(window, &call.principal)?;
    let counts = selection.per_group(names::CYCLE, Aggregation::Count, group_by)?;
    let spread = |name: &str| -> Result<BTreeMap<String, Spread>> {
        let p50 = selection.per_group(name, Aggregation::P50, group_by)?;
        let p90 = selection.per_group(name, Aggregation::P90, group_by)?;
        Ok(counts
            .keys()
            .map(|key| (key.clone(), Spread { p50: p50.get(key).copied(), p90: p90.get(key).copied() }))
            .collect())
    };
    let (cycle, coding, pickup, review, deploy) = (
        spread(names::CYCLE)?,
        spread(names::CODING)?,
        spread(names::PICKUP)?,
        spread(names::REVIEW)?,
        spread(names::DEPLOY)?,
    );
    let size = selection.per_group(names::SIZE, Aggregation::P50, group_by)?;
    let reviewed = selection.per_group(names::REVIEWED, Aggregation::Avg, group_by)?;
    let rework = selection.per_group(names::REWORK, Aggregation::Avg, group_by)?;
    let change_failure_rate = failure_rate(&deployment_selection(window, &selection))?.rate;
    let groups = counts
        .iter()
        .map(|(key, merged)| {
            let inputs = ReliabilityInputs {
                review_coverage: reviewed.get(key).copied(),
                rework_rate: rework.get(key).copied(),
                change_failure_rate,
                cycle_time_p50_s: cycle.get(key).and_then(|spread| spread.p50),
            };
            SummaryGroup {
                key: group_by.map(|_| key.clone()),
                merged: *merged as u64,
                cycle_time_s: cycle.get(key).cloned().unwrap_or_default(),
                coding_time_s: coding.get(key).cloned().unwrap_or_default(),
                pickup_time_s: pickup.get(key).cloned().unwrap_or_default(),
                review_time_s: review.get(key).cloned().unwrap_or_default(),
                deploy_time_s: deploy.get(key).cloned().unwrap_or_default(),
                median_size: size.get(key).copied(),
                review_coverage: inputs.review_coverage,
                rework_rate: inputs.rework_rate,
                delivery_reliability: Reliability { score: inputs.score(), inputs, formula: FORMULA.into() },
            }
        })
        .collect();
    let items = match window.include {
        Some(Include::Items) => Some(merged_pulls(&selection, window, &call.principal)?),
        None => None,
    };
    Ok(Summary { from: rfc3339(selection.from), to: rfc3339(selection.to), groups, items })
}

/// Deployments are the repository's, whoever authored the changes.
fn deployment_selection(window: &Window, selection: &Selection) -> Selection {
    Selection {
        from: selection.from,
        to: selection.to,
        filters: window.repo.iter().map(|repo| ("repo", repo.clone())).collect(),
    }
}

/// Merged pull requests in the window, oldest merge first.
fn merged_pulls(selection: &Selection, window: &Window, principal: &Principal) -> Result<Vec<PullView>> {
    let mut items = Vec::new();
    let mut months = Vec::new();
    let mut at = selection.from;
    while at < selection.to {
        months.push(month(at));
        // The first day of the next month.
        at = chrono::DateTime::from_timestamp_millis(at)
            .and_then(|at| at.date_naive().with_day(1)?.checked_add_months(chrono::Months::new(1)))
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map_or(selection.to, |day| day.and_utc().timestamp_millis());
    }
    for name in months {
        for (_, merged) in storage::scan_all::<MergedRef>(&format!("merged/{name}/"))? {
            let in_window = (selection.from..selection.to).contains(&merged.merged_at);
            if !in_window || window.repo.as_ref().is_some_and(|repo| *repo != merged.repo) {
                continue;
            }
            if let Some(pull) = storage::get::<Pull>(&pull_key(&merged.repo, merged.number))?
                && visible(&pull, principal)
            {
                items.push(PullView::from(&pull));
            }
        }
    }
    items.sort_by(|a, b| (&a.merged_at, &a.repo, a.number).cmp(&(&b.merged_at, &b.repo, b.number)));
    Ok(items)
}

/// A DORA 2023 performance level.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Debug)]
pub struct Frequency {
    /// Successful production deployments (or merges) per week.
    pub per_week: f64,
    /// Days with at least one, per week (UTC days).
    pub days_per_week: f64,
    pub total: u64,
    /// Elite: 7 or more a week (daily or on demand); high: at least weekly;
    /// medium: at least monthly (12 a year); low: less.
    pub band: Band,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Debug)]
pub struct Duration {
    pub p50_s: Option<f64>,
    pub band: Option<Band>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, PartialEq, Debug)]
pub struct FailureRate {
    /// Failed production deployments divided by production deployments.
    pub rate: Option<f64>,
    pub failed: u64,
    pub deployments: u64,
    /// Elite: at most 5%; high: 10%; medium: 15%; low: more.
    pub band: Option<Band>,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub struct Dora {
    pub from: String,
    pub to: String,
    /// `deployments`, or `merges` when the window has no production deployment
    /// and merges to the default branch stand in for them.
    pub basis: String,
    pub deployment_frequency: Frequency,
    /// First commit to production deployment, median. Elite: under a day; high:
    /// under a week; medium: under 30 days; low: more.
    pub lead_time_for_changes: Duration,
    pub change_failure_rate: FailureRate,
    /// A failed deployment to the next successful one in its environment,
    /// median. Elite: under an hour; high: under a day; medium: under a week; low: more.
    pub failed_deployment_recovery_time: Duration,
    /// With `include=items`: the deployments in the window.
    pub items: Option<Vec<Deploy>>,
}

fn failure_rate(selection: &Selection) -> Result<FailureRate> {
    let by_outcome = selection.per_group(names::DEPLOYMENT, Aggregation::Count, Some("outcome"))?;
    let failed = by_outcome.get("failure").copied().unwrap_or(0.0) as u64;
    let deployments = by_outcome.values().sum::<f64>() as u64;
    let rate = (deployments > 0).then(|| failed as f64 / deployments as f64);
    let band = rate.map(|rate| match rate {
        r if r <= 0.05 => Band::Elite,
        r if r <= 0.10 => Band::High,
        r if r <= 0.15 => Band::Medium,
        _ => Band::Low,
    });
    Ok(FailureRate { rate, failed, deployments, band })
}

fn duration_band(seconds: f64, limits: [f64; 3]) -> Band {
    match seconds {
        s if s < limits[0] => Band::Elite,
        s if s < limits[1] => Band::High,
        s if s < limits[2] => Band::Medium,
        _ => Band::Low,
    }
}

pub fn dora(call: Call<Window>) -> Result<Dora> {
    let window = &call.params;
    let selection = deployment_selection(window, &Selection::of(window, &call.principal)?);
    let weeks = (selection.to - selection.from) as f64 / WEEK as f64;
    let failures = failure_rate(&selection)?;
    let (basis, counted, lead_metric) = if failures.deployments > 0 {
        (
            "deployments",
            selection.query(names::DEPLOYMENT, Aggregation::Count).filter("outcome", "success"),
            names::LEAD,
        )
    } else {
        ("merges", selection.query(names::MERGE_LEAD, Aggregation::Count), names::MERGE_LEAD)
    };
    let daily = counted.step(Step::Day).run()?;
    let total: u64 = daily.iter().flat_map(|series| &series.buckets).map(|bucket| bucket.count).sum();
    let days: std::collections::BTreeSet<Timestamp> =
        daily.iter().flat_map(|series| &series.buckets).map(|bucket| bucket.start).collect();
    let per_week = if weeks > 0.0 { total as f64 / weeks } else { 0.0 };
    let lead = selection.total(lead_metric, Aggregation::P50)?;
    let recovery = if basis == "deployments" { selection.total(names::RECOVERY, Aggregation::P50)? } else { None };
    let items = match window.include {
        Some(Include::Items) => Some(deployments_in(&selection, window)?),
        None => None,
    };
    Ok(Dora {
        from: rfc3339(selection.from),
        to: rfc3339(selection.to),
        basis: basis.into(),
        deployment_frequency: Frequency {
            per_week,
            days_per_week: if weeks > 0.0 { days.len() as f64 / weeks } else { 0.0 },
            total,
            band: match per_week {
                f if f >= 7.0 => Band::Elite,
                f if f >= 1.0 => Band::High,
                f if f >= 12.0 / 52.0 => Band::Medium,
                _ => Band::Low,
            },
        },
        lead_time_for_changes: Duration {
            p50_s: lead,
            band: lead.map(|s| duration_band(s, [86_400.0, 7.0 * 86_400.0, 30.0 * 86_400.0])),
        },
        change_failure_rate: if basis == "deployments" {
            failures
        } else {
            FailureRate { rate: None, failed: 0, deployments: 0, band: None }
        },
        failed_deployment_recovery_time: Duration {
            p50_s: recovery,
            band: recovery.map(|s| duration_band(s, [3_600.0, 86_400.0, 7.0 * 86_400.0])),
        },
        items,
    })
}

/// Production deployments with an outcome in the window, in time order.
fn deployments_in(selection: &Selection, window: &Window) -> Result<Vec<Deploy>> {
    let states: Vec<RepoState> = match &window.repo {
        Some(repo) => storage::get::<RepoState>(&crate::repo::key(repo))?.into_iter().collect(),
        None => storage::scan_all::<RepoState>("repo/")?.into_iter().map(|(_, state)| state).collect(),
    };
    let mut deploys: Vec<Deploy> = states
        .into_iter()
        .flat_map(|state| state.deploys.into_values())
        .filter(|deploy| deploy.outcome.is_some() && (selection.from..selection.to).contains(&deploy.at))
        .collect();
    deploys.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(deploys)
}
