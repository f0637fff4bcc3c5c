//! Delivery of the event log to plugins: dead letters and replay after a fix,
//! rebuilds into a new generation, schedules across restarts, and exactly-once
//! effects when the server is killed mid-stream.

use devpulse_e2e::tally::{consistent_total, counts_reaching, kind_of, payload, wait_loaded};
use devpulse_e2e::{
    Backend, ChildServer, Options, TestServer, create_org, deliver, delivery_to, fixtures, github_headers,
    on_both_backends,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "delivery test secret";

async fn counts(server: &TestServer) -> Value {
    let (status, counts) = server.get("/api/v1/tally/counts").await;
    assert_eq!(status, 200, "{counts}");
    counts
}

/// Waits for `total`, and for a read that agrees with it: `/counts` reads the
/// per-kind keys and the total in separate queries, so a commit landing in
/// between shows a total ahead of its kinds.
async fn wait_total(server: &TestServer, total: u64) -> Value {
    let reached = server
        .wait_for(Duration::from_secs(60), || async {
            let counts = counts(server).await;
            (consistent_total(&counts) == Some(total)).then_some(counts)
        })
        .await;
    reached.unwrap_or_else(|| panic!("total never reached {total}"))
}

/// Delivers `events` signed GitHub deliveries of the kinds tally counts, with
/// delivery ids `{prefix}{n}`, each acknowledged.
async fn deliver_events(server: &TestServer, hook: &str, prefix: &str, events: usize) {
    for n in 0..events {
        let body = payload(n, false);
        let (status, _) = server.deliver_github(hook, SECRET, kind_of(n), &format!("{prefix}{n}"), &body).await;
        assert_eq!(status, 202);
    }
}

/// Waits for tally's rebuild to finish; its last progress.
async fn rebuild_done(server: &TestServer) -> Value {
    server
        .wait_for(Duration::from_secs(120), || async {
            let (_, progress) = server.get("/api/v1/plugins/tally/rebuild").await;
            (progress["status"] == "done").then_some(progress)
        })
        .await
        .expect("the rebuild finishes")
}

/// Sum and count of tally's metric points in `org`'s live generation.
async fn metric_points(server: &TestServer, org: &str, generation: i64) -> (usize, f64) {
    use devpulse::store::entities::metric_point;
    let rows = metric_point::Entity::find()
        .filter(metric_point::Column::Plugin.eq("tally"))
        .filter(metric_point::Column::Org.eq(org))
        .filter(metric_point::Column::Generation.eq(generation))
        .all(&server.db().await)
        .await
        .unwrap();
    (rows.len(), rows.iter().map(|row| row.value).sum())
}

async fn dead_letter_then_replay(backend: Backend) {
    let config = "[delivery]\nmax_attempts = 3\nbackoff_ms = 20\n";
    let Some(server) = TestServer::start_with(backend, Options { config: config.into(), ..Options::default() }).await
    else {
        return;
    };
    server.install_plugin(fixtures::TALLY_BUGGY.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "1.0.1").await;
    let hook = server.configure_hook("github", SECRET).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = payload(n, n == 2);
        let (status, ack) = server.deliver_github(&hook, SECRET, "push", &format!("d{n}"), &body).await;
        assert_eq!(status, 202, "{ack}");
        ids.push(ack["event_id"].as_str().unwrap().to_owned());
    }
    // The poison event dies after three attempts; the ones after it still arrive.
    let before_fix = wait_total(&server, 4).await;
    assert_eq!(before_fix["kinds"]["github.push"], 4);
    let (_, letters) = server.get("/api/v1/dead-letters").await;
    let letters = letters["items"].as_array().unwrap().clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!((letter["event_id"].as_str(), letter["attempts"].as_i64()), (Some(ids[2].as_str()), Some(3)));
    assert_eq!(letter["status"], "dead");
    assert!(letter["error"].as_str().unwrap().contains("cannot digest"), "{letter}");
    let (_, event) = server.get(&format!("/api/v1/events/{}", ids[2])).await;
    assert_eq!(delivery_to(&event, "tally")["status"], "dead_letter", "{event}");
    let (_, event) = server.get(&format!("/api/v1/events/{}", ids[3])).await;
    assert_eq!(delivery_to(&event, "tally")["status"], "delivered", "{event}");
    let metrics = server.text("/metrics").await;
    assert!(metrics.contains(r#"devpulse_dead_letters_total{plugin="tally"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"devpulse_delivery_retries_total{plugin="tally"} 2"#), "{metrics}");

    // Fix the plugin (hot reload), replay: handled once, and only once.
    server.install_plugin(fixtures::TALLY_V1.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "1.0.0").await;
    let replay = format!("/api/v1/dead-letters/{}/replay", letter["id"].as_str().unwrap());
    let (status, queued) = server.post_empty(&replay).await;
    assert_eq!(status, 202, "{queued}");
    let after_fix = wait_total(&server, 5).await;
    assert_eq!(after_fix["kinds"]["github.push"], 5);
    let (_, letters) = server.get("/api/v1/dead-letters?status=replayed").await;
    assert_eq!(letters["items"].as_array().unwrap().len(), 1, "{letters}");
    let (status, _) = server.post_empty(&replay).await;
    assert_eq!(status, 409, "a replayed letter is not replayed again");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(&server).await["total"], 5);
    let (_, event) = server.get(&format!("/api/v1/events/{}", ids[2])).await;
    assert_eq!(delivery_to(&event, "tally")["status"], "replayed", "{event}");
    let (_, developer) = server.user_with_role("developer").await;
    assert_eq!(server.call_as(&developer, reqwest::Method::POST, &replay, None).await.0, 403);
    server.stop().await;
}

async fn rebuild_with_a_changed_plugin(backend: Backend) {
    const EVENTS: usize = 120;
    let Some(server) = TestServer::start(backend).await else { return };
    server.install_plugin(fixtures::TALLY_V1.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "1.0.0").await;
    let hook = server.configure_hook("github", SECRET).await;
    deliver_events(&server, &hook, "r", EVENTS).await;
    let v1 = wait_total(&server, EVENTS as u64).await;
    server.delivered("tally", Duration::from_secs(60)).await;
    let (_, tally) = server.plugin("tally").await;
    let fold = &tally["fold"];
    assert_eq!((fold["behind"].as_u64(), fold["lag_seconds"].as_f64()), (Some(0), Some(0.0)), "{tally}");
    assert!(fold["events_per_second"].as_f64().unwrap() > 0.0, "it folded {EVENTS} events this minute: {tally}");
    let org = org_id(&server).await;
    assert_eq!(metric_points(&server, &org, 0).await, (EVENTS, EVENTS as f64));

    // Version 2 counts each event twice: only a rebuild applies that to history.
    server.install_plugin(fixtures::TALLY_V2.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "2.0.0").await;
    let (status, started) = server.post_empty("/api/v1/plugins/tally/rebuild").await;
    assert_eq!(status, 202, "{started}");
    assert_eq!((started["status"].as_str(), started["building_generation"].as_i64()), (Some("running"), Some(1)));
    let (status, _) = server.post_empty("/api/v1/plugins/tally/rebuild").await;
    assert_eq!(status, 409, "one rebuild at a time");
    // Reads during the rebuild: the old generation, whole.
    let during = counts(&server).await;
    let (_, progress) = server.get("/api/v1/plugins/tally/rebuild").await;
    assert_eq!(progress["status"], "running", "the rebuild finished too fast to observe: {progress}");
    let (done, left) = (progress["events_done"].as_u64().unwrap(), progress["events_left"].as_u64().unwrap());
    assert_eq!(done + left, EVENTS as u64, "the org's events up to the target: {progress}");
    assert!(progress["events_per_second"].as_f64().unwrap() >= 0.0, "{progress}");
    assert_eq!(progress["eta"].is_string(), done > 0, "an ETA once some are done: {progress}");
    assert_eq!((&during["kinds"], &during["total"]), (&v1["kinds"], &v1["total"]));

    let done = rebuild_done(&server).await;
    assert_eq!((done["live_generation"].as_i64(), done["progress"].as_f64()), (Some(1), Some(1.0)));
    let rebuilt = counts(&server).await;

    // A fresh server running only version 2 over the same deliveries.
    let fresh = TestServer::start(backend).await.expect("second server");
    fresh.install_plugin(fixtures::TALLY_V2.as_ref(), "tally.wasm");
    fresh.wait_for_plugin("tally", "2.0.0").await;
    let fresh_hook = fresh.configure_hook("github", SECRET).await;
    deliver_events(&fresh, &fresh_hook, "r", EVENTS).await;
    let fresh_counts = wait_total(&fresh, 2 * EVENTS as u64).await;
    assert_eq!((&rebuilt["kinds"], &rebuilt["total"]), (&fresh_counts["kinds"], &fresh_counts["total"]));
    let fresh_org = org_id(&fresh).await;
    assert_eq!(metric_points(&server, &org, 1).await, metric_points(&fresh, &fresh_org, 0).await);
    assert_eq!(metric_points(&server, &org, 1).await, (EVENTS, 2.0 * EVENTS as f64));
    fresh.stop().await;
    server.stop().await;
}

async fn ticks(server: &TestServer) -> u64 {
    counts(server).await["ticks"].as_u64().unwrap_or(0)
}

async fn org_id(server: &TestServer) -> String {
    let (_, me) = server.get("/api/v1/me").await;
    me["org_id"].as_str().or_else(|| me["org"]["id"].as_str()).expect("the caller's org").to_owned()
}

/// `pulse` runs every 2 s: on time while up, and once (not once per missed
/// interval) after a restart that skipped several.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_run_once_per_interval_across_restarts() {
    let Some(server) = TestServer::start(Backend::Sqlite).await else { return };
    server.install_plugin(fixtures::TALLY_V1.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "1.0.0").await;
    server
        .wait_for(Duration::from_secs(10), || async { (ticks(&server).await == 1).then_some(()) })
        .await
        .expect("a first tick");
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(ticks(&server).await, 2, "one more tick after one interval");
    let server = server.restart_after(Duration::from_secs(7)).await;
    server
        .wait_for(Duration::from_secs(10), || async { (ticks(&server).await >= 3).then_some(()) })
        .await
        .expect("a tick after the restart");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(ticks(&server).await, 3, "three missed intervals made one tick");
    server.stop().await;
}

/// Deliveries stream into a child server that is killed with SIGKILL halfway.
/// After a restart every acknowledged delivery is in the log exactly once
/// (redelivering it answers `duplicate` with the same event), and tally's
/// effects equal those of an org that got the same deliveries without a crash.
async fn crash_mid_stream(backend: Backend) {
    const EVENTS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(fixtures::TALLY_V1, plugins.join("tally.wasm")).unwrap();
    let postgres = match backend {
        Backend::Postgres => match devpulse_e2e::PgDatabase::create().await {
            Some(pg) => Some(pg),
            None => return,
        },
        Backend::Sqlite => None,
    };
    let url = postgres.as_ref().map_or_else(|| devpulse::store::default_url(&data), |pg| pg.url.clone());
    std::fs::create_dir_all(&data).unwrap();
    let mut child = ChildServer::start(&data, &plugins, &url, "[delivery]\nbatch_size = 16\n").await;
    let http = reqwest::Client::new();
    let token = child.token();
    let configure = |base: String, token: String, secret: &'static str| {
        let http = http.clone();
        async move {
            let response = http
                .put(format!("{base}/api/v1/hooks/github"))
                .bearer_auth(token)
                .json(&json!({ "secret": secret }))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{:?}", response.text().await);
        }
    };
    wait_loaded(&http, &child.base, &token).await;
    configure(child.base.clone(), token.clone(), SECRET).await;

    // Four senders; the server dies once a third of the deliveries are acknowledged.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<usize, String>::new()));
    let mut senders = Vec::new();
    for lane in 0..4 {
        let (http, base, acked) = (http.clone(), child.base.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for n in (lane..EVENTS).step_by(4) {
                let body = payload(n, false);
                let headers = github_headers(SECRET, kind_of(n), &format!("c{n}"), &body);
                let request = http.post(format!("{base}/api/v1/hooks/github/default")).body(body);
                let request = headers.iter().fold(request, |request, (name, value)| request.header(*name, value));
                let Ok(response) = request.send().await else { return };
                if response.status() == 202 {
                    let ack: Value = response.json().await.unwrap_or_default();
                    acked.lock().unwrap().insert(n, ack["event_id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }));
    }
    let streaming = std::time::Instant::now();
    while acked.lock().unwrap().len() < EVENTS / 3 {
        assert!(streaming.elapsed() < Duration::from_secs(60), "deliveries are not being acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill();
    for sender in senders {
        let _ = sender.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= EVENTS / 3 && acked.len() < EVENTS, "the kill came mid-stream: {} acked", acked.len());

    child.restart().await;
    wait_loaded(&http, &child.base, &token).await;
    // The sender redelivers everything (as GitHub's "redeliver" would).
    for n in 0..EVENTS {
        let body = payload(n, false);
        let url = format!("{}/api/v1/hooks/github/default", child.base);
        let (status, ack) =
            deliver(&http, &url, &github_headers(SECRET, kind_of(n), &format!("c{n}"), &body), body).await;
        assert_eq!(status, 202, "{ack}");
        if let Some(first) = acked.get(&n) {
            assert_eq!((ack["duplicate"].as_bool(), ack["event_id"].as_str()), (Some(true), Some(first.as_str())));
        }
    }

    // The reference: a second org gets the same deliveries, no crash.
    let reference_token = create_org(&http, &child.base, &token, "reference").await;
    configure(child.base.clone(), reference_token.clone(), SECRET).await;
    for n in 0..EVENTS {
        let body = payload(n, false);
        let url = format!("{}/api/v1/hooks/github/reference", child.base);
        let (status, ack) =
            deliver(&http, &url, &github_headers(SECRET, kind_of(n), &format!("c{n}"), &body), body).await;
        assert_eq!((status, &ack["duplicate"]), (202, &json!(false)), "{ack}");
    }

    let crashed = counts_reaching(&http, &child.base, &token, EVENTS as u64).await;
    let reference = counts_reaching(&http, &child.base, &reference_token, EVENTS as u64).await;
    assert_eq!(crashed["total"], EVENTS as u64, "{crashed}");
    assert_eq!(crashed["kinds"], reference["kinds"]);

    // The log holds each delivery once; metric points match the reference's.
    let db = devpulse::store::connect(&url).await.unwrap();
    use devpulse::store::entities::{event, metric_point, org};
    let orgs = org::Entity::find().all(&db).await.unwrap();
    let id_of = |slug: &str| orgs.iter().find(|org| org.slug == slug).unwrap().id.clone();
    for slug in ["default", "reference"] {
        let events = event::Entity::find()
            .filter(event::Column::Org.eq(id_of(slug)))
            .filter(event::Column::Source.eq("github"))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(events.len(), EVENTS, "{slug}");
        let points = metric_point::Entity::find()
            .filter(metric_point::Column::Org.eq(id_of(slug)))
            .filter(metric_point::Column::Plugin.eq("tally"))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(points.len(), EVENTS, "{slug}: one metric point per event");
    }
    drop(child);
    if let Some(pg) = postgres {
        db.close().await.unwrap();
        pg.drop_now().await;
    }
}

/// A plugin that subscribes to none of the log's events (the bundled `hello`
/// here) moves its cursor past them, instead of reading the whole log again
/// each time new events wake it.
async fn idle_plugins_skip_events_they_do_not_read(backend: Backend) {
    const EVENTS: usize = 1_100;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let hook = server.configure_hook("github", SECRET).await;
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (http, url) = (server.http.clone(), server.url(&hook));
        lanes.spawn(async move {
            for n in (lane..EVENTS).step_by(8) {
                let body = payload(n, false);
                let headers = github_headers(SECRET, "issues", &format!("skip-{n}"), &body);
                assert_eq!(deliver(&http, &url, &headers, body).await.0, 202);
            }
        });
    }
    while let Some(lane) = lanes.join_next().await {
        lane.unwrap();
    }
    let db = server.db().await;
    let position = server
        .wait_for(Duration::from_secs(60), || async {
            use devpulse::store::entities::delivery_cursor;
            let cursor = delivery_cursor::Entity::find()
                .filter(delivery_cursor::Column::Plugin.eq("hello"))
                .one(&db)
                .await
                .unwrap()?;
            (cursor.position >= 1_000).then_some(cursor.position)
        })
        .await;
    assert!(position.is_some(), "hello's cursor stayed behind events it does not subscribe to");
    db.close().await.unwrap();
    server.stop().await;
}

/// A partition far behind, with more than `SKIP_AHEAD` events it does not read
/// before its next one, still finds it: hello, disabled while 1,100 github
/// events arrive, handles the greeting that follows them once enabled again.
async fn a_partition_far_behind_finds_its_event_past_others(backend: Backend) {
    const EVENTS: usize = 1_100;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let hook = server.configure_hook("github", SECRET).await;
    let (status, answer) = server.post_empty("/api/v1/plugins/hello/disable").await;
    assert!((200..300).contains(&status), "{status} {answer}");
    deliver_events(&server, &hook, "far-", EVENTS).await;
    let (status, answer) = server.post_empty("/api/v1/plugins/hello/enable").await;
    assert!((200..300).contains(&status), "{status} {answer}");
    let (status, greeting) = server.post("/api/v1/hello/greetings", &json!({"name": "Ann"})).await;
    assert_eq!(status, 201, "{greeting}");
    let seen = server
        .wait_for(Duration::from_secs(60), || async {
            let (_, stats) = server.get("/api/v1/hello/stats").await;
            (stats["events_seen"] == 1).then_some(())
        })
        .await;
    assert!(seen.is_some(), "hello never handled the greeting behind {EVENTS} events it does not read");
    server.stop().await;
}

/// A rebuild handles each batch while the one before it commits. With one
/// event per batch, every batch reads what the batch before is committing:
/// tally's read-modify-write counts and its metric points must still take in
/// every event exactly once, as the live generation did.
async fn a_rebuild_reads_what_the_batch_before_is_committing(backend: Backend) {
    const EVENTS: usize = 201;
    let options = Options { config: "[delivery]\nbatch_size = 1\n".into(), ..Options::default() };
    let Some(server) = TestServer::start_with(backend, options).await else { return };
    server.install_plugin(fixtures::TALLY_V1.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "1.0.0").await;
    let hook = server.configure_hook("github", SECRET).await;
    deliver_events(&server, &hook, "p", EVENTS).await;
    let live = wait_total(&server, EVENTS as u64).await;
    let kinds = live["kinds"].as_object().unwrap();
    assert!(kinds.len() == 3 && kinds.values().all(|count| count == (EVENTS / 3) as u64), "{live}");
    server.delivered("tally", Duration::from_secs(60)).await;

    let (status, started) = server.post_empty("/api/v1/plugins/tally/rebuild").await;
    assert_eq!(status, 202, "{started}");
    rebuild_done(&server).await;
    let rebuilt = counts(&server).await;
    assert_eq!((&rebuilt["kinds"], &rebuilt["total"]), (&live["kinds"], &live["total"]));
    let org = org_id(&server).await;
    assert_eq!(metric_points(&server, &org, 1).await, (EVENTS, EVENTS as f64));
    server.stop().await;
}

/// A partition that has caught up lingers before reading on, so a steady
/// stream is folded in a few batches instead of one per event or two: the
/// first event of the stream reaches an idle partition and is handled at
/// once, the ones delivered during the linger together after it.
async fn a_steady_stream_is_folded_in_a_few_batches(backend: Backend) {
    const EVENTS: usize = 40;
    let options = Options { config: "[delivery]\nlinger_ms = 5000\n".into(), ..Options::default() };
    let Some(server) = TestServer::start_with(backend, options).await else { return };
    server.install_plugin(fixtures::TALLY_V1.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "1.0.0").await;
    let hook = server.configure_hook("github", SECRET).await;
    // One event first, so the partition runs (and is idle) before the stream starts.
    deliver_events(&server, &hook, "first-", 1).await;
    wait_total(&server, 1).await;
    deliver_events(&server, &hook, "steady-", EVENTS - 1).await;
    wait_total(&server, EVENTS as u64).await;
    let metrics = server.text("/metrics").await;
    let value = |series: &str| -> f64 {
        let line = metrics.lines().find_map(|line| line.strip_prefix(series));
        line.and_then(|value| value.trim().parse().ok()).unwrap_or_else(|| panic!("no {series} in {metrics}"))
    };
    let events = value(r#"devpulse_delivery_batch_events_sum{plugin="tally"}"#);
    let batches = value(r#"devpulse_delivery_batch_events_count{plugin="tally"}"#);
    assert_eq!(events, EVENTS as f64, "every event in one committed batch");
    // One for the first event, then one per linger the stream lasts (it takes
    // a second or two); without the linger, one every event or two.
    assert!(batches <= 4.0, "{batches} batches for {EVENTS} events");
    server.stop().await;
}

on_both_backends!(
    dead_letter_then_replay,
    a_steady_stream_is_folded_in_a_few_batches,
    a_rebuild_reads_what_the_batch_before_is_committing,
    rebuild_with_a_changed_plugin,
    crash_mid_stream,
    idle_plugins_skip_events_they_do_not_read,
    a_partition_far_behind_finds_its_event_past_others
);

/// The node types of the plan PostgreSQL picks for a partition's next batch.
async fn batch_plan(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    use sea_orm::{ConnectionTrait, DbBackend, QueryTrait, Statement};
    fn node_types(node: &Value, into: &mut Vec<String>) {
        into.extend(node["Node Type"].as_str().map(str::to_owned));
        for child in node["Plans"].as_array().into_iter().flatten() {
            node_types(child, into);
        }
    }
    let query = devpulse::bus::log::batch_query("acme", 0, &["github.*".into()], 100).build(DbBackend::Postgres);
    let explain = Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("EXPLAIN (FORMAT JSON) {}", query.sql),
        query.values.unwrap_or_else(|| sea_orm::Values(Vec::new())),
    );
    let row = db.query_one(explain).await.unwrap().expect("a plan");
    let plan: Value = row.try_get("", "QUERY PLAN").unwrap();
    let mut types = Vec::new();
    node_types(&plan[0]["Plan"], &mut types);
    types
}

/// Until PostgreSQL has statistics of the log it takes an org's events for a
/// handful of rows and plans a partition's next batch as a sort of every
/// event after the cursor; once the host has analyzed the tables that
/// changed, the batch is read in index order and stops after it.
#[tokio::test]
async fn batch_reads_on_postgres_are_planned_from_fresh_statistics() {
    use devpulse::bus::log::{self, NewEntry};
    use devpulse::store::statistics;
    use sea_orm::ConnectionTrait;
    let Some(scratch) = devpulse_e2e::ScratchDatabase::create(Backend::Postgres).await else { return };
    let db = scratch.connect().await;
    // Autovacuum, where it runs, must not analyze the table first.
    db.execute_unprepared("ALTER TABLE event_log SET (autovacuum_enabled = false)").await.unwrap();
    for start in (0..3000).step_by(500) {
        let entries = (start..start + 500)
            .map(|n| NewEntry::arriving("acme", "github", "github.push", json!({"n": n}), None))
            .collect();
        log::append(&db, entries).await.unwrap();
    }
    let blind = batch_plan(&db).await;
    assert!(blind.iter().any(|node| node == "Sort"), "without statistics: {blind:?}");

    // Changes reach PostgreSQL's counters within seconds of their commit.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !statistics::refresh(&db).await.unwrap().iter().any(|table| table == "event_log") {
        assert!(std::time::Instant::now() < deadline, "event_log was never found stale");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let informed = batch_plan(&db).await;
    assert!(!informed.iter().any(|node| node == "Sort"), "with statistics: {informed:?}");
    assert!(informed.iter().any(|node| node == "Index Scan"), "with statistics: {informed:?}");
    scratch.drop_now().await;
}
