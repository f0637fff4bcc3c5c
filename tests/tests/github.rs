//! The bundled `github` plugin and the metrics store through the real server:
//! GitHub's own example payloads, the hand-computed scenario of
//! `tests/fixtures/github/scenario.json` (in order, and reversed with duplicate
//! deliveries), a rebuild, and `/api/v1/metrics` over the points it records.

use devpulse_e2e::fake_github::FakeGithubServer;
use devpulse_e2e::{Backend, Options, TestServer, delivery_to, in_ci};
use fake_github::Limit;
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "github-plugin-secret";
const H: f64 = 3600.0;
const WINDOW: &str = "from=2026-11-02T00:00:00Z&to=2026-11-09T00:00:00Z";

/// The kinds the plugin consumes.
const CONSUMED: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "push",
    "deployment",
    "deployment_status",
    "workflow_run",
    "installation",
];

fn scenario() -> Vec<(String, String, Value)> {
    let scenario: Value = serde_json::from_str(include_str!("../fixtures/github/scenario.json")).unwrap();
    scenario["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let kind = event["kind"].as_str().unwrap().to_owned();
            (kind, event["delivery"].as_str().unwrap().to_owned(), event["payload"].clone())
        })
        .collect()
}

/// Delivers signed, and returns the id of the last event stored.
async fn deliver_all(server: &TestServer, hook: &str, events: &[(String, String, Value)]) -> String {
    let mut last = String::new();
    for (kind, delivery, payload) in events {
        let body = serde_json::to_vec(payload).unwrap();
        let (status, ack) = server.deliver_github(hook, SECRET, kind, delivery, &body).await;
        assert_eq!(status, 202, "{kind} {delivery}: {ack}");
        if ack["duplicate"] == false {
            last = ack["event_id"].as_str().unwrap().to_owned();
        }
    }
    last
}

/// Waits until the plugin has handled `event_id` (and so everything before it).
async fn caught_up(server: &TestServer, event_id: &str) {
    let delivered = server
        .wait_for(Duration::from_secs(120), || async {
            let (_, event) = server.get(&format!("/api/v1/events/{event_id}")).await;
            (delivery_to(&event, "github")["status"] == "delivered").then_some(())
        })
        .await;
    assert!(delivered.is_some(), "the github plugin did not handle {event_id}");
    let (_, letters) = server.get("/api/v1/dead-letters").await;
    assert_eq!(letters["items"], json!([]), "no delivery failed");
}

fn within_1_percent(actual: &Value, expected: f64, what: &str) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("{what} is {actual}"));
    assert!((actual - expected).abs() <= 0.01 * expected, "{what}: {actual} is not within 1% of {expected}");
}

/// Every example GitHub publishes of the kinds the plugin consumes, signed and
/// delivered: each one handled, none dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_examples_of_consumed_kinds_are_handled() {
    let tools = std::env::var("DEVPULSE_TOOLS_DIR").unwrap_or_else(|_| "/var/tmp/devpulse-tools".into());
    let path = format!("{tools}/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if !in_ci() => return eprintln!("skipping: {path} is missing ({err}); run scripts/setup --test"),
        Err(err) => panic!("{path} is missing with CI=true: {err}"),
    };
    let catalogue: Vec<Value> = serde_json::from_str(&text).unwrap();
    let mut events = Vec::new();
    for entry in catalogue.iter().filter(|entry| CONSUMED.contains(&entry["name"].as_str().unwrap_or_default())) {
        let kind = entry["name"].as_str().unwrap();
        for (index, example) in entry["examples"].as_array().unwrap().iter().enumerate() {
            events.push((kind.to_owned(), format!("{kind}-{index}"), example.clone()));
        }
    }
    let kinds: std::collections::BTreeSet<&str> = events.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(kinds.len(), CONSUMED.len(), "examples of every consumed kind: {kinds:?}");
    let Some(server) = TestServer::start(Backend::Sqlite).await else { return };
    let hook = server.configure_hook("github", SECRET).await;
    let last = deliver_all(&server, &hook, &events).await;
    caught_up(&server, &last).await;
    let (status, pulls) = server.get("/api/v1/github/pulls?limit=200").await;
    assert_eq!(status, 200, "{pulls}");
    assert!(!pulls["items"].as_array().unwrap().is_empty(), "the examples' pull requests are listed");
    server.stop().await;
}

async fn scenario_over_http(backend: Backend, shuffled: bool) {
    let Some(server) = TestServer::start(backend).await else { return };
    let hook = server.configure_hook("github", SECRET).await;
    let mut events = scenario();
    if shuffled {
        // Newest first, and every delivery sent twice (the second is acknowledged, not stored).
        events.reverse();
        events = events.into_iter().flat_map(|event| [event.clone(), event]).collect();
    }
    let last = deliver_all(&server, &hook, &events).await;
    caught_up(&server, &last).await;
    check_scenario(&server).await;

    // A rebuild replays the log into a new generation: the same figures.
    let (status, started) = server.post_empty("/api/v1/plugins/github/rebuild").await;
    assert_eq!(status, 202, "{started}");
    let done = server
        .wait_for(Duration::from_secs(120), || async {
            let (_, progress) = server.get("/api/v1/plugins/github/rebuild").await;
            (progress["status"] == "done").then_some(progress)
        })
        .await;
    assert!(done.is_some(), "the rebuild finishes");
    check_scenario(&server).await;
    check_metrics_api(&server).await;
    server.stop().await;
}

async fn check_scenario(server: &TestServer) {
    let (status, first) = server.get("/api/v1/github/pulls/acme/api/1").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        [&first["cycle_time_s"], &first["coding_time_s"], &first["pickup_time_s"], &first["review_time_s"]],
        [&json!(9.0 * H), &json!(4.0 * H), &json!(2.0 * H), &json!(3.0 * H)]
    );
    assert_eq!((first["deploy_time_s"].as_f64(), first["rework_commits"].as_u64()), (Some(H), Some(1)));
    let (_, event) =
        server.get(&format!("/api/v1/events/{}", first["timeline"][0]["event_id"].as_str().unwrap())).await;
    assert_eq!(event["kind"], "github.push", "the first commit came from a push: {event}");

    let (status, summary) = server.get(&format!("/api/v1/github/summary?{WINDOW}&include=items")).await;
    assert_eq!(status, 200, "{summary}");
    let all = &summary["groups"][0];
    assert_eq!(all["merged"], 3);
    // Percentiles come from sketches: within 1% of the hand-computed values.
    within_1_percent(&all["cycle_time_s"]["p50"], 3.0 * H, "cycle p50");
    within_1_percent(&all["coding_time_s"]["p50"], H, "coding p50");
    within_1_percent(&all["pickup_time_s"]["p90"], 2.0 * H, "pickup p90");
    within_1_percent(&all["review_time_s"]["p50"], 3.0 * H, "review p50");
    within_1_percent(&all["deploy_time_s"]["p50"], H, "deploy p50");
    within_1_percent(&all["median_size"], 15.0, "median size");
    assert_eq!((all["review_coverage"].as_f64(), all["rework_rate"].as_f64()), (Some(1.0 / 3.0), Some(1.0 / 3.0)));
    assert_eq!(all["delivery_reliability"]["score"], json!(59.7));
    assert_eq!(summary["items"].as_array().unwrap().len(), 3);

    let (status, dora) = server.get(&format!("/api/v1/github/dora?{WINDOW}")).await;
    assert_eq!(status, 200, "{dora}");
    assert_eq!(dora["basis"], "deployments");
    assert_eq!(dora["deployment_frequency"]["total"], 2);
    assert_eq!(dora["deployment_frequency"]["band"], "high");
    within_1_percent(&dora["lead_time_for_changes"]["p50_s"], 10.0 * H, "lead time p50");
    assert_eq!(dora["change_failure_rate"]["rate"].as_f64(), Some(1.0 / 3.0));
    within_1_percent(&dora["failed_deployment_recovery_time"]["p50_s"], 75_000.0, "recovery p50");
    assert_eq!(dora["failed_deployment_recovery_time"]["band"], "high");
}

async fn check_metrics_api(server: &TestServer) {
    let (status, series) = server.get("/api/v1/metrics/series?plugin=github&name=pr_cycle_time_s").await;
    assert_eq!(status, 200, "{series}");
    let authors: Vec<&str> =
        series["items"].as_array().unwrap().iter().map(|item| item["labels"]["author"].as_str().unwrap()).collect();
    assert_eq!(authors, ["ann", "bob", "cat"], "one series per label set");

    // Day buckets in UTC come from daily rollups; in Los Angeles from hourly
    // ones; in Kolkata (+05:30) from raw points. The same three merges each time.
    let query = |tz: &str| {
        format!("/api/v1/metrics/query?plugin=github&name=pr_cycle_time_s&{WINDOW}&step=1d&agg=count&tz={tz}")
    };
    let starts = |result: &Value| -> Vec<(String, u64)> {
        result["series"][0]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|bucket| (bucket["start"].as_str().unwrap().to_owned(), bucket["count"].as_u64().unwrap()))
            .collect()
    };
    for (tz, expected) in [
        ("UTC", ["2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00", "2026-11-04T00:00:00+00:00"]),
        (
            "America/Los_Angeles",
            ["2026-11-02T00:00:00-08:00", "2026-11-03T00:00:00-08:00", "2026-11-04T00:00:00-08:00"],
        ),
        ("Asia/Kolkata", ["2026-11-02T05:30:00+05:30", "2026-11-03T00:00:00+05:30", "2026-11-04T00:00:00+05:30"]),
    ] {
        let (status, result) = server.get(&query(tz)).await;
        assert_eq!(status, 200, "{result}");
        let expected: Vec<(String, u64)> = expected.iter().map(|start| (start.to_string(), 1)).collect();
        assert_eq!(starts(&result), expected, "{tz}");
    }

    let path = format!(
        "/api/v1/metrics/query?plugin=github&name=pr_size&{WINDOW}&agg=sum&group_by=author&filter=repo=acme/api"
    );
    let (status, sizes) = server.get(&path).await;
    assert_eq!(status, 200, "{sizes}");
    let by_author: Vec<(&str, f64)> = sizes["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| (group["labels"]["author"].as_str().unwrap(), group["buckets"][0]["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(by_author, [("ann", 120.0), ("bob", 15.0), ("cat", 2.0)]);
    let (_, nothing) = server.get(&format!("{path}&filter=repo=acme/other")).await;
    assert_eq!(nothing["series"], json!([]));

    for (bad, why) in [
        (format!("/api/v1/metrics/query?plugin=github&name=pr_size&{WINDOW}&step=2d"), "step"),
        (format!("/api/v1/metrics/query?plugin=github&name=pr_size&{WINDOW}&agg=p99"), "agg"),
        (format!("/api/v1/metrics/query?plugin=github&name=pr_size&{WINDOW}&tz=Mars/Base"), "time zone"),
        (format!("/api/v1/metrics/query?plugin=github&name=pr_size&{WINDOW}&filter=repo"), "label=value"),
    ] {
        let (status, problem) = server.get(&bad).await;
        assert_eq!(status, 400, "{bad}: {problem}");
        assert!(problem["detail"].as_str().unwrap_or_default().contains(why), "{bad}: {problem}");
    }
    // A range ending before it starts holds nothing.
    let reversed = "/api/v1/metrics/query?plugin=github&name=pr_size&from=2026-11-09T00:00:00Z&to=2026-11-02T00:00:00Z";
    let (status, empty) = server.get(reversed).await;
    assert_eq!((status, &empty["series"], &empty["to"]), (200, &json!([]), &json!("2026-11-09T00:00:00+00:00")));
    let (_, developer) = server.user_with_role("developer").await;
    let (status, _) = server.get_as(&developer, &query("UTC")).await;
    assert_eq!(status, 403, "the raw metrics are for managers and above");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_in_order_on_sqlite() {
    scenario_over_http(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_reversed_and_repeated_on_postgres() {
    scenario_over_http(Backend::Postgres, true).await;
}

const TOKEN: &str = "fake-github-token";

/// The plugin's settings for the fake GitHub at `api_url`, with `extra` settings.
fn fake_github_config(api_url: &str, extra: &str) -> Options {
    let config = format!(
        "[plugins.github]\ngrants = [\"http\"]\nhttp_allow = [\"127.0.0.1\"]\n\n\
         [plugins.github.settings]\ntoken = \"{TOKEN}\"\napi_url = \"{api_url}\"\n{extra}"
    );
    Options { config, ..Options::default() }
}

async fn backfill_progress(server: &TestServer, id: &str) -> Value {
    let (status, progress) = server.get(&format!("/api/v1/github/backfill/{id}")).await;
    assert_eq!(status, 200, "{progress}");
    progress
}

/// Half the scenario by webhook, the whole of it by a backfill from the fake
/// GitHub (paginated, rate limited, interrupted by a restart), then the other
/// half by webhook: the hand-computed figures, nothing counted twice, and no
/// page read twice across the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_from_github_resumes_after_a_restart_and_counts_once() {
    let fake = FakeGithubServer::start(TOKEN, |fake| {
        fake.limit = Some(Limit { per_window: 10, window_ms: 2_000 });
        fake.secondary = vec![(4, 403, 1)];
    })
    .await;
    let Some(server) = TestServer::start_with(Backend::Sqlite, fake_github_config(&fake.url, "")).await else {
        return;
    };
    let hook = server.configure_hook("github", SECRET).await;
    let events = scenario();
    let (before, after) = events.split_at(events.len() / 2);
    let last = deliver_all(&server, &hook, before).await;
    caught_up(&server, &last).await;

    let (status, problem) =
        server.post("/api/v1/github/backfill", &json!({"repo": "acme/none", "since": "2026-11-01T00:00:00Z"})).await;
    assert_eq!(status, 404, "an unknown repository is refused at once: {problem}");
    let (status, job) =
        server.post("/api/v1/github/backfill", &json!({"repo": "acme/api", "since": "2026-11-01T00:00:00Z"})).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let (_, developer) = server.user_with_role("developer").await;
    assert_eq!(server.get_as(&developer, &format!("/api/v1/github/backfill/{id}")).await.0, 403);

    // Restart while it waits for GitHub's rate limit, after a few pull requests.
    let paused = server
        .wait_for(Duration::from_secs(60), || async {
            let progress = backfill_progress(&server, &id).await;
            (progress["state"] == "waiting" && progress["items"]["pulls"].as_u64() >= Some(1)).then_some(progress)
        })
        .await
        .expect("the backfill pauses for the rate limit");
    assert!(paused["eta_s"].as_f64().is_some(), "{paused}");
    let server = server.restart().await;
    let done = server
        .wait_for(Duration::from_secs(120), || async {
            let progress = backfill_progress(&server, &id).await;
            assert_ne!(progress["state"], "failed", "{progress}");
            (progress["state"] == "done").then_some(progress)
        })
        .await
        .expect("the backfill finishes after the restart");
    assert_eq!(done["items"], json!({"pulls": 4, "deployments": 3, "workflow_runs": 0}));
    assert!(done["rate_limit_waits"].as_u64().unwrap() >= 3, "{done}");
    assert!(done["pages_done"].as_u64() >= paused["pages_done"].as_u64(), "progress survived the restart");
    assert_eq!(fake.requests_for("/repos/acme/api/pulls"), 2, "each listing page read once, restart or not");

    let last = deliver_all(&server, &hook, after).await;
    caught_up(&server, &last).await;
    check_scenario(&server).await;
    // Pull request 4's webhooks came after the backfill: its moments name the backfill's events.
    let (_, fourth) = server.get("/api/v1/github/pulls/acme/api/4").await;
    let kinds = timeline_kinds(&server, &fourth).await;
    assert!(kinds.contains("github.backfill.pull"), "backfilled moments name their event: {kinds:?}");
    server.stop().await;
}

/// The kinds of the events a pull request's timeline names.
async fn timeline_kinds(server: &TestServer, pull: &Value) -> std::collections::BTreeSet<String> {
    let mut kinds = std::collections::BTreeSet::new();
    for moment in pull["timeline"].as_array().unwrap() {
        let (_, event) = server.get(&format!("/api/v1/events/{}", moment["event_id"].as_str().unwrap())).await;
        kinds.insert(event["kind"].as_str().unwrap_or_default().to_owned());
    }
    kinds
}

/// `PUT /api/v1/github/redeliver` with `hooks`.
async fn watch(server: &TestServer, hooks: Value) -> Value {
    let body = json!({ "hooks": hooks });
    let (status, watched) =
        server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/github/redeliver", Some(&body)).await;
    assert_eq!(status, 200, "{watched}");
    watched
}

/// A delivery GitHub failed to make is asked for again as soon as the hook is
/// watched, reaches DevPulse signed, and is not asked for once it succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_webhook_deliveries_are_redelivered() {
    let fake = FakeGithubServer::start(TOKEN, |_| {}).await;
    let Some(server) = TestServer::start_with(Backend::Postgres, fake_github_config(&fake.url, "")).await else {
        return;
    };
    let hook = server.configure_hook("github", SECRET).await;
    fake.deliver_to(&server.url(&hook), SECRET);
    // Both schedules (backfill, redeliver) tick once at start. Wait for that:
    // a first redeliver tick after the watch below would ask again, racing it.
    let ticked = server
        .wait_for(Duration::from_secs(60), || async {
            let (_, github) = server.plugin("github").await;
            (github["stats"]["on-tick"]["calls"].as_u64() >= Some(2)).then_some(())
        })
        .await;
    assert!(ticked.is_some(), "the schedules' first ticks: {:?}", server.plugin("github").await);
    let (kind, guid, payload) = scenario().into_iter().find(|(kind, _, _)| kind == "pull_request").unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    {
        let mut github = fake.fake.lock().unwrap();
        github.record_delivery("delivered-fine", "ping", json!({}), 202, false, now - 120_000);
        github.record_delivery(&guid, &kind, payload, 502, false, now - 60_000);
    }
    let (status, _) = server
        .call_as(&server.token, reqwest::Method::PUT, "/api/v1/github/redeliver", Some(&json!({"hooks": ["nope"]})))
        .await;
    assert_eq!(status, 400, "a hook path that is not one is refused");
    let watched = watch(&server, json!(["repos/acme/api/hooks/77"])).await;
    assert_eq!(watched["hooks"][0]["asked"][&guid]["times"], 1, "{watched}");
    let listed = server
        .wait_for(Duration::from_secs(60), || async {
            let (_, pulls) = server.get("/api/v1/github/pulls?repo=acme/api").await;
            (pulls["items"].as_array().is_some_and(|items| !items.is_empty())).then_some(pulls)
        })
        .await
        .expect("the redelivered pull request arrives");
    assert_eq!(listed["items"][0]["number"], 1);
    // The fake notes the redelivery's answer only once it has read it, which
    // may be after DevPulse already folded the event.
    server
        .wait_for(Duration::from_secs(30), || async {
            fake.fake.lock().unwrap().deliveries.iter().any(|delivery| delivery.redelivery).then_some(())
        })
        .await
        .expect("the fake records the redelivery");

    // The next pass sees the successful redelivery and asks for nothing more.
    watch(&server, json!(["repos/acme/api/hooks/77"])).await;
    {
        let github = fake.fake.lock().unwrap();
        assert_eq!(github.redeliveries_asked.len(), 1, "asked once, for the failed delivery only");
        let redelivered = github.deliveries.iter().find(|delivery| delivery.redelivery).unwrap();
        assert_eq!((redelivered.guid.as_str(), redelivered.status_code), (guid.as_str(), 202));
    }
    server.stop().await;
}
