//! The health rules through the SDK's in-memory host, with expectations
//! worked out by hand: pull requests, reviews, deployments, attendance days
//! and a plugin failure, folded in either order; exactly the expected alerts
//! fire with their severities and links, resolve when their conditions clear,
//! and follow a change of thresholds.

use devpulse_sdk::Role;
use devpulse_sdk::alerts::Severity;
use devpulse_sdk::testing::TestHost;
use health::{EVALUATE, Health};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const H: i64 = 3_600_000;
const D: i64 = 24 * H;

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

fn now() -> i64 {
    devpulse_sdk::now()
}

/// A `github.pull.updated` payload: open, ready at `ready` hours ago.
fn pull(number: u64, ready_hours_ago: Option<i64>, reviewers: &[&str], size: u64) -> Value {
    let now = now();
    json!({
        "repo": "acme/api", "number": number, "title": format!("Change {number}"),
        "url": format!("https://github.com/acme/api/pull/{number}"),
        "author": "ada", "author_user": "user-ada", "author_bot": false,
        "state": "open", "draft": false,
        "created_at": at(now - ready_hours_ago.unwrap_or(1) * H - H),
        "ready_at": ready_hours_ago.map(|hours| at(now - hours * H)),
        "first_review_at": null,
        "requested_reviewers": reviewers, "additions": size, "deletions": 0, "size": size,
        "last_commit_at": null, "merged_at": null, "closed_at": null,
    })
}

fn deployment(id: &str, outcome: &str, hours_ago: i64) -> Value {
    json!({
        "repo": "acme/api", "id": id, "environment": "production", "outcome": outcome,
        "at": at(now() - hours_ago * H), "sha": null, "event_ids": [format!("e-{id}")],
    })
}

fn day(days_ago: i64, worked_hours: f64, breaches: &[&str]) -> Value {
    let date = chrono::DateTime::from_timestamp_millis(now() - days_ago * D).unwrap().date_naive();
    json!({
        "user": "user-ada", "date": date.to_string(), "time_zone": "UTC",
        "worked_s": worked_hours * 3600.0, "idle_s": 0.0, "active_s": worked_hours * 3600.0,
        "breaks_s": 3600.0, "sessions": 1, "breaches": breaches,
    })
}

/// The scenario's facts, in the order the log would hold them.
fn facts() -> Vec<(&'static str, Value)> {
    let mut facts = vec![
        // Waiting 30 h: a warning. Waiting 80 h: critical; 500 lines: large.
        ("github.pull.updated", pull(1, Some(30), &["bea"], 120)),
        ("github.pull.updated", pull(2, Some(80), &["bea"], 500)),
        // Reviewed: no wait, whatever its length; but open for 8 days: stale.
        ("github.pull.updated", {
            let mut reviewed = pull(3, Some(90), &["bea"], 10);
            reviewed["first_review_at"] = json!(at(now() - 2 * H));
            reviewed["created_at"] = json!(at(now() - 8 * D));
            reviewed
        }),
        // A draft: no review is due, and its requests do not load anyone.
        ("github.pull.updated", {
            let mut draft = pull(4, None, &["bea"], 10);
            draft["draft"] = json!(true);
            draft
        }),
        ("github.pull.updated", pull(5, Some(2), &["bea", "cy"], 10)),
        ("github.pull.updated", pull(6, Some(2), &["bea"], 10)),
        // A success, then a failure 30 h ago with nothing after it: unrecovered; 1 of 2 failed.
        ("github.deployment.updated", deployment("deployment/1", "success", 40)),
        ("github.deployment.updated", deployment("deployment/2", "failure", 30)),
        // Over the daily maximum on 3 of the last 7 days (one of them without enough breaks).
        ("attendance.day.updated", day(1, 11.0, &["max_daily_hours"])),
        ("attendance.day.updated", day(2, 11.0, &["max_daily_hours", "min_breaks"])),
        ("attendance.day.updated", day(4, 11.0, &["max_daily_hours"])),
        ("attendance.day.updated", day(9, 11.0, &["max_daily_hours"])),
        ("system.plugin.failed", json!({"source": "plugins/broken.wasm", "plugin": null, "reason": "not a component"})),
    ];
    // Ada's attendance makes her known; nothing makes her inactive (she worked yesterday).
    facts.push(("github.pull.updated", pull(7, Some(1), &[], 10)));
    facts
}

fn host() -> TestHost<Health> {
    TestHost::<Health>::new().with_role(Role::Admin)
}

/// The open alerts as `key -> (severity, user label)`.
fn open(host: &TestHost<Health>) -> BTreeMap<String, (String, Option<String>)> {
    host.alerts()
        .into_iter()
        .map(|alert| {
            let severity = match alert.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let user = alert.labels.iter().find(|(name, _)| name == "user").map(|(_, value)| value.clone());
            (alert.key, (severity.to_owned(), user))
        })
        .collect()
}

fn expected() -> BTreeMap<String, (String, Option<String>)> {
    let ada = Some("user-ada".to_owned());
    [
        ("pull/acme/api/0000000001/review_waiting", "warning", ada.clone()),
        ("pull/acme/api/0000000002/review_waiting", "critical", ada.clone()),
        ("pull/acme/api/0000000002/large_pull", "info", ada.clone()),
        ("pull/acme/api/0000000003/stale_pull", "warning", ada.clone()),
        ("reviewer/bea/review_load", "warning", None),
        ("deploy/acme/api/deployment/2/failed_deployment", "critical", None),
        ("org/change_failure_rate", "warning", None),
        // Only the failure rate is known: 100 × (1 − 0.5) = 50, below 60.
        ("org/delivery_reliability", "warning", None),
        ("user/user-ada/overwork", "warning", ada.clone()),
        ("user/user-ada/missing_breaks", "info", ada),
        ("platform/plugin/failed/plugins/broken.wasm/plugin_down", "critical", None),
    ]
    .into_iter()
    .map(|(key, severity, user)| (key.to_owned(), (severity.to_owned(), user)))
    .collect()
}

/// Folds `facts`, then runs the schedule, which evaluates the aggregates
/// (change failure rate, reliability score) as well.
fn deliver(host: &TestHost<Health>, facts: &[(&str, Value)]) {
    for (kind, payload) in facts {
        host.event(kind, payload.clone()).unwrap();
    }
    host.tick(EVALUATE, now()).unwrap();
}

#[test]
fn the_scenario_raises_exactly_the_expected_alerts_in_either_order() {
    let in_order = host();
    deliver(&in_order, &facts());
    assert_eq!(open(&in_order), expected());

    let reversed = host();
    let mut facts = facts();
    facts.reverse();
    deliver(&reversed, &facts);
    assert_eq!(open(&reversed), expected());

    // The schedule finds nothing new: nothing changed.
    let before = format!("{:?}", in_order.alerts());
    in_order.tick(EVALUATE, now()).unwrap();
    assert_eq!(format!("{:?}", in_order.alerts()), before);
}

#[test]
fn alerts_name_their_rule_figures_and_provenance() {
    let host = host();
    deliver(&host, &facts());
    let alerts = host.alerts();
    let waiting = alerts.iter().find(|alert| alert.key == "pull/acme/api/0000000002/review_waiting").unwrap();
    assert!(waiting.labels.contains(&("rule".into(), "review_waiting".into())));
    assert_eq!(waiting.summary, "acme/api#2 has waited more than 72 h for a first review");
    let details: Value = serde_json::from_str(waiting.details.as_deref().unwrap()).unwrap();
    assert_eq!(details["rule"], "review_waiting");
    assert_eq!(details["figures"]["waited_hours"], 80.0);
    assert_eq!(details["figures"]["threshold_hours"], 72.0);
    assert_eq!(waiting.urls, vec!["https://github.com/acme/api/pull/2".to_owned()]);
    assert_eq!(details["provenance"], json!(["/api/v1/github/pulls/acme/api/2"]), "its timeline");
    assert_eq!(waiting.event_ids.len(), 1, "the announcement it was read from");

    let rate = alerts.iter().find(|alert| alert.key == "org/change_failure_rate").unwrap();
    let details: Value = serde_json::from_str(rate.details.as_deref().unwrap()).unwrap();
    assert_eq!(details["figures"]["percent"], 50.0);
    assert_eq!(rate.event_ids, vec!["e-deployment/2".to_owned()]);

    let overwork = alerts.iter().find(|alert| alert.key == "user/user-ada/overwork").unwrap();
    assert_eq!(overwork.summary, "Worked above the daily maximum on 3 of the last 7 days");
    let details: Value = serde_json::from_str(overwork.details.as_deref().unwrap()).unwrap();
    assert!(details["provenance"][0].as_str().unwrap().starts_with("/api/v1/attendance/days?user=user-ada&from="));
    assert_eq!(overwork.event_ids.len(), 3, "the three days' announcements");
}

#[test]
fn alerts_resolve_when_their_conditions_clear() {
    let host = host();
    deliver(&host, &facts());
    let mut reviewed = pull(1, Some(30), &[], 120);
    reviewed["first_review_at"] = json!(at(now() - H));
    let mut merged = pull(2, Some(80), &["bea"], 500);
    merged["state"] = json!("merged");
    deliver(
        &host,
        &[
            ("github.pull.updated", reviewed),
            ("github.pull.updated", merged),
            ("github.deployment.updated", deployment("deployment/3", "success", 1)),
            (
                "system.plugin.loaded",
                json!({"plugin": "broken", "version": "1", "wit_version": "0.1.5", "source": "plugins/broken.wasm"}),
            ),
        ],
    );
    let keys: Vec<String> = open(&host).into_keys().collect();
    // Bea has 3 pending requests left (#3, #5, #6); 1 failure in 3 deployments is still above 15%,
    // and the score, 100 × (1 − 1/3) = 66.7, is not below 60 any more.
    assert_eq!(
        keys,
        vec![
            "org/change_failure_rate",
            "pull/acme/api/0000000003/stale_pull",
            "user/user-ada/missing_breaks",
            "user/user-ada/overwork",
        ]
    );
}

#[test]
fn a_changed_threshold_reevaluates_and_a_switched_off_rule_resolves() {
    let host = host();
    deliver(&host, &facts());
    let mut rules = host.get("/rules").unwrap().body.unwrap()["rules"].clone();
    rules["review_waiting"]["warning_hours"] = json!(48);
    rules["large_pull"]["lines"] = json!(600);
    rules["overwork"]["enabled"] = json!(false);
    let answer = host.request(devpulse_sdk::Method::Put, "/rules", Some(rules)).unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(host.deliver_emitted().unwrap(), 1);
    let open = open(&host);
    assert!(!open.contains_key("pull/acme/api/0000000001/review_waiting"), "30 h is under 48 h now");
    assert!(!open.contains_key("pull/acme/api/0000000002/large_pull"), "500 lines is under 600 now");
    assert!(!open.contains_key("user/user-ada/overwork"), "switched off");
    assert_eq!(open["pull/acme/api/0000000002/review_waiting"].0, "critical");
}

#[test]
fn a_critical_level_below_the_warning_fires_critical_at_once() {
    let host = host();
    let mut rules = host.get("/rules").unwrap().body.unwrap()["rules"].clone();
    rules["review_waiting"]["critical_hours"] = json!(10);
    host.request(devpulse_sdk::Method::Put, "/rules", Some(rules)).unwrap();
    host.deliver_emitted().unwrap();
    host.event("github.pull.updated", pull(8, Some(12), &[], 10)).unwrap();
    assert_eq!(open(&host)["pull/acme/api/0000000008/review_waiting"].0, "critical");
}

#[test]
fn a_warning_becomes_critical_with_time_and_one_alert_stays_one() {
    let host = host();
    host.event("github.pull.updated", pull(9, Some(30), &[], 10)).unwrap();
    let of_the_pull = |host: &TestHost<Health>| -> BTreeMap<String, String> {
        open(host)
            .into_iter()
            .filter(|(key, _)| key.starts_with("pull/"))
            .map(|(key, (level, _))| (key, level))
            .collect()
    };
    let waiting = "pull/acme/api/0000000009/review_waiting".to_owned();
    assert_eq!(of_the_pull(&host), BTreeMap::from([(waiting.clone(), "warning".to_owned())]));
    host.tick(EVALUATE, now() + 50 * H).unwrap();
    assert_eq!(of_the_pull(&host), BTreeMap::from([(waiting.clone(), "critical".to_owned())]));
    host.tick(EVALUATE, now() + 7 * D).unwrap();
    let stale = "pull/acme/api/0000000009/stale_pull".to_owned();
    assert_eq!(of_the_pull(&host), BTreeMap::from([(waiting, "critical".to_owned()), (stale, "warning".to_owned())]));
}

#[test]
fn a_lag_report_fires_until_the_reports_stop() {
    let host = host();
    let report = json!({"plugin": "github", "behind": 900, "oldest_pending_at": at(now() - 400_000),
                        "lag_seconds": 400, "next_report_within_seconds": 60});
    host.event("system.delivery.lagging", report.clone()).unwrap();
    assert_eq!(open(&host)["platform/lag/github/delivery_lag"].0, "warning");
    // A report still due (2.5 intervals) keeps it; once overdue, the plugin has caught up.
    host.tick(EVALUATE, now() + 120_000).unwrap();
    assert!(open(&host).contains_key("platform/lag/github/delivery_lag"));
    host.tick(EVALUATE, now() + 160_000).unwrap();
    assert!(!open(&host).contains_key("platform/lag/github/delivery_lag"));
    // A lag under the threshold fires nothing.
    let mut small = report;
    small["lag_seconds"] = json!(200);
    host.event("system.delivery.lagging", small).unwrap();
    assert!(!open(&host).contains_key("platform/lag/github/delivery_lag"));
}

#[test]
fn inactivity_counts_working_days_in_the_persons_zone() {
    use chrono::NaiveDate;
    use health::evaluate::working_days_between;
    let date = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    // Thursday to the next Tuesday: Friday, Monday, Tuesday.
    assert_eq!(working_days_between(date("2026-11-26"), date("2026-12-01")), 3);
    assert_eq!(working_days_between(date("2026-11-27"), date("2026-11-30")), 1);
    assert_eq!(working_days_between(date("2026-11-30"), date("2026-11-30")), 0);

    let host = host();
    host.event("attendance.day.updated", day(10, 8.0, &[])).unwrap();
    host.tick(EVALUATE, now()).unwrap();
    let open = open(&host);
    assert_eq!(open["user/user-ada/inactivity"], ("info".to_owned(), Some("user-ada".to_owned())));
    let alert = host.alerts().into_iter().find(|alert| alert.key == "user/user-ada/inactivity").unwrap();
    assert_eq!(alert.summary, "No activity for 3 working days: may be blocked");
}

#[test]
fn the_overview_shows_a_developer_their_own_and_a_manager_everything() {
    let host = host();
    deliver(&host, &facts());
    let manager = host.as_caller("boss", Role::Manager).get("/overview").unwrap().body.unwrap();
    assert_eq!(manager["team"]["total"], 11);
    assert_eq!(manager["rules"].as_array().unwrap().len(), 16);
    assert_eq!(manager["team"]["worst"], "critical");
    assert_eq!(manager["people"][0]["user"], "user-ada");
    assert_eq!(manager["people"][0]["total"], 6);
    assert_eq!(manager["people"][0]["by_rule"]["review_waiting"], 2);
    let ada = host.as_caller("user-ada", Role::Developer).get("/overview").unwrap().body.unwrap();
    assert_eq!(ada["team"]["total"], 6);
    let bea = host.as_caller("user-bea", Role::Developer).get("/overview").unwrap().body.unwrap();
    assert_eq!(bea["team"]["total"], 0);
    assert_eq!(bea["people"], json!([]));
}

#[test]
fn a_failed_workspace_raises_an_alert_about_its_owner_until_it_runs() {
    let host = host();
    let workspace = |status: &str, failure: Option<&str>| {
        json!({
            "id": "ws-1", "owner": "user-ada", "repo": "acme/api", "branch": "main", "tier": "micro",
            "status": status, "previous": "starting", "reason": "cluster", "failure": failure,
            "at": at(now()), "preview": null,
        })
    };
    host.event("k8s.workspace.updated", workspace("failed", Some("ImagePullBackOff: Back-off pulling image"))).unwrap();
    let alerts = host.alerts();
    let alert = alerts.iter().find(|alert| alert.key == "workspace/ws-1/workspace_failed").expect("an alert");
    assert!(alert.summary.contains("ImagePullBackOff"), "{}", alert.summary);
    assert!(alert.labels.iter().any(|(name, value)| name == "user" && value == "user-ada"));
    host.event("k8s.workspace.updated", workspace("running", None)).unwrap();
    assert!(host.alerts().iter().all(|alert| alert.key != "workspace/ws-1/workspace_failed"), "resolved");
}
