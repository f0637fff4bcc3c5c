//! The health plugin through the real server, on both backends: GitHub
//! deliveries (sent in reverse order), attendance records and a plugin that
//! fails to load become exactly the expected alerts, with severities, labels
//! and provenance; a resolved condition resolves its alert; a changed
//! threshold re-evaluates; a rebuild of the plugin, and then a restart of the
//! server, leave the alert list as it was and notify nobody.

use devpulse_e2e::receiver::Receiver;
use devpulse_e2e::{Backend, Options, TestServer, on_both_backends};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Aggregates (the failure rate, the reliability score) are evaluated on the
/// schedule: every second here.
const CONFIG: &str = "[alerts]\nallow_private_targets = true\nscan_seconds = 1\nretry_seconds = 1\n\
                      [plugins.health.schedules]\nevaluate = 1\n";
const SECRET: &str = "health-test-github-secret";
const RECEIVER_SECRET: &str = "a receiver's secret, 16+ bytes";
const H: i64 = 3_600_000;

fn at(hours_ago: i64) -> String {
    let ms = chrono::Utc::now().timestamp_millis() - hours_ago * H;
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

/// `hour`:00 UTC on the day `days_ago` days before today: working days in
/// Ada's zone (UTC) that never straddle midnight, whatever the time of the run.
fn on_day(days_ago: i64, hour: u32) -> String {
    let day = chrono::Utc::now().date_naive() - chrono::Days::new(days_ago as u64);
    day.and_hms_opt(hour, 0, 0).unwrap().and_utc().to_rfc3339()
}

fn repository() -> Value {
    json!({"full_name": "acme/api", "default_branch": "main"})
}

fn opened(number: u64, hours_ago: i64, reviewers: &[&str], additions: u64) -> Value {
    json!({
        "action": "opened",
        "pull_request": {
            "number": number, "title": format!("Change {number}"),
            "user": {"login": "ada", "type": "User"}, "draft": false,
            "created_at": at(hours_ago), "updated_at": at(hours_ago),
            "closed_at": null, "merged_at": null, "merge_commit_sha": null,
            "head": {"ref": format!("change-{number}"), "sha": format!("{number:040}")},
            "base": {"ref": "main", "sha": "0".repeat(40)},
            "additions": additions, "deletions": 0,
            "requested_reviewers": reviewers.iter().map(|login| json!({"login": login, "type": "User"})).collect::<Vec<_>>(),
        },
        "repository": repository(),
        "sender": {"login": "ada", "type": "User"},
    })
}

fn reviewed(number: u64, opened_hours_ago: i64, hours_ago: i64) -> Value {
    let pull = opened(number, opened_hours_ago, &[], 10)["pull_request"].clone();
    json!({
        "action": "submitted",
        "review": {"id": 9000 + number, "user": {"login": "bea", "type": "User"}, "submitted_at": at(hours_ago), "state": "approved"},
        "pull_request": pull,
        "repository": repository(),
        "sender": {"login": "bea", "type": "User"},
    })
}

fn deployed(id: u64, state: &str, hours_ago: i64) -> Value {
    json!({
        "deployment_status": {"state": state, "environment": "production", "created_at": at(hours_ago)},
        "deployment": {"id": id, "sha": format!("{id:040}"), "environment": "production", "created_at": at(hours_ago + 1)},
        "repository": repository(),
    })
}

/// The open health alerts as `key -> severity`.
async fn open_alerts(server: &TestServer) -> BTreeMap<String, String> {
    let (status, listed) = server.get("/api/v1/alerts?source=health&state=firing&limit=200").await;
    assert_eq!(status, 200, "{listed}");
    listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| (alert["key"].as_str().unwrap().to_owned(), alert["severity"].as_str().unwrap().to_owned()))
        .collect()
}

/// Waits until the open health alerts are `expected` (keys under `platform/`
/// matched by prefix, since they name a temporary file).
async fn wait_for_alerts(server: &TestServer, expected: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let normalise = |alerts: BTreeMap<String, String>| -> BTreeMap<String, String> {
        alerts
            .into_iter()
            .map(|(key, severity)| match key.starts_with("platform/plugin/failed/") {
                true => ("platform/plugin/failed/*".to_owned(), severity),
                false => (key, severity),
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let open = normalise(open_alerts(server).await);
        if &open == expected {
            return open;
        }
        assert!(std::time::Instant::now() < deadline, "open health alerts: {open:#?}\nexpected: {expected:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn expected(ada: &str) -> BTreeMap<String, String> {
    [
        ("pull/acme/api/0000000001/review_waiting", "warning"),
        ("pull/acme/api/0000000001/large_pull", "info"),
        ("deploy/acme/api/deployment/2/failed_deployment", "critical"),
        ("org/change_failure_rate", "warning"),
        ("org/delivery_reliability", "warning"),
        (&format!("user/{ada}/overwork"), "warning"),
        (&format!("user/{ada}/missing_breaks"), "info"),
        ("platform/plugin/failed/*", "critical"),
    ]
    .into_iter()
    .map(|(key, severity)| (key.to_owned(), severity.to_owned()))
    .collect()
}

async fn scenario(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, Options { config: CONFIG.into(), ..Options::default() }).await
    else {
        return;
    };
    let receiver = Receiver::webhook(RECEIVER_SECRET).await;
    let body = json!({"type": "webhook", "url": receiver.url, "secret": RECEIVER_SECRET});
    let (status, channel) =
        server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/alerts/channels/team", Some(&body)).await;
    assert_eq!(status, 201, "{channel}");
    let (ada, ada_token) = server.user_in_zone("developer", "UTC").await;
    let identities = json!({"identities": [{"provider": "github", "login": "ada"}]});
    let (status, user) =
        server.call_as(&server.token, reqwest::Method::PATCH, &format!("/api/v1/users/{ada}"), Some(&identities)).await;
    assert_eq!(status, 200, "{user}");
    let hook = server.configure_hook("github", SECRET).await;

    // Pull request 1 has waited 30 h for a review and changes 500 lines;
    // pull request 2 waited 80 h but was reviewed. A deployment succeeded 40 h
    // ago and the next failed 30 h ago. All sent newest first.
    let deliveries = [
        ("pull_request", opened(1, 30, &["bea"], 500)),
        ("pull_request", opened(2, 80, &["bea"], 10)),
        ("pull_request_review", reviewed(2, 80, 2)),
        ("deployment_status", deployed(1, "success", 40)),
        ("deployment_status", deployed(2, "failure", 30)),
    ];
    for (n, (kind, payload)) in deliveries.iter().enumerate().rev() {
        let body = serde_json::to_vec(payload).unwrap();
        let (status, ack) = server.deliver_github(&hook, SECRET, kind, &format!("d-{n}"), &body).await;
        assert_eq!(status, 202, "{ack}");
    }
    // Ada worked 11 hours without a break on three of the last seven days.
    let records: Vec<Value> = [1, 2, 4]
        .iter()
        .flat_map(|days_ago| {
            let (start, end) = (on_day(*days_ago, 8), on_day(*days_ago, 19));
            [
                json!({"id": format!("in-{days_ago}"), "type": "clock_in", "at": start}),
                json!({"id": format!("out-{days_ago}"), "type": "clock_out", "at": end}),
            ]
        })
        .collect();
    let (status, answer) = server.post_as(&ada_token, "/api/v1/attendance/sync", &json!({ "records": records })).await;
    assert_eq!(status, 200, "{answer}");
    // A plugin file that is not a component fails to load.
    server.install_bytes(b"not a component", "broken.wasm");

    let alerts = wait_for_alerts(&server, &expected(&ada)).await;
    assert_eq!(alerts.len(), 8);

    // Each alert names its rule, its figures and its provenance.
    let (_, listed) = server.get("/api/v1/alerts?source=health&label=rule%3Dreview_waiting").await;
    let waiting = &listed["items"][0];
    assert_eq!(waiting["summary"], "acme/api#1 has waited more than 24 h for a first review");
    assert_eq!(waiting["labels"]["user"], ada.as_str(), "about its author: {waiting}");
    assert_eq!(waiting["details"]["figures"]["threshold_hours"], 24.0);
    assert_eq!(waiting["urls"], json!(["https://github.com/acme/api/pull/1"]), "{waiting}");
    assert_eq!(waiting["details"]["provenance"], json!(["/api/v1/github/pulls/acme/api/1"]));
    let announcement = waiting["event_ids"].as_array().unwrap().last().unwrap().as_str().unwrap().to_owned();
    let (_, event) = server.get(&format!("/api/v1/events/{announcement}")).await;
    assert_eq!(event["kind"], "github.pull.updated", "{event}");
    assert_eq!(event["payload"]["requested_reviewers"], json!(["bea"]));
    // Ada sees her own alerts, and not the org's.
    let (_, mine) = server.get_as(&ada_token, "/api/v1/health/overview").await;
    assert_eq!(mine["team"]["total"], 4, "{mine}");
    let (_, all) = server.get("/api/v1/health/overview").await;
    assert_eq!(all["team"]["total"], 8, "{all}");
    assert_eq!(all["team"]["worst"], "critical");

    // The plugin loads after all: its alert resolves. A success after the
    // failure recovers it.
    let notified =
        server.wait_for(Duration::from_secs(30), || async { (receiver.received().len() >= 8).then_some(()) }).await;
    assert!(notified.is_some(), "each alert notified the channel: {:?}", receiver.received().len());
    server.install_plugin(devpulse_e2e::fixtures::ALARM.as_ref(), "broken.wasm");
    let body = serde_json::to_vec(&deployed(3, "success", 1)).unwrap();
    server.deliver_github(&hook, SECRET, "deployment_status", "d-9", &body).await;
    let mut after = expected(&ada);
    after.remove("platform/plugin/failed/*");
    after.remove("deploy/acme/api/deployment/2/failed_deployment");
    // One failure in three: the score is 66.7 now, not below 60.
    after.remove("org/delivery_reliability");
    wait_for_alerts(&server, &after).await;

    // A higher size threshold resolves the large pull request; a lower wait fires nothing new.
    let (_, rules) = server.get("/api/v1/health/rules").await;
    let mut rules = rules["rules"].clone();
    rules["large_pull"]["lines"] = json!(1000);
    let (status, answer) =
        server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/health/rules", Some(&rules)).await;
    assert_eq!(status, 200, "{answer}");
    after.remove("pull/acme/api/0000000001/large_pull");
    wait_for_alerts(&server, &after).await;

    // A rebuild replays everything: the same alerts stay open, nobody is notified again.
    server.delivered("health", Duration::from_secs(60)).await;
    let (_, before) = server.get("/api/v1/alerts?source=health&limit=200").await;
    let settled = server
        .wait_for(Duration::from_secs(30), || async {
            let count = receiver.received().len();
            tokio::time::sleep(Duration::from_secs(3)).await;
            (receiver.received().len() == count).then_some(count)
        })
        .await
        .unwrap();
    let (status, _) = server.post_empty("/api/v1/plugins/health/rebuild").await;
    assert_eq!(status, 202);
    let done = server
        .wait_for(Duration::from_secs(90), || async {
            let (_, rebuild) = server.get("/api/v1/plugins/health/rebuild").await;
            (rebuild["status"] == "done").then_some(())
        })
        .await;
    assert!(done.is_some(), "the rebuild finishes");
    server.delivered("health", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, rebuilt) = server.get("/api/v1/alerts?source=health&limit=200").await;
    let summary = |page: &Value| -> Vec<(Value, Value, Value)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["id"].clone(), a["state"].clone(), a["severity"].clone()))
            .collect()
    };
    assert_eq!(summary(&rebuilt), summary(&before), "the rebuild changed no alert");
    assert_eq!(receiver.received().len(), settled, "the rebuild notified nobody");

    // A restart, then several scheduled evaluations (every second here): the
    // same alerts stay open, nobody is notified again.
    let server = server.restart().await;
    server
        .wait_for(Duration::from_secs(30), || async {
            let (_, health) = server.plugin("health").await;
            (health["stats"]["on-tick"]["calls"].as_u64().unwrap_or(0) >= 3).then_some(())
        })
        .await
        .expect("health runs again after the restart");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, restarted) = server.get("/api/v1/alerts?source=health&limit=200").await;
    assert_eq!(summary(&restarted), summary(&before), "the restart changed no alert");
    assert_eq!(receiver.received().len(), settled, "the restart notified nobody");
    server.stop().await;
}

on_both_backends!(scenario);

/// The host reports a plugin stuck behind the log (`system.delivery.lagging`,
/// repeated while it lasts); health raises `delivery_lag` and resolves it on
/// a scheduled evaluation once the reports stop. The schedule runs every
/// second here (`CONFIG`): the operator's override of the plugin's 300 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_behind_the_log_raises_a_lag_alert_until_it_catches_up() {
    let config = format!(
        "{CONFIG}[delivery]\nlag_report_seconds = 1\nlag_report_every_seconds = 1\nmax_attempts = 1000\n\
         backoff_ms = 200\nmax_backoff_ms = 500\n"
    );
    let Some(server) = TestServer::start_with(Backend::Sqlite, Options { config, ..Options::default() }).await else {
        return;
    };
    let (_, health) = server.plugin("health").await;
    assert_eq!(health["schedules"][0]["interval_seconds"], 1, "{health}");
    let (_, rules) = server.get("/api/v1/health/rules").await;
    let mut rules = rules["rules"].clone();
    rules["delivery_lag"]["seconds"] = json!(2);
    let (status, answer) =
        server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/health/rules", Some(&rules)).await;
    assert_eq!(status, 200, "{answer}");
    server.install_plugin(devpulse_e2e::fixtures::ALARM.as_ref(), "alarm.wasm");
    server.wait_for_plugin("alarm", "1.0.0").await;
    let hook = server.configure_hook("acme", devpulse_e2e::alarm::SECRET).await;
    let until = chrono::Utc::now().timestamp_millis() + 12_000;
    devpulse_e2e::alarm::tell(&server, &hook, "stuck", &json!({"raise": [], "fail_until": until})).await;

    let key = "platform/lag/alarm/delivery_lag";
    let fired = server
        .wait_for(Duration::from_secs(30), || async { lag_alert(&server).await.filter(|a| a["state"] == "firing") })
        .await
        .expect("a lag alert fires while alarm is stuck");
    assert_eq!(fired["key"], key);
    assert_eq!(fired["details"]["figures"]["plugin"], "alarm", "{fired}");
    let resolved = server
        .wait_for(Duration::from_secs(60), || async { lag_alert(&server).await.filter(|a| a["state"] == "resolved") })
        .await;
    assert!(resolved.is_some(), "the alert resolves once alarm has caught up");
    server.stop().await;
}

/// The newest `delivery_lag` alert, if any.
async fn lag_alert(server: &TestServer) -> Option<Value> {
    let (_, listed) = server.get("/api/v1/alerts?source=health&label=rule%3Ddelivery_lag").await;
    listed["items"].as_array().and_then(|items| items.first().cloned())
}
