//! Signed webhook ingest: GitHub's signature test vector, every refusal
//! status, deduplication, secret rotation, and GitHub's own example payloads
//! delivered to a subscribed plugin.

use devpulse_e2e::{Backend, Options, TestServer, delivery_to, fixtures, github_headers, in_ci, on_both_backends};
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "It's a Secret to Everybody";

async fn with_tally(backend: Backend, config: &str) -> Option<TestServer> {
    let server = TestServer::start_with(backend, Options { config: config.into(), ..Options::default() }).await?;
    server.install_plugin(fixtures::TALLY_V1.as_ref(), "tally.wasm");
    server.wait_for_plugin("tally", "1.0.0").await;
    Some(server)
}

async fn total(server: &TestServer) -> u64 {
    let (status, counts) = server.get("/api/v1/tally/counts").await;
    assert_eq!(status, 200, "{counts}");
    counts["total"].as_u64().unwrap_or(0)
}

async fn statuses_and_signatures(backend: Backend) {
    let Some(server) = with_tally(backend, "[ingest]\nmax_body_bytes = 65536").await else { return };
    let path = server.configure_hook("github", SECRET).await;
    assert_eq!(path, "/api/v1/hooks/github/default");

    // GitHub's documented vector: the signature is right, so the body is looked
    // at next — and "Hello, World!" is not JSON.
    let vector = [
        ("x-github-event", "push".to_owned()),
        ("x-github-delivery", "vector".to_owned()),
        ("x-hub-signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_owned()),
    ];
    let (status, problem) = server.deliver(&path, &vector, b"Hello, World!".to_vec()).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("not JSON"), "{problem}");
    let mut wrong = vector.to_vec();
    wrong[2].1 = "sha256=657107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into();
    assert_eq!(server.deliver(&path, &wrong, b"Hello, World!".to_vec()).await.0, 401);
    assert_eq!(server.deliver(&path, &vector[..2], b"{}".to_vec()).await.0, 401, "a missing signature");

    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let (status, ack) = server.deliver_github(&path, "not the secret", "ping", "d-1", body).await;
    assert_eq!(status, 401, "{ack}");
    assert_eq!(server.deliver_github("/api/v1/hooks/gitlab/default", SECRET, "ping", "d-1", body).await.0, 404);
    assert_eq!(server.deliver_github("/api/v1/hooks/github/no-such-org", SECRET, "ping", "d-1", body).await.0, 404);
    let (status, problem) =
        server.deliver(&path, &github_headers(SECRET, "ping", "d-1", body)[1..], body.to_vec()).await;
    assert_eq!(status, 400, "missing X-GitHub-Event: {problem}");

    let status = oversized_delivery(&server, &path, 70_000).await;
    assert_eq!(status, 413);

    // Stored once; a redelivery is acknowledged as a duplicate of the same event.
    let (status, first) = server.deliver_github(&path, SECRET, "ping", "d-1", body).await;
    assert_eq!((status, &first["duplicate"]), (202, &json!(false)), "{first}");
    let (status, again) = server.deliver_github(&path, SECRET, "ping", "d-1", body).await;
    assert_eq!((status, &again["duplicate"]), (202, &json!(true)), "{again}");
    assert_eq!(again["event_id"], first["event_id"]);
    let (_, events) = server.get("/api/v1/events?source=github").await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
    let event = &events["items"][0];
    assert_eq!((event["kind"].as_str(), event["dedupe_key"].as_str()), (Some("github.ping"), Some("d-1")));
    assert_eq!(event["payload"]["hook_id"], 1);

    // Rotation: the old secret keeps working through the grace period.
    let (status, rotated) = server
        .call_as(
            &server.token,
            reqwest::Method::PUT,
            "/api/v1/hooks/github",
            Some(&json!({"secret": "the new secret"})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated.get("secret").is_none() && rotated["previous_secret_valid_until"].is_string(), "{rotated}");
    assert_eq!(server.deliver_github(&path, SECRET, "ping", "d-2", body).await.0, 202);
    assert_eq!(server.deliver_github(&path, "the new secret", "ping", "d-3", body).await.0, 202);

    let (_, hooks) = server.get("/api/v1/hooks").await;
    let github = hooks["items"].as_array().unwrap().iter().find(|hook| hook["source"] == "github").unwrap().clone();
    assert_eq!((github["configured"].as_bool(), github["deliveries"].as_u64()), (Some(true), Some(3)), "{github}");
    assert!(github["last_delivery_at"].is_string());
    let acme = hooks["items"].as_array().unwrap().iter().find(|hook| hook["source"] == "acme").unwrap().clone();
    assert_eq!(acme["configured"], false);

    // A developer may not configure sources.
    let (_, developer) = server.user_with_role("developer").await;
    let (status, _) = server
        .call_as(&developer, reqwest::Method::PUT, "/api/v1/hooks/github", Some(&json!({"secret": "xxxxxxxx"})))
        .await;
    assert_eq!(status, 403);

    let metrics = server.text("/metrics").await;
    assert!(metrics.contains(r#"devpulse_ingest_total{outcome="duplicate",source="github"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"devpulse_ingest_total{outcome="unauthorized",source="github"}"#));
    server.stop().await;
}

/// Announces a body of `length` bytes but sends only the first kilobyte, then
/// reads the answer: a 413 here arrives without the server waiting for (or
/// buffering) the rest. A client writing the whole body could instead see its
/// write fail once the server has answered and closed.
async fn oversized_delivery(server: &TestServer, path: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-GitHub-Delivery: big\r\nX-Hub-Signature-256: sha256=00\r\n\
         Content-Length: {length}\r\n\r\n{}",
        "x".repeat(1024)
    );
    stream.write_all(head.as_bytes()).await.expect("send the head");
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer before the body is complete")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    answer.split(' ').nth(1).and_then(|status| status.parse().ok()).unwrap_or_else(|| panic!("{answer}"))
}

/// The generic scheme: bare hex HMAC in a header the source names.
async fn generic_hmac_source(backend: Backend) {
    let Some(server) = with_tally(backend, "").await else { return };
    let path = server.configure_hook("acme", "acme secret").await;
    let body = br#"{"id":42}"#.to_vec();
    let signature = devpulse::auth::signature::Scheme::HmacSha256.sign(b"acme secret", &body);
    let headers =
        [("x-acme-event", "Build".to_owned()), ("x-acme-delivery", "b-1".to_owned()), ("x-acme-signature", signature)];
    let (status, ack) = server.deliver(&path, &headers, body.clone()).await;
    assert_eq!(status, 202, "{ack}");
    let (_, event) = server.get(&format!("/api/v1/events/{}", ack["event_id"].as_str().unwrap())).await;
    assert_eq!(event["kind"], "acme.build");
    let delivered = server
        .wait_for(Duration::from_secs(20), || async {
            let (_, event) = server.get(&format!("/api/v1/events/{}", ack["event_id"].as_str().unwrap())).await;
            (delivery_to(&event, "tally")["status"] == "delivered").then_some(event)
        })
        .await;
    assert!(delivered.is_some(), "tally never handled the event");
    assert_eq!(total(&server).await, 1);
    server.stop().await;
}

on_both_backends!(statuses_and_signatures, generic_hmac_source);

/// The kinds the github plugin emits for other plugins (docs/events.md).
const ANNOUNCED: &[&str] = &["github.pull.updated", "github.deployment.updated"];

/// Where `scripts/setup --test` installs `@octokit/webhooks-examples`.
fn examples_path() -> std::path::PathBuf {
    std::env::var("DEVPULSE_WEBHOOK_EXAMPLES").map(Into::into).unwrap_or_else(|_| {
        let tools = std::env::var("DEVPULSE_TOOLS_DIR").unwrap_or_else(|_| "/var/tmp/devpulse-tools".into());
        format!("{tools}/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json").into()
    })
}

/// Every example payload GitHub publishes, signed, delivered, stored once,
/// listed page by page, and handled by the subscribed plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_example_payloads() {
    let path = examples_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if !in_ci() => {
            return eprintln!("skipping: {} is missing ({err}); run scripts/setup --test", path.display());
        }
        Err(err) => panic!("{} is missing with CI=true: {err}", path.display()),
    };
    let catalogue: Vec<Value> = serde_json::from_str(&text).expect("examples are JSON");
    let Some(server) = with_tally(Backend::Sqlite, "").await else { return };
    let hook = server.configure_hook("github", SECRET).await;
    let mut sent = 0u64;
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    for entry in &catalogue {
        let event = entry["name"].as_str().expect("event name");
        for (index, example) in entry["examples"].as_array().expect("examples").iter().enumerate() {
            let body = serde_json::to_vec(example).unwrap();
            let delivery = format!("{event}-{index}");
            let (status, ack) = server.deliver_github(&hook, SECRET, event, &delivery, &body).await;
            assert_eq!(status, 202, "{event} #{index}: {ack}");
            assert_eq!(ack["duplicate"], false);
            sent += 1;
            *kinds.entry(format!("github.{event}")).or_default() += 1;
        }
    }
    assert!(sent > 300, "only {sent} examples");
    // Tally also sees what the github plugin announces after folding them.
    let delivered = |counts: &Value| kinds.keys().map(|kind| counts["kinds"][kind].as_u64().unwrap_or(0)).sum::<u64>();
    let caught_up = server
        .wait_for(Duration::from_secs(60), || async {
            let (_, counts) = server.get("/api/v1/tally/counts").await;
            (delivered(&counts) == sent).then_some(counts)
        })
        .await;
    let (_, counts) = server.get("/api/v1/tally/counts").await;
    assert!(caught_up.is_some(), "tally handled {} of {sent}", delivered(&counts));
    for (kind, count) in &kinds {
        assert_eq!(counts["kinds"][kind].as_u64(), Some(*count), "{kind}");
    }
    let announced: Vec<&String> =
        counts["kinds"].as_object().unwrap().keys().filter(|kind| !kinds.contains_key(*kind)).collect();
    assert!(announced.iter().all(|kind| ANNOUNCED.contains(&kind.as_str())), "{announced:?}");

    // The log, page by page, holds each delivery once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map(|cursor| format!("&cursor={cursor}")).unwrap_or_default();
        let (status, page) = server.get(&format!("/api/v1/events?kind=github.*&limit=100{query}")).await;
        assert_eq!(status, 200, "{page}");
        for event in page["items"].as_array().unwrap() {
            if !ANNOUNCED.contains(&event["kind"].as_str().unwrap()) {
                seen.push(event["position"].as_i64().unwrap());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, sent);
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]), "positions increase");
    let (_, pushes) = server.get("/api/v1/events?kind=github.push&limit=200").await;
    assert_eq!(pushes["items"].as_array().unwrap().len() as u64, kinds["github.push"]);

    // The lag gauges (refreshed every few seconds) settle at nothing behind.
    let settled = server
        .wait_for(Duration::from_secs(15), || async {
            let metrics = server.text("/metrics").await;
            metrics.contains(r#"devpulse_delivery_lag_events{plugin="tally"} 0"#).then_some(metrics)
        })
        .await;
    let metrics = settled.expect("the lag gauge reports tally caught up");
    assert!(metrics.contains(&format!(r#"devpulse_ingest_total{{outcome="stored",source="github"}} {sent}"#)));
    server.stop().await;
}

/// A stalled database (here: another session holding the log lock) gets GitHub
/// a 503 well inside its 10 s timeout, and the delivery succeeds once retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_database_answers_503_in_time() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let config = "[ingest]\nack_timeout_ms = 500";
    let Some(server) = with_tally(Backend::Postgres, config).await else { return };
    let hook = server.configure_hook("github", SECRET).await;
    let db = server.db().await;
    let stall = db.begin().await.unwrap();
    stall.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({})", devpulse::bus::log::LOG_LOCK)).await.unwrap();
    let started = std::time::Instant::now();
    let (status, problem) = server.deliver_github(&hook, SECRET, "push", "stalled", b"{}").await;
    assert_eq!(status, 503, "{problem}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    stall.rollback().await.unwrap();
    let (status, ack) = server.deliver_github(&hook, SECRET, "push", "stalled", b"{}").await;
    assert_eq!(status, 202, "{ack}");
    let (_, events) = server.get("/api/v1/events?kind=github.push").await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "stored once: {events}");
    server.stop().await;
}

/// On PostgreSQL an insert into the log takes the log lock by itself (the
/// table's trigger) and holds it until it commits, so an append that starts
/// while another is uncommitted waits and gets the larger position: `seq` is
/// commit order, which delivery cursors rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_on_postgres_wait_for_an_uncommitted_one() {
    use devpulse::bus::log::{self, NewEntry};
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let Some(scratch) = devpulse_e2e::ScratchDatabase::create(Backend::Postgres).await else { return };
    let db = scratch.connect().await;
    let entry = |name: &str| NewEntry::arriving("acme", "github", "github.push", json!({"name": name}), None);
    let first = db.begin().await.unwrap();
    let [held] = log::append(&first, vec![entry("first")]).await.unwrap().try_into().unwrap();

    let second = db.begin().await.unwrap();
    second.execute_unprepared("SET LOCAL lock_timeout = '100ms'").await.unwrap();
    let waited = log::append(&second, vec![entry("second")]).await.expect_err("waits for the uncommitted append");
    assert!(waited.to_string().contains("lock timeout"), "{waited}");
    second.rollback().await.unwrap();

    first.commit().await.unwrap();
    let [after] = log::append(&db, vec![entry("second")]).await.unwrap().try_into().unwrap();
    assert!(after.seq > held.seq, "{after:?} after {held:?}");
    scratch.drop_now().await;
}
