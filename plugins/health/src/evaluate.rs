//! The rules over the facts, as of a moment: each function finds the
//! conditions that hold in one scope, and `reconcile` makes the open alerts
//! match. Events evaluate the scope they touched; the schedule evaluates
//! everything, for conditions that become true with time.

use crate::conditions::{Condition, Level, Rule, reconcile};
use crate::facts::{self, AttendanceRules, Day, Deployment, Incident, Lag, Merged, PluginTrouble, Pull, Touched};
use crate::rules::Rules;
use chrono::{Datelike, NaiveDate, TimeZone, Weekday};
use devpulse_sdk::definitions::{RELIABILITY_FORMULA, ReliabilityInputs};
use devpulse_sdk::prelude::*;
use serde_json::json;

const HOUR: f64 = 3_600_000.0;
const DAY: f64 = 24.0 * HOUR;

/// Evaluates what `touched` may have changed, as of `now`.
pub fn touched(touched: &Touched, now: Timestamp) -> Result<()> {
    let rules = crate::rules::current()?.rules;
    match touched {
        Touched::Pull { repo, number, reviewers, author } => {
            let pull: Option<Pull> = storage::get(&Pull::key(repo, *number))?;
            reconcile(&pull_scope(repo, *number), pull.map(|pull| of_pull(&rules, &pull, now)).unwrap_or_default())?;
            for reviewer in reviewers {
                reconcile(&reviewer_scope(reviewer), review_load(&rules, reviewer)?)?;
            }
            if let Some(user) = author {
                person(&rules, user, now)?;
            }
            Ok(())
        }
        Touched::Repo(repo) => failed_deployments(&rules, Some(repo), now),
        Touched::Workspace(id) => {
            let failed: Option<facts::FailedWorkspace> = storage::get(&facts::FailedWorkspace::key(id))?;
            reconcile(
                &workspace_scope(id),
                failed.and_then(|failed| workspace_failed(&rules, &failed)).into_iter().collect(),
            )
        }
        Touched::Person(user) => person(&rules, user, now),
        Touched::Platform => reconcile("platform/", platform(&rules, now)?),
        Touched::Everything => everything(now),
        Touched::Nothing => Ok(()),
    }
}

/// Evaluates every rule over every fact, as of `now`.
pub fn everything(now: Timestamp) -> Result<()> {
    let rules = crate::rules::current()?.rules;
    let mut pulls = Vec::new();
    for (_, pull) in storage::scan_all::<Pull>("pull/")? {
        pulls.extend(of_pull(&rules, &pull, now));
    }
    reconcile("pull/", pulls)?;
    let mut loads = Vec::new();
    for reviewer in reviewers()? {
        loads.extend(review_load(&rules, &reviewer)?);
    }
    reconcile("reviewer/", loads)?;
    failed_deployments(&rules, None, now)?;
    delivery(&rules, now)?;
    let workspaces = storage::scan_all::<facts::FailedWorkspace>("workspace/")?;
    reconcile("workspace/", workspaces.iter().filter_map(|(_, failed)| workspace_failed(&rules, failed)).collect())?;
    let mut people: Vec<String> = storage::scan_all::<Timestamp>("active/")?
        .into_iter()
        .map(|(key, _)| key["active/".len()..].to_owned())
        .collect();
    people.extend(
        storage::scan_all::<crate::conditions::Condition>("open/user/")?.into_iter().filter_map(|(_, c)| c.user),
    );
    people.sort();
    people.dedup();
    for user in people {
        person(&rules, &user, now)?;
    }
    reconcile("platform/", platform(&rules, now)?)
}

fn pull_scope(repo: &str, number: u64) -> String {
    format!("pull/{repo}/{number:010}/")
}

fn workspace_scope(id: &str) -> String {
    format!("workspace/{id}/")
}

/// A workspace that cannot run: one alert about its owner until it runs, stops or goes.
fn workspace_failed(rules: &Rules, failed: &facts::FailedWorkspace) -> Option<Condition> {
    rules.workspace_failed.enabled.then(|| {
        let reason = failed.failure.clone().unwrap_or_else(|| "its pod cannot run".into());
        Condition::new(
            format!("{}{}", workspace_scope(&failed.id), Rule::WorkspaceFailed.name()),
            Rule::WorkspaceFailed,
            Level::Warning,
            format!("Workspace {} ({} on {}) failed: {reason}", failed.id, failed.repo, failed.branch),
            json!({ "workspace": failed.id, "repo": failed.repo, "branch": failed.branch, "failure": failed.failure, "since": Time(failed.at) }),
        )
        .about(Some(failed.owner.clone()))
        .links(vec![format!("/api/v1/k8s/workspaces/{}", failed.id)], vec![failed.event_id.clone()])
    })
}

fn reviewer_scope(login: &str) -> String {
    format!("reviewer/{login}/")
}

fn hours(ms: f64) -> f64 {
    (ms / HOUR * 10.0).round() / 10.0
}

/// The provenance of a pull request: on GitHub, and its timeline here.
fn pull_links(pull: &Pull) -> (Vec<String>, Vec<String>) {
    (vec![pull.url.clone(), format!("/api/v1/github/pulls/{}/{}", pull.repo, pull.number)], vec![pull.event_id.clone()])
}

/// Review waiting, stale and large: the rules about one open pull request.
pub fn of_pull(rules: &Rules, pull: &Pull, now: Timestamp) -> Vec<Condition> {
    let scope = pull_scope(&pull.repo, pull.number);
    let name = format!("{}#{}", pull.repo, pull.number);
    let (urls, events) = pull_links(pull);
    let condition = |rule: Rule, level: Level, summary: String, figures: serde_json::Value| {
        Condition::new(format!("{scope}{}", rule.name()), rule, level, summary, figures)
            .about(pull.author_user.clone())
            .links(urls.clone(), events.clone())
    };
    let mut holding = Vec::new();
    let waiting = &rules.review_waiting;
    if let (true, false, None, Some(ready)) = (waiting.enabled, pull.draft, pull.first_review_at, pull.ready_at) {
        let waited = (now - ready.0) as f64;
        let fires_after = waiting.warning_hours.min(waiting.critical_hours);
        if waited > fires_after * HOUR {
            let (level, limit) = match waited > waiting.critical_hours * HOUR {
                true => (Level::Critical, waiting.critical_hours),
                false => (Level::Warning, waiting.warning_hours),
            };
            holding.push(condition(
                Rule::ReviewWaiting,
                level,
                format!("{name} has waited more than {limit} h for a first review"),
                json!({ "ready_at": ready, "waited_hours": hours(waited), "threshold_hours": limit }),
            ));
        }
    }
    if let (true, Some(created)) = (rules.stale_pull.enabled, pull.created_at) {
        let open_for = (now - created.0) as f64;
        if open_for > rules.stale_pull.days * DAY {
            holding.push(condition(
                Rule::StalePull,
                Level::Warning,
                format!("{name} has been open for more than {} days", rules.stale_pull.days),
                json!({ "created_at": created, "open_days": (open_for / DAY * 10.0).round() / 10.0, "threshold_days": rules.stale_pull.days }),
            ));
        }
    }
    if rules.large_pull.enabled && pull.size > rules.large_pull.lines {
        holding.push(condition(
            Rule::LargePull,
            Level::Info,
            format!("{name} changes more than {} lines", rules.large_pull.lines),
            json!({ "size": pull.size, "threshold_lines": rules.large_pull.lines }),
        ));
    }
    holding
}

/// Reviewers with a pending request, from the index.
fn reviewers() -> Result<Vec<String>> {
    let mut logins: Vec<String> = storage::scan_all::<String>("requested/")?
        .into_iter()
        .filter_map(|(key, _)| key["requested/".len()..].split('/').next().map(str::to_owned))
        .collect();
    logins.extend(
        storage::scan_all::<Condition>("open/reviewer/")?
            .into_iter()
            .filter_map(|(key, _)| key["open/reviewer/".len()..].split('/').next().map(str::to_owned)),
    );
    logins.sort();
    logins.dedup();
    Ok(logins)
}

/// A reviewer with too many pending requests on open, non-draft pull requests.
fn review_load(rules: &Rules, login: &str) -> Result<Vec<Condition>> {
    let load = &rules.review_load;
    if !load.enabled {
        return Ok(Vec::new());
    }
    let pending = storage::count(&format!("requested/{login}/"))?;
    if pending < u64::from(load.pending_requests) {
        return Ok(Vec::new());
    }
    let pulls: Vec<String> =
        storage::scan_all::<String>(&format!("requested/{login}/"))?.into_iter().map(|(_, url)| url).collect();
    let user = identity::find_by_identity("github", login)?.map(|user| user.id);
    let condition = Condition::new(
        format!("{}{}", reviewer_scope(login), Rule::ReviewLoad.name()),
        Rule::ReviewLoad,
        Level::Warning,
        format!("{login} has {} or more pending review requests", load.pending_requests),
        json!({ "reviewer": login, "pending_requests": pending, "threshold": load.pending_requests }),
    )
    .about(user)
    .links(pulls, Vec::new());
    Ok(vec![condition])
}

/// Failed deployments not recovered in time, in one repository or all.
fn failed_deployments(rules: &Rules, repo: Option<&str>, now: Timestamp) -> Result<()> {
    let scope = match repo {
        Some(repo) => format!("deploy/{repo}/"),
        None => "deploy/".to_owned(),
    };
    let all: Vec<Deployment> = storage::scan_all::<Deployment>(&scope)?.into_iter().map(|(_, d)| d).collect();
    let mut unrecovered = Vec::new();
    let failed = &rules.failed_deployment;
    for failure in all.iter().filter(|deployment| deployment.failed() && failed.enabled) {
        let recovered = all.iter().any(|other| {
            !other.failed()
                && other.repo == failure.repo
                && other.environment == failure.environment
                && other.at > failure.at
        });
        let standing = (now - failure.at.0) as f64;
        if !recovered && standing > failed.recovery_hours * HOUR {
            unrecovered.push(
                Condition::new(
                    format!("deploy/{}/{}/{}", failure.repo, failure.id, Rule::FailedDeployment.name()),
                    Rule::FailedDeployment,
                    Level::Critical,
                    format!(
                        "A production deployment of {} to {} failed and nothing has succeeded there for {} h",
                        failure.repo, failure.environment, failed.recovery_hours
                    ),
                    json!({ "deployment": failure.id, "failed_at": failure.at, "hours_since": hours(standing) }),
                )
                .links(vec!["/api/v1/github/dora?include=items".into()], failure.event_ids.clone()),
            );
        }
    }
    reconcile(&scope, unrecovered)
}

/// The org's change failure rate and Delivery Reliability Score over their
/// windows: aggregates, evaluated on the schedule and when the rules change.
fn delivery(rules: &Rules, now: Timestamp) -> Result<()> {
    let deployments: Vec<Deployment> =
        storage::scan_all::<Deployment>("deploy/")?.into_iter().map(|(_, d)| d).collect();
    let in_window = |days: u32| {
        let since = now - i64::from(days) * DAY as i64;
        deployments.iter().filter(move |d| d.at.0 >= since && d.at.0 <= now)
    };
    let failure_rate = |days: u32| -> Option<(f64, Vec<&Deployment>, usize)> {
        let window: Vec<&Deployment> = in_window(days).collect();
        let failed: Vec<&Deployment> = window.iter().copied().filter(|d| d.failed()).collect();
        (!window.is_empty()).then(|| (failed.len() as f64 / window.len() as f64, failed, window.len()))
    };
    let mut holding = Vec::new();
    let rate = &rules.change_failure_rate;
    if let (true, Some((share, failed, total))) = (rate.enabled, failure_rate(rate.days))
        && 100.0 * share > rate.percent
    {
        holding.push(
            Condition::new(
                format!("org/{}", Rule::ChangeFailureRate.name()),
                Rule::ChangeFailureRate,
                Level::Warning,
                format!("Change failure rate over the last {} days is above {}%", rate.days, rate.percent),
                json!({
                    "percent": (1000.0 * share).round() / 10.0, "failed": failed.len(),
                    "deployments": total, "threshold_percent": rate.percent,
                }),
            )
            .links(
                vec!["/api/v1/github/dora?include=items".into()],
                failed.iter().flat_map(|d| d.event_ids.iter().take(1).cloned()).collect(),
            ),
        );
    }
    let reliability = &rules.delivery_reliability;
    if reliability.enabled {
        let since = now - i64::from(reliability.days) * DAY as i64;
        let merged: Vec<Merged> = storage::scan_all::<Merged>("merged/")?
            .into_iter()
            .map(|(_, merged)| merged)
            .filter(|merged| merged.merged_at >= since && merged.merged_at <= now)
            .collect();
        let share = |count: usize| (!merged.is_empty()).then(|| count as f64 / merged.len() as f64);
        let mut cycles: Vec<f64> = merged.iter().filter_map(|merged| merged.cycle_time_s).collect();
        cycles.sort_by(f64::total_cmp);
        let inputs = ReliabilityInputs {
            review_coverage: share(merged.iter().filter(|merged| merged.reviewed).count()),
            rework_rate: share(merged.iter().filter(|merged| merged.reworked).count()),
            change_failure_rate: failure_rate(reliability.days).map(|(share, _, _)| share),
            cycle_time_p50_s: median(&cycles),
        };
        if let Some(score) = inputs.score().filter(|score| *score < reliability.below) {
            holding.push(
                Condition::new(
                    format!("org/{}", Rule::DeliveryReliability.name()),
                    Rule::DeliveryReliability,
                    Level::Warning,
                    format!(
                        "The Delivery Reliability Score over the last {} days is below {}",
                        reliability.days, reliability.below
                    ),
                    json!({ "score": score, "inputs": inputs, "formula": RELIABILITY_FORMULA, "merged": merged.len(), "threshold": reliability.below }),
                )
                .links(vec![format!("/api/v1/github/summary?from={}&to={}", Time(since).to_rfc3339(), Time(now).to_rfc3339())], Vec::new()),
            );
        }
    }
    reconcile("org/", holding)
}

/// The exact median (nearest rank) of sorted values; the github plugin's p50
/// comes from a sketch, within 1% of it.
fn median(sorted: &[f64]) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[(sorted.len() - 1) / 2])
}

/// The local date of `now` for a person.
fn local_date(zone: &str, now: Timestamp) -> Option<NaiveDate> {
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    Some(zone.timestamp_millis_opt(now).single()?.date_naive())
}

/// Working time and inactivity: the rules about one person.
fn person(rules: &Rules, user: &str, now: Timestamp) -> Result<()> {
    let days = facts::days_of(user)?;
    let zone = days.values().next_back().map(|day| day.time_zone.clone());
    let zone = match zone {
        Some(zone) => zone,
        None => identity::user(user)?.map(|user| user.time_zone).unwrap_or_else(|| "UTC".into()),
    };
    let Some(today) = local_date(&zone, now) else { return Ok(()) };
    let scope = format!("user/{user}/");
    let condition = |rule: Rule, level: Level, summary: String, figures: serde_json::Value, shown: &[&Day]| {
        let (from, to) = (shown.first().map(|d| d.date.clone()), shown.last().map(|d| d.date.clone()));
        let urls = match (from, to) {
            (Some(from), Some(to)) => vec![format!("/api/v1/attendance/days?user={user}&from={from}&to={to}")],
            _ => Vec::new(),
        };
        Condition::new(format!("{scope}{}", rule.name()), rule, level, summary, figures)
            .about(Some(user.to_owned()))
            .links(urls, shown.iter().map(|day| day.event_id.clone()).collect())
    };
    let recent = |last: u32| -> Vec<&Day> {
        let first = today - chrono::Days::new(u64::from(last.max(1)) - 1);
        days.values()
            .filter(|day| NaiveDate::parse_from_str(&day.date, "%Y-%m-%d").is_ok_and(|d| d >= first && d <= today))
            .collect()
    };
    let mut holding = Vec::new();
    let overwork = &rules.overwork;
    if overwork.enabled {
        let over: Vec<&Day> = recent(overwork.of_last_days)
            .into_iter()
            .filter(|day| day.breaches.iter().any(|breach| breach == "max_daily_hours"))
            .collect();
        if over.len() >= overwork.days as usize {
            holding.push(condition(
                Rule::Overwork,
                Level::Warning,
                format!("Worked above the daily maximum on {} of the last {} days", over.len(), overwork.of_last_days),
                json!({ "days": over.iter().map(|d| json!({"date": d.date, "worked_hours": hours(d.worked_s * 1000.0)})).collect::<Vec<_>>() }),
                &over,
            ));
        }
    }
    if rules.missing_breaks.enabled {
        let short: Vec<&Day> =
            recent(7).into_iter().filter(|day| day.breaches.iter().any(|b| b == "min_breaks")).collect();
        if !short.is_empty() {
            holding.push(condition(
                Rule::MissingBreaks,
                Level::Info,
                format!("Breaks below the required minimum on {} of the last 7 days", short.len()),
                json!({ "dates": short.iter().map(|d| d.date.clone()).collect::<Vec<_>>() }),
                &short,
            ));
        }
    }
    let allowed = storage::get::<AttendanceRules>("attendance-rules")?.unwrap_or_default().max_consecutive_days;
    if let (true, Some(allowed)) = (rules.consecutive_days.enabled, allowed) {
        let streak = streak_ending_near(&days, today);
        if streak.len() > allowed as usize {
            holding.push(condition(
                Rule::ConsecutiveDays,
                Level::Warning,
                format!("Worked {} consecutive days; the org allows {allowed}", streak.len()),
                json!({ "consecutive_days": streak.len(), "allowed": allowed }),
                &streak,
            ));
        }
    }
    let inactivity = &rules.inactivity;
    if let (true, Some(last)) = (inactivity.enabled, storage::get::<Timestamp>(&format!("active/{user}"))?) {
        let last_day = local_date(&zone, last);
        let idle = last_day.map_or(0, |last_day| working_days_between(last_day, today));
        if idle >= inactivity.working_days {
            holding.push(
                Condition::new(
                    format!("{scope}{}", Rule::Inactivity.name()),
                    Rule::Inactivity,
                    Level::Info,
                    format!("No activity for {} working days: may be blocked", inactivity.working_days),
                    json!({ "last_activity_at": Time(last), "working_days": idle }),
                )
                .about(Some(user.to_owned())),
            );
        }
    }
    reconcile(&scope, holding)
}

/// Working days (Monday to Friday) after `last` up to and including `today`.
pub fn working_days_between(last: NaiveDate, today: NaiveDate) -> u32 {
    let mut count = 0;
    let mut day = last;
    while day < today {
        day = match day.succ_opt() {
            Some(next) => next,
            None => break,
        };
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            count += 1;
        }
    }
    count
}

/// The run of consecutive worked days ending today or yesterday (today may not have begun).
fn streak_ending_near(days: &std::collections::BTreeMap<String, Day>, today: NaiveDate) -> Vec<&Day> {
    let worked = |date: NaiveDate| days.get(&date.format("%Y-%m-%d").to_string()).filter(|day| day.worked_s > 0.0);
    let mut end = today;
    if worked(end).is_none() {
        end = match end.pred_opt() {
            Some(yesterday) => yesterday,
            None => return Vec::new(),
        };
    }
    let mut run = Vec::new();
    let mut date = end;
    while let Some(day) = worked(date) {
        run.push(day);
        match date.pred_opt() {
            Some(previous) => date = previous,
            None => break,
        }
    }
    run.reverse();
    run
}

/// Plugins down or behind, dead letters and bad signatures.
fn platform(rules: &Rules, now: Timestamp) -> Result<Vec<Condition>> {
    let mut holding = Vec::new();
    if rules.plugin_down.enabled {
        for (_, trouble) in storage::scan_all::<PluginTrouble>("plugin/")? {
            let summary = match trouble.what.as_str() {
                "failed" => format!("Plugin {} failed to load", trouble.name),
                _ => format!("Plugin {} is disabled", trouble.name),
            };
            holding.push(
                Condition::new(
                    format!("platform/plugin/{}/{}/{}", trouble.what, trouble.name, Rule::PluginDown.name()),
                    Rule::PluginDown,
                    Level::Critical,
                    summary,
                    json!({ "plugin": trouble.name, "reason": trouble.reason, "at": Time(trouble.at) }),
                )
                .links(vec![format!("/api/v1/plugins/{}", trouble.name)], vec![trouble.event_id.clone()]),
            );
        }
    }
    let lagging = &rules.delivery_lag;
    for (_, lag) in storage::scan_all::<Lag>("lag/")? {
        // The host repeats the report while a plugin is behind: one overdue means it caught up.
        let current = lag.at + (lag.next_report_within_seconds * 2500) as i64 >= now;
        if lagging.enabled && current && lag.lag_seconds > lagging.seconds {
            holding.push(
                Condition::new(
                    format!("platform/lag/{}/{}", lag.plugin, Rule::DeliveryLag.name()),
                    Rule::DeliveryLag,
                    Level::Warning,
                    format!("Plugin {} is more than {} s behind the event log", lag.plugin, lagging.seconds),
                    json!({ "plugin": lag.plugin, "lag_seconds": lag.lag_seconds, "behind": lag.behind, "threshold_seconds": lagging.seconds }),
                )
                .links(vec![format!("/api/v1/plugins/{}", lag.plugin)], vec![lag.event_id.clone()]),
            );
        }
    }
    let hour_ago = now - HOUR as i64;
    let dead: Vec<Incident> =
        storage::scan_all::<Incident>("dead/")?.into_iter().map(|(_, i)| i).filter(|i| i.at >= hour_ago).collect();
    let letters = &rules.dead_letters;
    if letters.enabled && dead.len() >= letters.per_hour as usize {
        holding.push(
            Condition::new(
                format!("platform/{}", Rule::DeadLetters.name()),
                Rule::DeadLetters,
                Level::Warning,
                "Events were dead-lettered in the last hour".into(),
                json!({ "count": dead.len(), "threshold": letters.per_hour, "what": dead.iter().map(|i| i.detail.clone()).collect::<Vec<_>>() }),
            )
            .links(vec!["/api/v1/dead-letters".into()], dead.iter().map(|i| i.event_id.clone()).collect()),
        );
    }
    let signatures = &rules.bad_signatures;
    let mut by_source: std::collections::BTreeMap<String, Vec<Incident>> = std::collections::BTreeMap::new();
    for (_, incident) in storage::scan_all::<Incident>("badsig/")? {
        if incident.at >= hour_ago {
            by_source.entry(incident.detail.clone()).or_default().push(incident);
        }
    }
    for (source, minutes) in by_source
        .into_iter()
        .filter(|(_, minutes)| signatures.enabled && minutes.len() >= signatures.minutes_per_hour as usize)
    {
        holding.push(
            Condition::new(
                format!("platform/bad-signatures/{source}/{}", Rule::BadSignatures.name()),
                Rule::BadSignatures,
                Level::Warning,
                format!("Webhook source {source} keeps receiving deliveries with bad signatures"),
                json!({ "source": source, "minutes": minutes.len(), "threshold_minutes": signatures.minutes_per_hour }),
            )
            .links(Vec::new(), minutes.iter().map(|i| i.event_id.clone()).collect()),
        );
    }
    Ok(holding)
}
