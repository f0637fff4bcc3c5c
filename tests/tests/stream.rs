//! The live stream end to end, on SQLite and on PostgreSQL with Redis: events
//! reach WebSocket and SSE subscribers as they are committed; a subscriber
//! that was away resumes (`since`, `Last-Event-ID`) with exactly what it
//! missed; each sees what its token may read and nothing of another org;
//! tickets work once and expire; subscription limits; and a subscriber on one
//! replica hears what another replica ingested.

use devpulse_e2e::stream::{Auth, Received, SseClient, Subscription, WsClient};
use devpulse_e2e::{Backend, Options, TestServer, on_both_backends};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
/// How long a test waits to be sure nothing more comes.
const QUIET: Duration = Duration::from_millis(700);

const SECRET: &str = "a github secret of 16+ bytes";

async fn start(backend: Backend, config: &str) -> Option<TestServer> {
    let options = Options { config: config.into(), redis: backend == Backend::Postgres, ..Options::default() };
    TestServer::start_with(backend, options).await
}

/// Delivers a GitHub `ping` numbered `n`; the event id.
async fn ping(server: &TestServer, path: &str, n: u32) -> String {
    let body = serde_json::to_vec(&json!({"zen": format!("ping {n}"), "hook_id": n})).unwrap();
    let (status, ack) =
        server.deliver_github(path, SECRET, "ping", &format!("ping-{n}-{}", ulid::Ulid::new()), &body).await;
    assert_eq!(status, 202, "{ack}");
    ack["event_id"].as_str().unwrap().to_owned()
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|event| event["id"].as_str().unwrap().to_owned()).collect()
}

fn zens(events: &[Value]) -> Vec<String> {
    events.iter().map(|event| event["payload"]["zen"].as_str().unwrap_or("").to_owned()).collect()
}

/// Events as they are committed, over both transports; then both go away,
/// events arrive, and each resumes with exactly the missed ones, in order,
/// then continues live; the same events `GET /api/v1/events` lists.
async fn events_arrive_live_and_resume_exactly(backend: Backend) {
    let Some(server) = start(backend, "").await else { return };
    let path = server.configure_hook("github", SECRET).await;
    let mut ws = WsClient::connect(&server.base, Auth::Token(&server.token), "kind=github.*").await.unwrap();
    let mut sse = SseClient::connect(&server.http, &server.base, Auth::Token(&server.token), "kind=github.*", None)
        .await
        .unwrap();
    for n in 1..=3 {
        ping(&server, &path, n).await;
    }
    let live_ws = ws.take(3, WAIT).await;
    let live_sse = sse.take(3, WAIT).await;
    assert_eq!(zens(&live_ws), ["ping 1", "ping 2", "ping 3"]);
    assert_eq!(live_ws, live_sse, "both transports carry the same events");
    let mut raw = server.request(reqwest::Method::GET, "/api/v1/stream/sse").send().await.unwrap();
    let first = raw.chunk().await.unwrap().unwrap_or_default();
    assert_eq!(&first[..], b"retry: 3000\n\n", "SSE first tells browsers when to reconnect");
    drop(raw);
    assert!(live_ws.iter().all(|event| event["kind"] == "github.ping" && event["position"].is_i64()));

    // Away while four more arrive; only the first three were taken.
    let last = live_ws[2]["position"].as_i64().unwrap();
    ws.close().await;
    drop(sse);
    for n in 4..=7 {
        ping(&server, &path, n).await;
    }
    let query = format!("kind=github.*&since={last}");
    let mut ws = WsClient::connect(&server.base, Auth::Token(&server.token), &query).await.unwrap();
    let mut sse = SseClient::connect(
        &server.http,
        &server.base,
        Auth::Token(&server.token),
        "kind=github.*&since=0",
        Some(&last.to_string()),
    )
    .await
    .unwrap();
    let missed_ws = ws.take(4, WAIT).await;
    let missed_sse = sse.take(4, WAIT).await;
    assert_eq!(zens(&missed_ws), ["ping 4", "ping 5", "ping 6", "ping 7"], "exactly the missed ones, in order");
    assert_eq!(missed_ws, missed_sse, "Last-Event-ID wins over since");
    ping(&server, &path, 8).await;
    assert_eq!(zens(&ws.take(1, WAIT).await), ["ping 8"]);
    assert_eq!(zens(&sse.take(1, WAIT).await), ["ping 8"]);
    assert_eq!(ws.next(QUIET).await, None, "nothing twice");
    assert_eq!(sse.next(QUIET).await, None, "nothing twice");

    let (_, listed) = server.get("/api/v1/events?kind=github.*").await;
    let listed = listed["items"].as_array().unwrap().clone();
    let streamed: Vec<Value> = [live_ws, missed_ws].concat();
    assert_eq!(ids(&listed)[..7], ids(&streamed)[..], "the stream is the log");
    assert_eq!(listed[..7], streamed[..], "each event as the events API shows it");

    // From position 0: the whole history, then live.
    let mut sse =
        SseClient::connect(&server.http, &server.base, Auth::Token(&server.token), "kind=github.*&since=0", None)
            .await
            .unwrap();
    assert_eq!(zens(&sse.take(8, WAIT).await).len(), 8);

    // A position past the end is refused with where the log ends.
    let (status, problem) =
        WsClient::connect(&server.base, Auth::Token(&server.token), "since=999999999").await.err().unwrap();
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("past the end of the log"), "{problem}");

    // Stopping the server ends subscriptions with where to resume.
    let position = listed[7]["position"].as_i64().unwrap();
    server.stop().await;
    match ws.next(WAIT).await {
        Some(Received::Closed { code, notice }) => {
            assert_eq!(code, Some(1001));
            assert_eq!(notice, json!({"reason": "stopping", "resume_from": position}));
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// A developer's subscription carries what `GET /api/v1/events` shows them:
/// not an alert about the org or about someone else, not another person's
/// events; a manager's carries every alert transition; another org's carries
/// nothing of this org.
async fn each_subscriber_sees_what_it_may_read(backend: Backend) {
    let Some(server) = start(backend, "").await else { return };
    let path = server.configure_hook("github", SECRET).await;
    let (ann, ann_token) = server.user_with_role("developer").await;
    let (_, bob_token) = server.user_with_role("developer").await;
    let (_, manager) = server.user_with_role("manager").await;
    let eve = server.another_org("other").await;

    let mut subscribers = Vec::new();
    for token in [&ann_token, &bob_token, &manager, &eve] {
        subscribers.push(WsClient::connect(&server.base, Auth::Token(token), "").await.unwrap());
    }
    let (status, org_alert) =
        server.post("/api/v1/alerts", &json!({"key": "db", "severity": "critical", "summary": "db down"})).await;
    assert_eq!(status, 201, "{org_alert}");
    let about_ann = json!({"key": "ann", "severity": "warning", "summary": "ann", "labels": {"user": ann}});
    let (status, ann_alert) = server.post("/api/v1/alerts", &about_ann).await;
    assert_eq!(status, 201, "{ann_alert}");
    let ack = format!("/api/v1/alerts/{}/ack", ann_alert["id"].as_str().unwrap());
    assert_eq!(server.post_as(&ann_token, &ack, &json!({})).await.0, 200);
    ping(&server, &path, 1).await;
    // The last event of the run, in the other org.
    let (status, _) =
        server.post_as(&eve, "/api/v1/alerts", &json!({"key": "eve", "severity": "info", "summary": "eve"})).await;
    assert_eq!(status, 201);

    let expected: [&[&str]; 4] = [
        &["alerts.raised", "alerts.acknowledged", "github.ping"],
        &["github.ping"],
        &["alerts.raised", "alerts.raised", "alerts.acknowledged", "github.ping"],
        &["alerts.raised"],
    ];
    for ((subscriber, token), kinds) in
        subscribers.iter_mut().zip([&ann_token, &bob_token, &manager, &eve]).zip(expected)
    {
        let got = subscriber.take(kinds.len(), WAIT).await;
        let got_kinds: Vec<&str> = got.iter().map(|event| event["kind"].as_str().unwrap()).collect();
        assert_eq!(got_kinds, kinds);
        if token == &ann_token {
            assert_eq!(got[0]["payload"]["summary"], "ann");
            assert_eq!(got[1]["payload"]["state"], "acknowledged");
            assert_eq!(got[1]["subject"], ann.as_str());
        }
        assert_eq!(subscriber.next(QUIET).await, None, "nothing else");
        let (_, listed) = server.get_as(token, "/api/v1/events").await;
        let listed: Vec<Value> =
            listed["items"].as_array().unwrap().iter().filter(|event| event["source"] != "system").cloned().collect();
        assert_eq!(ids(&listed), ids(&got), "the stream shows what the events API shows");
    }
    server.stop().await;
}

/// A ticket subscribes once, within its time, to what its caller may read;
/// the token never appears in the URL. Limits per token answer 429.
async fn tickets_work_once_and_expire(backend: Backend) {
    let config = "[stream]\nticket_seconds = 1\nmax_per_token = 2\n";
    let Some(server) = start(backend, config).await else { return };
    let path = server.configure_hook("github", SECRET).await;
    let (status, issued) = server.post("/api/v1/stream/tickets", &json!({})).await;
    assert_eq!(status, 201, "{issued}");
    let ticket = issued["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("dpt_") && !ticket.contains(&server.token));

    let mut sse =
        SseClient::connect(&server.http, &server.base, Auth::Ticket(&ticket), "kind=github.*", None).await.unwrap();
    let (status, problem) =
        SseClient::connect(&server.http, &server.base, Auth::Ticket(&ticket), "", None).await.err().unwrap();
    assert_eq!(status, 401, "a ticket works once: {problem}");
    ping(&server, &path, 1).await;
    assert_eq!(zens(&sse.take(1, WAIT).await), ["ping 1"]);

    let (_, issued) = server.post("/api/v1/stream/tickets", &json!({})).await;
    let late = issued["ticket"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = WsClient::connect(&server.base, Auth::Ticket(&late), "").await.err().unwrap();
    assert_eq!(status, 401, "an expired ticket does not work");
    let (status, _) = WsClient::connect(&server.base, Auth::Ticket("dpt_unknown"), "").await.err().unwrap();
    assert_eq!(status, 401);
    let (_, issued) = server.post("/api/v1/stream/tickets", &json!({})).await;
    let fresh = issued["ticket"].as_str().unwrap().to_owned();
    let ws = WsClient::connect(&server.base, Auth::Ticket(&fresh), "").await.unwrap();

    // The SSE subscription and the WebSocket hold this token's two places.
    let (status, problem) = WsClient::connect(&server.base, Auth::Token(&server.token), "").await.err().unwrap();
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["type"], "urn:devpulse:problem:too-many-subscriptions");
    ws.close().await;
    let freed = server
        .wait_for(WAIT, || async { WsClient::connect(&server.base, Auth::Token(&server.token), "").await.ok() })
        .await;
    assert!(freed.is_some(), "a closed subscription frees its place");
    let (status, _) = WsClient::connect(&server.base, Auth::Token("dp_not-a-token"), "").await.err().unwrap();
    assert_eq!(status, 401);
    server.stop().await;
}

/// With the smallest ring (16 events) and 300 deliveries at once, every
/// subscriber falls behind the ring and catches up from the log: each still
/// gets every event once, in order.
async fn a_subscriber_that_falls_behind_catches_up_from_the_log(backend: Backend) {
    let config = "[stream]\nbuffer_events = 16\n[rate_limits]\nper_webhook_source = 0\n";
    let Some(server) = start(backend, config).await else { return };
    let path = server.configure_hook("github", SECRET).await;
    let mut ws = WsClient::connect(&server.base, Auth::Token(&server.token), "kind=github.*").await.unwrap();
    let mut sse = SseClient::connect(&server.http, &server.base, Auth::Token(&server.token), "kind=github.*", None)
        .await
        .unwrap();
    let server = std::sync::Arc::new(server);
    let deliveries = (1..=300).map(|n| {
        let (server, path) = (server.clone(), path.clone());
        tokio::spawn(async move { ping(&server, &path, n).await })
    });
    for delivery in deliveries.collect::<Vec<_>>() {
        delivery.await.unwrap();
    }
    let (_, listed) = server.get("/api/v1/events?kind=github.*&limit=200").await;
    let (_, rest) = server
        .get(&format!("/api/v1/events?kind=github.*&limit=200&cursor={}", listed["next_cursor"].as_str().unwrap()))
        .await;
    let logged = [listed["items"].as_array().unwrap().clone(), rest["items"].as_array().unwrap().clone()].concat();
    assert_eq!(logged.len(), 300);
    assert_eq!(ids(&ws.take(300, WAIT).await), ids(&logged), "every event once, in log order");
    assert_eq!(ids(&sse.take(300, WAIT).await), ids(&logged), "every event once, in log order");
    assert_eq!(ws.next(QUIET).await, None);
    let metrics = server.text("/metrics").await;
    let catch_ups: u64 = metrics
        .lines()
        .filter(|line| line.starts_with("devpulse_stream_catch_ups_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(catch_ups >= 1, "the subscribers fell behind the ring of 16:\n{metrics}");
    std::sync::Arc::into_inner(server).unwrap().stop().await;
}

/// A subscriber that stops reading is let go after the send timeout, so it
/// holds no memory or place for long; the others go on.
async fn a_subscriber_that_stops_reading_is_closed(backend: Backend) {
    let config = "[stream]\nsend_timeout_seconds = 1\n";
    let Some(server) = start(backend, config).await else { return };
    let path = server.configure_hook("github", SECRET).await;
    let stuck = WsClient::connect(&server.base, Auth::Token(&server.token), "kind=github.*").await.unwrap();
    let mut reading = WsClient::connect(&server.base, Auth::Token(&server.token), "kind=github.*").await.unwrap();
    // 32 MiB of events: more than the kernel buffers of a connection nobody reads.
    let zen = "z".repeat(1 << 20);
    for n in 0..32 {
        let body = serde_json::to_vec(&json!({"zen": zen, "hook_id": n})).unwrap();
        let (status, ack) = server.deliver_github(&path, SECRET, "ping", &format!("big-{n}"), &body).await;
        assert_eq!(status, 202, "{ack}");
        assert_eq!(reading.take(1, WAIT).await.len(), 1);
    }
    let closed = server
        .wait_for(WAIT, || async {
            let metrics = server.text("/metrics").await;
            metrics.contains("devpulse_stream_closes_total{reason=\"slow\",transport=\"ws\"} 1").then_some(())
        })
        .await;
    assert!(closed.is_some(), "the stuck subscriber was closed: {}", server.text("/metrics").await);
    let metrics = server.text("/metrics").await;
    assert!(metrics.contains("devpulse_stream_connections{transport=\"ws\"} 1"), "{metrics}");
    drop(stuck);
    server.stop().await;
}

/// With Redis (and PostgreSQL), a subscriber on replica B hears an event
/// ingested through replica A; on SQLite the replicas share the file.
async fn a_subscriber_on_one_replica_hears_another(backend: Backend) {
    let Some(a) = start(backend, "").await else { return };
    let path = a.configure_hook("github", SECRET).await;
    let b = a.replica().await;
    let mut on_b = WsClient::connect(&b.base, Auth::Token(&b.token), "kind=github.*").await.unwrap();
    let mut sse_on_b =
        SseClient::connect(&b.http, &b.base, Auth::Token(&b.token), "kind=github.*", None).await.unwrap();
    let id = ping(&a, &path, 1).await;
    assert_eq!(ids(&on_b.take(1, WAIT).await), std::slice::from_ref(&id));
    assert_eq!(ids(&sse_on_b.take(1, WAIT).await), [id]);
    b.stop().await;
    a.stop().await;
}

on_both_backends!(
    events_arrive_live_and_resume_exactly,
    each_subscriber_sees_what_it_may_read,
    tickets_work_once_and_expire,
    a_subscriber_that_falls_behind_catches_up_from_the_log,
    a_subscriber_that_stops_reading_is_closed,
    a_subscriber_on_one_replica_hears_another,
);
