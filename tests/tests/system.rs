//! Operational endpoints, plugin listing and pagination, readiness with real
//! PostgreSQL and Redis, and `plugin inspect`.

use devpulse_e2e::{Backend, Options, TestServer, fixtures};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_version_and_metrics() {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    assert_eq!(server.get("/health").await, (200, json!({"status": "ok"})));
    let (_, version) = server.get("/version").await;
    assert_eq!(version["wit_versions"], json!(devpulse::wit::SUPPORTED_VERSIONS));
    assert_eq!(server.post("/api/v1/hello/greetings", &json!({"name": "Ann"})).await.0, 201);
    assert_eq!(server.get("/nowhere").await.0, 404);
    let metrics = server.text("/metrics").await;
    for expected in [
        r#"devpulse_http_requests_total{route="/api/v1/hello/greetings",status="201"} 1"#,
        r#"devpulse_http_requests_total{route="health",status="200"} 1"#,
        r#"devpulse_plugin_calls_total{export="on-request",outcome="ok",plugin="hello"} 1"#,
        "devpulse_plugin_call_duration_seconds_bucket",
        "devpulse_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(expected), "missing {expected} in\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_list_pages_with_cursors() {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    server.install_plugin(fixtures::GREETER_V1.as_ref(), "greeter.wasm");
    server.install_plugin(fixtures::LEGACY.as_ref(), "legacy.wasm");
    let listed = server
        .wait_for(Duration::from_secs(10), || async {
            let (_, page) = server.get("/api/v1/plugins").await;
            (page["items"].as_array().map_or(0, Vec::len) == 7).then_some(())
        })
        .await;
    assert!(listed.is_some());
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/plugins?limit=2&cursor={cursor}"),
            None => "/api/v1/plugins?limit=2".to_owned(),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{page}");
        names.extend(page["items"].as_array().unwrap().iter().map(|item| item["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(names, ["attendance", "github", "greeter", "health", "hello", "k8s", "legacy"]);
    assert_eq!(server.get("/api/v1/plugins?cursor=%%%").await.0, 400);
    assert_eq!(server.get("/api/v1/plugins?limit=0").await.0, 400);
    let (status, problem) = server.get("/api/v1/plugins/nobody").await;
    assert_eq!((status, problem["type"].as_str()), (404, Some("urn:devpulse:problem:not-found")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_checks_postgres_and_redis_and_reports_an_unreachable_database() {
    let Some(server) = TestServer::start_with(Backend::Postgres, Options { redis: true, ..Options::default() }).await
    else {
        return;
    };
    let (status, body) = server.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"], json!([{"name": "database", "ok": true}, {"name": "redis", "ok": true}]));

    server.postgres.as_ref().unwrap().drop_now().await;
    let (status, body) = server.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["ok"], false);
    assert!(body["checks"][0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(server.get("/health").await.0, 200, "liveness does not depend on the database");
    server.stop().await;
}

#[tokio::test]
async fn inspect_describes_a_plugin_or_says_why_not() {
    let report = devpulse::authoring::inspect::inspect(fixtures::LEGACY.as_ref()).await.unwrap();
    assert_eq!(report.wit_version, "0.1.0");
    assert_eq!(report.manifest.name, "legacy");
    assert_eq!(report.manifest.routes[0].path, "/ping");
    let text = report.to_string();
    assert!(text.contains("WIT           devpulse:plugin@0.1.0"), "{text}");
    assert!(text.contains("/api/v1/legacy/ping"), "{text}");
    let err = devpulse::authoring::inspect::inspect(fixtures::FUTURE_WIT.as_ref()).await.unwrap_err();
    let supported = format!("supported versions: {}", devpulse::wit::SUPPORTED_VERSIONS.join(", "));
    assert!(err.to_string().contains(&supported), "{err}");
}
