//! Plugin routes end to end: the bundled `hello` plugin answers, its writes
//! persist across a restart, and invalid input never reaches it.

use devpulse::store::entities::{event, metric_point};
use devpulse_e2e::{Backend, TestServer, on_both_backends};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

async fn hello_greets_and_remembers_across_restarts(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (status, body) = server.post("/api/v1/hello/greetings", &json!({"name": "Ann"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"message": "Hello, Ann!", "name": "Ann", "times_greeted": 1}));
    let (status, body) = server.post("/api/v1/hello/greetings", &json!({"name": "Ann"})).await;
    assert_eq!((status, body["times_greeted"].clone()), (201, json!(2)));

    // The call's event and metric point were committed with its document.
    let db = server.db().await;
    let events = event::Entity::find().filter(event::Column::Kind.eq("hello.greeted")).all(&db).await.unwrap();
    assert_eq!(events.len(), 2);
    let (_, me) = server.get("/api/v1/me").await;
    let org = me["org_id"].as_str().unwrap();
    assert!(events.iter().all(|e| e.org == org && e.source == "hello" && e.payload == json!({"name": "Ann"})));
    let points =
        metric_point::Entity::find().filter(metric_point::Column::Name.eq("hello.greetings")).all(&db).await.unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].labels, json!({"name": "Ann"}));
    db.close().await.unwrap();

    let (_, info) = server.plugin("hello").await;
    let sha = info["sha256"].as_str().unwrap().to_owned();
    let server = server.restart().await;
    let cached = std::fs::read_dir(server.data_dir.join("cache"))
        .unwrap()
        .flatten()
        .any(|engine_dir| engine_dir.path().join(format!("{sha}.cwasm")).exists());
    assert!(cached, "compiled code is cached on disk by engine and component hash");
    let (status, body) = server.get("/api/v1/hello/greetings/Ann").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["times_greeted"], 2);
    let (_, body) = server.get("/api/v1/hello/greetings/Bob").await;
    assert_eq!(body["times_greeted"], 0);
    server.stop().await;
}

async fn invalid_input_is_refused_before_the_plugin(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let calls = || async {
        let (_, plugin) = server.plugin("hello").await;
        plugin["stats"]["on-request"]["calls"].as_u64().unwrap_or(0)
    };
    let before = calls().await;
    let cases = [json!({"nam": "Ann"}), json!({"name": ""}), json!({"name": 42}), json!({"name": "x".repeat(65)})];
    for body in cases {
        let (status, problem) = server.post("/api/v1/hello/greetings", &body).await;
        assert_eq!(status, 400, "{body} -> {problem}");
        assert_eq!(problem["type"], "urn:devpulse:problem:validation-failed");
        assert!(!problem["errors"].as_array().unwrap().is_empty(), "{problem}");
    }
    let response = server
        .request(reqwest::Method::POST, "/api/v1/hello/greetings")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let (status, _) = server.get(&format!("/api/v1/hello/greetings/{}", "y".repeat(65))).await;
    assert_eq!(status, 400, "path parameters are validated too");
    assert_eq!(calls().await, before, "no invalid request reached the plugin");

    let (status, problem) = server.get("/api/v1/hello/nowhere").await;
    assert_eq!((status, problem["type"].as_str()), (404, Some("urn:devpulse:problem:not-found")));
    let response = server.request(reqwest::Method::DELETE, "/api/v1/hello/greetings").send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let (status, _) = server.get("/api/v1/nosuchplugin/x").await;
    assert_eq!(status, 404);
    server.stop().await;
}

async fn disabling_a_plugin_hides_it_until_enabled_even_across_restarts(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (status, info) = server.post("/api/v1/plugins/hello/disable", &json!({})).await;
    assert_eq!((status, info["status"].as_str()), (200, Some("disabled")));
    let (status, problem) = server.get("/api/v1/hello/greetings/Ann").await;
    assert_eq!((status, problem["type"].as_str()), (404, Some("urn:devpulse:problem:plugin-disabled")));
    let document = server.document().await;
    assert!(document["paths"].get("/api/v1/hello/greetings").is_none(), "disabled routes leave the document");

    let server = server.restart().await;
    let (_, info) = server.plugin("hello").await;
    assert_eq!(info["status"], "disabled");
    let (status, info) = server.post("/api/v1/plugins/hello/enable", &json!({})).await;
    assert_eq!((status, info["status"].as_str()), (200, Some("running")));
    let (status, _) = server.get("/api/v1/hello/greetings/Ann").await;
    assert_eq!(status, 200);
    let (status, _) = server.post("/api/v1/plugins/ghost/disable", &json!({})).await;
    assert_eq!(status, 404);
    server.stop().await;
}

on_both_backends!(
    hello_greets_and_remembers_across_restarts,
    invalid_input_is_refused_before_the_plugin,
    disabling_a_plugin_hides_it_until_enabled_even_across_restarts,
);
