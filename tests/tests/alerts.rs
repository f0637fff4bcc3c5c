//! Alerts end to end: the lifecycle over HTTP, silences, who sees what, alerts
//! raised by a plugin inside an event (a trap raises nothing, a retry raises
//! once), notifications to a signed webhook and Slack, and notifications
//! queued when the server is SIGKILLed delivered after the restart.

use devpulse_e2e::alarm::{self, tell};
use devpulse_e2e::receiver::Receiver;
use devpulse_e2e::{Backend, ChildServer, Options, ScratchDatabase, TestServer, fixtures, on_both_backends};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Receivers on loopback, and timeouts and retries checked every second.
const CONFIG: &str = "[alerts]\nallow_private_targets = true\nscan_seconds = 1\nretry_seconds = 1\n\
                      [delivery]\nmax_attempts = 6\nbackoff_ms = 100\n";

const SECRET: &str = "a receiver's secret, 16+ bytes";

async fn start(backend: Backend) -> Option<TestServer> {
    TestServer::start_with(backend, Options { config: CONFIG.into(), ..Options::default() }).await
}

async fn raise(server: &TestServer, token: &str, alert: Value) -> (u16, Value) {
    server.post_as(token, "/api/v1/alerts", &alert).await
}

async fn webhook_channel(server: &TestServer, name: &str, receiver: &Receiver, extra: Value) {
    let mut body = json!({"type": "webhook", "url": receiver.url, "secret": SECRET});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let (status, channel) = server
        .call_as(&server.token, reqwest::Method::PUT, &format!("/api/v1/alerts/channels/{name}"), Some(&body))
        .await;
    assert!(status == 201 || status == 200, "{channel}");
}

/// Waits until the receiver took `count` notifications; returns them.
async fn received(server: &TestServer, receiver: &Receiver, count: usize) -> Vec<Value> {
    server
        .wait_for(Duration::from_secs(30), || async {
            let taken = receiver.received();
            (taken.len() >= count).then(|| taken.into_iter().map(|r| r.body).collect::<Vec<_>>())
        })
        .await
        .unwrap_or_else(|| panic!("fewer than {count} notifications: {:?}", receiver.received()))
}

fn kinds(history: &Value) -> Vec<String> {
    history.as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap().to_owned()).collect()
}

/// Raise, update, acknowledge, resolve by hand, fire again as a new
/// occurrence, resolve by timeout; the history keeps who and when, across a
/// restart; the channels hear each step, signed.
async fn lifecycle(backend: Backend) {
    let Some(server) = start(backend).await else { return };
    let hook = Receiver::webhook(SECRET).await;
    let slack = Receiver::slack().await;
    webhook_channel(&server, "ops", &hook, json!({})).await;
    let (status, _) = server
        .call_as(
            &server.token,
            reqwest::Method::PUT,
            "/api/v1/alerts/channels/chat",
            Some(&json!({"type": "slack", "url": slack.url, "min_severity": "critical"})),
        )
        .await;
    assert_eq!(status, 201);

    let alert = json!({"key": "db/disk", "severity": "warning", "summary": "Disk 85% full", "labels": {"team": "db"}});
    let (status, first) = raise(&server, &server.token, alert.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (first["state"].as_str(), first["occurrence"].as_i64(), first["source"].as_str()),
        (Some("firing"), Some(1), Some("api"))
    );
    let id = first["id"].as_str().unwrap().to_owned();
    let (status, same) = raise(&server, &server.token, alert.clone()).await;
    assert_eq!((status, same["id"].as_str()), (200, Some(id.as_str())), "raising it again as it was changes nothing");
    let worse = json!({"key": "db/disk", "severity": "critical", "summary": "Disk 97% full", "labels": {"team": "db"}});
    let (status, updated) = raise(&server, &server.token, worse).await;
    assert_eq!((status, updated["severity"].as_str()), (200, Some("critical")));

    let (_, detail) = server.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(kinds(&detail["history"]), ["raised", "updated"]);
    assert_eq!(detail["history"][1]["changes"]["severity"], json!({"before": "warning", "after": "critical"}));

    let (status, acked) = server.post(&format!("/api/v1/alerts/{id}/ack"), &json!({"comment": "looking"})).await;
    assert_eq!((status, acked["state"].as_str()), (200, Some("acknowledged")), "{acked}");
    assert_eq!(acked["acknowledged"]["comment"], "looking");
    assert_eq!(server.post(&format!("/api/v1/alerts/{id}/ack"), &json!({})).await.0, 409, "acknowledged already");
    let (status, problem) = server.post(&format!("/api/v1/alerts/{id}/resolve"), &json!({})).await;
    assert_eq!(status, 400, "a person resolves with a comment: {problem}");
    let (status, resolved) =
        server.post(&format!("/api/v1/alerts/{id}/resolve"), &json!({"comment": "cleaned up"})).await;
    assert_eq!((status, resolved["resolved"]["by"].as_str()), (200, Some("person")), "{resolved}");
    assert_eq!(server.post(&format!("/api/v1/alerts/{id}/resolve"), &json!({"comment": "again"})).await.0, 409);

    // The webhook heard firing, acknowledged and resolved, each signed and with its own id.
    let notes = received(&server, &hook, 3).await;
    let types: Vec<&str> = notes.iter().map(|note| note["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["alert.firing", "alert.acknowledged", "alert.resolved"]);
    assert!(hook.received().iter().all(|r| r.signature_ok), "every body is signed with the channel's secret");
    let ids: BTreeSet<&str> = notes.iter().map(|note| note["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert!(hook.received().iter().all(|r| r.header("x-devpulse-notification") == r.body["id"].as_str()));
    assert_eq!(notes[0]["alert"]["summary"], "Disk 85% full", "the notification shows the alert as it was");
    // Slack wants critical alerts only: this one was a warning when it fired, so Slack was
    // never told of it, nor of what followed.
    assert!(slack.received().is_empty(), "{:?}", slack.received());

    // Firing again opens a new occurrence linked to the previous one.
    let critical =
        json!({"key": "db/disk", "severity": "critical", "summary": "Disk full again", "resolve_after_seconds": 1});
    let (status, second) = raise(&server, &server.token, critical).await;
    assert_eq!((status, second["occurrence"].as_i64()), (201, Some(2)), "{second}");
    assert_eq!(second["previous_id"].as_str(), Some(id.as_str()));
    let second_id = second["id"].as_str().unwrap().to_owned();
    let (_, first_detail) = server.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(first_detail["next_id"].as_str(), Some(second_id.as_str()));
    let slack_notes = received(&server, &slack, 1).await;
    assert!(slack_notes[0]["text"].as_str().unwrap().contains("Disk full again"), "{}", slack_notes[0]);
    assert!(slack_notes[0]["blocks"].as_array().is_some_and(|blocks| blocks.len() == 2));

    // Not raised again within its timeout: resolved by the timeout.
    let timed_out = server
        .wait_for(Duration::from_secs(20), || async {
            let (_, alert) = server.get(&format!("/api/v1/alerts/{second_id}")).await;
            (alert["state"] == "resolved").then_some(alert)
        })
        .await
        .expect("resolved by its timeout");
    assert_eq!(timed_out["resolved"]["by"], "timeout");
    received(&server, &slack, 2).await;

    // Lists: newest first, filtered, paged.
    let (_, page) = server.get("/api/v1/alerts?limit=1").await;
    assert_eq!(page["items"][0]["id"].as_str(), Some(second_id.as_str()));
    let (_, next) =
        server.get(&format!("/api/v1/alerts?limit=1&cursor={}", page["next_cursor"].as_str().unwrap())).await;
    assert_eq!(next["items"][0]["id"].as_str(), Some(id.as_str()));
    assert!(next["next_cursor"].is_null());
    let (_, by_label) = server.get("/api/v1/alerts?label=team=db").await;
    assert_eq!(by_label["items"].as_array().unwrap().len(), 1, "the second occurrence has no team label");
    let (_, firing) = server.get("/api/v1/alerts?state=firing&state=acknowledged").await;
    assert!(firing["items"].as_array().unwrap().is_empty());
    let (_, info) = server.get("/api/v1/alerts?severity=info").await;
    assert!(info["items"].as_array().unwrap().is_empty());

    let (_, channels) = server.get("/api/v1/alerts/channels").await;
    let ops = &channels["items"].as_array().unwrap().iter().find(|c| c["name"] == "ops").unwrap().clone();
    assert!(ops["delivered"].as_i64().unwrap() >= 3 && ops["has_secret"] == true && ops.get("secret").is_none());

    // The webhook heard the second occurrence fire and resolve too: five in all.
    received(&server, &hook, 5).await;
    // `/metrics` counts alerts by state (refreshed every scan) and notification outcomes.
    let counted = server
        .wait_for(Duration::from_secs(10), || async {
            let metrics = server.text("/metrics").await;
            (metrics.contains("devpulse_alerts{severity=\"critical\",state=\"resolved\"} 2")
                && metrics
                    .contains("devpulse_alert_notifications_total{channel_type=\"webhook\",outcome=\"delivered\"} 5"))
            .then_some(())
        })
        .await;
    assert!(counted.is_some(), "{}", server.text("/metrics").await);

    // Everything survives a restart, history included.
    let server = server.restart().await;
    let (_, after) = server.get(&format!("/api/v1/alerts/{id}")).await;
    assert_eq!(kinds(&after["history"]), ["raised", "updated", "acknowledged", "resolved"]);
    assert_eq!(after["history"][3]["comment"], "cleaned up");
    server.stop().await;
}

/// A silence keeps matching alerts quiet (they are still listed, as
/// silenced); when it ends, they are notified.
async fn silences(backend: Backend) {
    let Some(server) = start(backend).await else { return };
    let hook = Receiver::webhook(SECRET).await;
    webhook_channel(&server, "ops", &hook, json!({})).await;
    let silence = json!({
        "matchers": [{"name": "team", "op": "regex", "value": "api|web"}, {"name": "env", "op": "not_equal", "value": "dev"}],
        "duration_seconds": 3600,
        "comment": "deploying",
    });
    let (status, created) = server.post("/api/v1/silences", &silence).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("active")), "{created}");
    let silence_id = created["id"].as_str().unwrap().to_owned();
    // A short one, already nearly over.
    let started = chrono::Utc::now() - chrono::Duration::seconds(59);
    let short = json!({"matchers": [{"name": "team", "op": "equal", "value": "ml"}], "starts_at": started.to_rfc3339(),
                       "duration_seconds": 60, "comment": "a minute"});
    assert_eq!(server.post("/api/v1/silences", &short).await.0, 201);

    let alert = |key: &str, team: &str, env: &str| json!({"key": key, "severity": "warning", "summary": key, "labels": {"team": team, "env": env}});
    let (_, quiet) = raise(&server, &server.token, alert("quiet", "api", "prod")).await;
    assert_eq!(
        (quiet["silenced"].as_bool(), quiet["silenced_by"][0].as_str()),
        (Some(true), Some(silence_id.as_str()))
    );
    let (_, dev) = raise(&server, &server.token, alert("dev", "api", "dev")).await;
    assert_eq!(dev["silenced"], false, "env=dev is not covered");
    let (_, ml) = raise(&server, &server.token, alert("ml", "ml", "prod")).await;
    assert_eq!(ml["silenced"], true);
    // Only `dev` is notified; the silenced one is queued never.
    let notes = received(&server, &hook, 1).await;
    assert_eq!(notes[0]["alert"]["key"], "dev");

    // The short silence runs out: `ml` is notified then.
    let notes = received(&server, &hook, 2).await;
    assert_eq!(notes[1]["alert"]["key"], "ml");
    let (_, listed) = server.get("/api/v1/silences?status=expired").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Expiring ends the other one at once (it stays listed, expired); `quiet` is notified.
    let (status, ended) =
        server.call_as(&server.token, reqwest::Method::DELETE, &format!("/api/v1/silences/{silence_id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(ended["status"], "expired");
    let (_, listed) = server.get(&format!("/api/v1/silences/{silence_id}")).await;
    assert_eq!(listed["status"], "expired");
    let notes = received(&server, &hook, 3).await;
    assert_eq!(notes[2]["alert"]["key"], "quiet");
    let (_, now_loud) = server.get(&format!("/api/v1/alerts/{}", quiet["id"].as_str().unwrap())).await;
    assert_eq!(now_loud["silenced"], false);

    let bad =
        json!({"matchers": [{"name": "team", "op": "regex", "value": "("}], "duration_seconds": 60, "comment": "x"});
    assert_eq!(server.post("/api/v1/silences", &bad).await.0, 400, "an invalid regex is refused");
    assert_eq!(hook.received().len(), 3, "nothing else was sent");
    server.stop().await;
}

/// An alert about one person is theirs and their managers'; the rest of the
/// org's alerts are for managers and above; another org sees nothing.
async fn visibility(backend: Backend) {
    let Some(server) = start(backend).await else { return };
    let (ann, ann_token) = server.user_with_role("developer").await;
    let (_, bob_token) = server.user_with_role("developer").await;
    let (_, manager) = server.user_with_role("manager").await;
    let (_, anns) =
        raise(&server, &manager, json!({"key": "k1", "severity": "info", "summary": "Ann's", "labels": {"user": ann}}))
            .await;
    let (_, org_wide) =
        raise(&server, &manager, json!({"key": "k2", "severity": "info", "summary": "everyone's"})).await;
    let (anns_id, org_id) = (anns["id"].as_str().unwrap(), org_wide["id"].as_str().unwrap());

    let ids = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&server.get_as(&ann_token, "/api/v1/alerts").await.1), [anns_id]);
    assert!(ids(&server.get_as(&bob_token, "/api/v1/alerts").await.1).is_empty());
    assert_eq!(ids(&server.get_as(&manager, "/api/v1/alerts").await.1), [org_id, anns_id]);
    assert_eq!(server.get_as(&bob_token, &format!("/api/v1/alerts/{anns_id}")).await.0, 404);
    assert_eq!(server.get_as(&ann_token, &format!("/api/v1/alerts/{org_id}")).await.0, 404);
    assert_eq!(server.post_as(&bob_token, &format!("/api/v1/alerts/{anns_id}/ack"), &json!({})).await.0, 404);
    assert_eq!(server.post_as(&ann_token, &format!("/api/v1/alerts/{anns_id}/ack"), &json!({})).await.0, 200);
    assert_eq!(raise(&server, &ann_token, json!({"key": "x", "severity": "info", "summary": "x"})).await.0, 403);
    assert_eq!(server.get_as(&ann_token, "/api/v1/silences").await.0, 403);
    assert_eq!(server.get_as(&manager, "/api/v1/alerts/channels").await.0, 403, "channels are for admins");

    let eve = &server.another_org("other").await;
    assert!(ids(&server.get_as(eve, "/api/v1/alerts").await.1).is_empty());
    assert_eq!(server.get_as(eve, &format!("/api/v1/alerts/{org_id}")).await.0, 404);
    assert_eq!(
        server.post_as(eve, &format!("/api/v1/alerts/{org_id}/resolve"), &json!({"comment": "mine now"})).await.0,
        404
    );
    server.stop().await;
}

/// A signed `acme` delivery telling the `alarm` fixture what to do.
/// Alerts raised inside an event commit with it: a trap raises nothing (and
/// the dead letter is announced as a `system.*` event), a retried event
/// raises once, and the alert links the event it came from.
async fn raised_by_a_plugin(backend: Backend) {
    let Some(server) = start(backend).await else { return };
    server.install_plugin(fixtures::ALARM.as_ref(), "alarm.wasm");
    server.wait_for_plugin("alarm", "1.0.0").await;
    let path = server.configure_hook("acme", alarm::SECRET).await;
    let raise_one = |key: &str| json!({"key": key, "severity": "critical", "summary": format!("{key} broke"), "labels": {"service": key}});

    let trapped = tell(&server, &path, "d-1", &json!({"raise": [raise_one("trapped")], "trap": true})).await;
    let until = chrono::Utc::now().timestamp_millis() + 1_000;
    let retried = tell(&server, &path, "d-2", &json!({"raise": [raise_one("retried")], "fail_until": until})).await;
    server.delivered("alarm", Duration::from_secs(60)).await;

    let (_, listed) = server.get("/api/v1/alerts?source=alarm").await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the trap raised nothing: {listed}");
    assert_eq!(items[0]["key"], "retried");
    assert_eq!(items[0]["event_ids"], json!([retried]), "the alert names the event it came from");
    let (_, detail) = server.get(&format!("/api/v1/alerts/{}", items[0]["id"].as_str().unwrap())).await;
    assert_eq!(kinds(&detail["history"]), ["raised"], "the retry raised it once");
    let (_, letters) = server.get("/api/v1/dead-letters?plugin=alarm").await;
    assert_eq!(letters["items"][0]["event_id"].as_str(), Some(trapped.as_str()));

    // The plugin resolves it by key.
    tell(&server, &path, "d-3", &json!({"resolve": ["retried"]})).await;
    server.delivered("alarm", Duration::from_secs(30)).await;
    let (_, resolved) = server.get(&format!("/api/v1/alerts/{}", items[0]["id"].as_str().unwrap())).await;
    assert_eq!((resolved["state"].as_str(), resolved["resolved"]["by"].as_str()), (Some("resolved"), Some("source")));

    // One call's writes to one key apply in order (raised, updated, resolved);
    // raised again later, the key opens a second occurrence after the first.
    let mut worse = raise_one("flappy");
    worse["summary"] = json!("flappy broke worse");
    tell(&server, &path, "d-5", &json!({"raise": [raise_one("flappy"), worse], "resolve": ["flappy"]})).await;
    tell(&server, &path, "d-6", &json!({"raise": [raise_one("flappy")]})).await;
    server.delivered("alarm", Duration::from_secs(30)).await;
    let (_, flappy) = server.get("/api/v1/alerts?source=alarm&label=service%3Dflappy").await;
    let occurrences = flappy["items"].as_array().unwrap();
    assert_eq!(occurrences.len(), 2, "{flappy}");
    let (second, first) = (&occurrences[0], &occurrences[1]);
    assert_eq!((second["occurrence"].as_i64(), second["state"].as_str()), (Some(2), Some("firing")));
    assert_eq!(second["previous_id"], first["id"]);
    let (_, first) = server.get(&format!("/api/v1/alerts/{}", first["id"].as_str().unwrap())).await;
    assert_eq!(kinds(&first["history"]), ["raised", "updated", "resolved"], "{first}");

    // The host's own happenings are events too.
    let bad = [
        ("x-acme-event", "alarm".to_owned()),
        ("x-acme-delivery", "d-4".to_owned()),
        ("x-acme-signature", "nope".to_owned()),
    ];
    assert_eq!(server.deliver(&path, &bad, b"{}".to_vec()).await.0, 401);
    assert_eq!(server.deliver(&path, &bad, b"{}".to_vec()).await.0, 401);
    let (_, events) = server.get("/api/v1/events?kind=system.*&limit=200").await;
    let system: Vec<(String, Value)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (event["kind"].as_str().unwrap().to_owned(), event["payload"].clone()))
        .collect();
    let has =
        |kind: &str, check: &dyn Fn(&Value) -> bool| system.iter().any(|(k, payload)| k == kind && check(payload));
    assert!(has("system.plugin.loaded", &|p| p["plugin"] == "alarm"), "{system:?}");
    assert!(has("system.event.dead_lettered", &|p| p["event_id"] == trapped.as_str() && p["plugin"] == "alarm"));
    let bad_signatures = system.iter().filter(|(kind, _)| kind == "system.webhook.bad_signature").count();
    assert!(
        (1..=2).contains(&bad_signatures),
        "repeated bad signatures within a minute are one event (two at a minute's edge)"
    );
    server.stop().await;
}

on_both_backends!(lifecycle, silences, visibility, raised_by_a_plugin, notifications_survive_a_sigkill);

/// A plugin stuck on a failing event shows it in `GET /api/v1/plugins/{name}`:
/// how many events wait, since when, and how far behind that is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_behind_the_log_shows_its_lag() {
    let Some(server) = start(Backend::Sqlite).await else { return };
    server.install_plugin(fixtures::ALARM.as_ref(), "alarm.wasm");
    server.wait_for_plugin("alarm", "1.0.0").await;
    let path = server.configure_hook("acme", alarm::SECRET).await;
    let until = chrono::Utc::now().timestamp_millis() + 120_000;
    let stuck = tell(&server, &path, "stuck", &json!({"raise": [], "fail_until": until})).await;
    tell(&server, &path, "next", &json!({"raise": []})).await;
    let (_, event) = server.get(&format!("/api/v1/events/{stuck}")).await;
    let (_, alarm) = server.plugin("alarm").await;
    let fold = &alarm["fold"];
    assert_eq!(fold["behind"], 2, "the failing event and the one after it: {alarm}");
    assert_eq!(fold["oldest_pending_at"], event["received_at"], "{alarm}");
    assert!(fold["lag_seconds"].as_f64().unwrap() >= 0.0, "{alarm}");
    server.stop().await;
}

/// Notifications queued when the server is SIGKILLed are delivered after the
/// restart: after deduping on their ids, the receiver has each once, none missing.
async fn notifications_survive_a_sigkill(backend: Backend) {
    let Some(database) = ScratchDatabase::create(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    let receiver = Receiver::webhook(SECRET).await;
    receiver.fail(true);
    let mut child = ChildServer::start(&data, &plugins, &database.url, CONFIG).await;
    let http = reqwest::Client::new();
    let token = child.token();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", child.base)).bearer_auth(&token).json(&body).send()
    };
    let channel = json!({"type": "webhook", "url": receiver.url, "secret": SECRET});
    assert_eq!(call(reqwest::Method::PUT, "/api/v1/alerts/channels/ops", channel).await.unwrap().status(), 201);
    let mut expected = BTreeSet::new();
    for n in 0..20 {
        let alert = json!({"key": format!("k{n}"), "severity": "warning", "summary": format!("alert {n}")});
        let response = call(reqwest::Method::POST, "/api/v1/alerts", alert).await.unwrap();
        assert_eq!(response.status(), 201);
        let raised: Value = response.json().await.unwrap();
        expected.insert(raised["id"].as_str().unwrap().to_owned());
    }
    // Attempts are being made and failing: the notifications are queued, then the process dies.
    let started = std::time::Instant::now();
    while receiver.attempts() < 20 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(receiver.attempts() >= 20, "the server tried to notify");
    child.kill();
    receiver.fail(false);
    child.restart().await;

    let started = std::time::Instant::now();
    let distinct = || {
        receiver
            .received()
            .iter()
            .map(|r| r.body["id"].as_str().unwrap_or_default().to_owned())
            .collect::<BTreeSet<_>>()
    };
    while distinct().len() < 20 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = receiver.received();
    assert!(taken.iter().all(|r| r.signature_ok));
    let ids = distinct();
    assert_eq!(ids.len(), 20, "each queued notification arrived: {ids:?}");
    let alerts: BTreeSet<String> =
        taken.iter().map(|r| r.body["alert"]["id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(alerts, expected, "one firing notification per alert, none missing");
    // A retry after the restart reuses the id: deduping on it leaves exactly one per alert.
    assert!(taken.iter().all(|r| r.body["type"] == "alert.firing"));
    child.kill();
    database.drop_now().await;
}

/// Without the operator's permission, channels cannot target the server's
/// own network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_by_default() {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    for url in ["http://127.0.0.1:9/hook", "http://10.0.0.8/", "http://169.254.169.254/latest", "http://localhost:80/"]
    {
        let body = json!({"type": "slack", "url": url});
        let (status, problem) =
            server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/alerts/channels/x", Some(&body)).await;
        assert_eq!((status, problem["type"].as_str()), (403, Some("urn:devpulse:problem:forbidden-target")), "{url}");
    }
    let body = json!({"type": "webhook", "url": "https://hooks.example.com/x", "secret": "short"});
    let (status, _) =
        server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/alerts/channels/x", Some(&body)).await;
    assert_eq!(status, 400, "webhook secrets are 16 bytes or more");
    server.stop().await;
}

/// A real Alertmanager (Debian's `prometheus-alertmanager`, on its own port
/// and data folder) shows a DevPulse alert active, and resolved once DevPulse
/// resolves it: gone from its API, and its own receiver told `resolved`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_sees_it_fire_and_resolve() {
    if !devpulse_e2e::have("prometheus-alertmanager") {
        return;
    }
    let behind = Receiver::slack().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "route: {{receiver: hook, group_by: ['alertname'], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}\n\
         receivers:\n  - name: hook\n    webhook_configs: [{{url: '{}', send_resolved: true}}]\n",
        behind.url
    );
    std::fs::write(dir.path().join("am.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
    // Killed when dropped, so a failed assertion leaves no Alertmanager behind.
    let _alertmanager = tokio::process::Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", dir.path().join("am.yml").display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start alertmanager");
    let am = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let Some(server) = start(Backend::Sqlite).await else { return };
    let ready = server
        .wait_for(Duration::from_secs(30), || async {
            http.get(format!("{am}/-/ready")).send().await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
    assert!(ready.is_some(), "alertmanager did not start");

    let channel = json!({"type": "alertmanager", "url": am});
    let (status, _) =
        server.call_as(&server.token, reqwest::Method::PUT, "/api/v1/alerts/channels/am", Some(&channel)).await;
    assert_eq!(status, 201);
    let alert = json!({"key": "db/replication", "severity": "critical", "summary": "Replica 40 s behind", "labels": {"team": "db"}});
    let (_, raised) = raise(&server, &server.token, alert).await;
    let id = raised["id"].as_str().unwrap().to_owned();

    let listed = |active: bool| {
        let (http, am, id) = (http.clone(), am.clone(), id.clone());
        async move {
            let alerts: Value = http.get(format!("{am}/api/v2/alerts")).send().await.ok()?.json().await.ok()?;
            let found =
                alerts.as_array()?.iter().find(|alert| alert["labels"]["devpulse_alert"] == id.as_str()).cloned();
            match (active, found) {
                (true, Some(alert)) if alert["status"]["state"] == "active" => Some(alert),
                (false, None) => Some(Value::Null),
                _ => None,
            }
        }
    };
    let shown = server.wait_for(Duration::from_secs(30), || listed(true)).await.expect("Alertmanager shows it active");
    assert_eq!(shown["labels"]["alertname"], "db/replication");
    assert_eq!(shown["labels"]["severity"], "critical");
    assert_eq!(shown["labels"]["team"], "db");
    assert_eq!(shown["annotations"]["summary"], "Replica 40 s behind");

    let told = |status: &'static str| {
        let (behind, id) = (&behind, id.clone());
        move || {
            let id = id.clone();
            async move {
                behind.received().into_iter().find(|r| {
                    r.body["alerts"].as_array().is_some_and(|alerts| {
                        alerts.iter().any(|a| a["labels"]["devpulse_alert"] == id.as_str() && a["status"] == status)
                    })
                })
            }
        }
    };
    let firing = server.wait_for(Duration::from_secs(30), told("firing")).await;
    assert!(firing.is_some(), "Alertmanager's receiver heard it fire: {:?}", behind.received());

    let (status, _) = server.post(&format!("/api/v1/alerts/{id}/resolve"), &json!({"comment": "caught up"})).await;
    assert_eq!(status, 200);
    server.wait_for(Duration::from_secs(30), || listed(false)).await.expect("Alertmanager no longer lists it");
    let resolved = server.wait_for(Duration::from_secs(30), told("resolved")).await;
    assert!(resolved.is_some(), "Alertmanager's receiver heard it resolve: {:?}", behind.received());
    server.stop().await;
}
