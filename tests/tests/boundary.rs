//! The plugin boundary holds against a hostile plugin. A manifest over a limit
//! is refused with a reason in the plugin list; the limits are the operator's
//! (raised one at a time here, each raise revealing the next refusal); a route
//! path climbing out of its prefix never loads; an answer over its size cap is
//! refused with a problem. The server and the other plugins keep serving.

use devpulse_e2e::{Backend, Options, TestServer, fixtures};
use serde_json::Value;
use std::time::Duration;

/// Starts a server with `config`, drops the hostile fixture in and returns the
/// reason it was refused.
async fn refusal(config: &str) -> String {
    let options = Options { config: config.into(), ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("sqlite needs nothing");
    server.install_plugin(fixtures::HOSTILE.as_ref(), "hostile.wasm");
    let refused = server
        .wait_for(Duration::from_secs(60), || async {
            let (status, plugin) = server.plugin("hostile").await;
            (status == 200 && plugin["status"] == "failed")
                .then(|| plugin["error"].as_str().unwrap_or_default().to_owned())
        })
        .await
        .expect("the hostile plugin is listed as failed");
    let (status, _) = server.get("/api/v1/hello/stats").await;
    assert_eq!(status, 200, "the other plugins keep serving");
    let (status, _) = server.get("/api/v1/hostile/r1").await;
    assert_eq!(status, 404, "nothing of the refused plugin is mounted");
    let document = server.document().await;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.keys().all(|path| !path.contains("hostile") && !path.contains("..")), "nor documented");
    server.stop().await;
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_routes_are_refused() {
    let reason = refusal("").await;
    assert!(reason.contains("declares 1002 routes; this host allows at most 64 (`manifest.max_routes`"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_schema_is_refused() {
    let reason = refusal("[plugins.hostile.manifest]\nmax_routes = 2000\n").await;
    assert!(reason.contains("route POST /big: the body schema is"), "{reason}");
    assert!(reason.contains("at most 65536 are allowed (`manifest.max_schema_bytes`"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_climbing_out_of_its_prefix_is_refused() {
    let reason = refusal("[plugins.hostile.manifest]\nmax_routes = 2000\nmax_schema_bytes = 4194304\n").await;
    assert!(reason.contains("route GET /../users: path segment \"..\" is not allowed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_its_cap_is_refused_and_commits_nothing() {
    let options = Options { config: "[plugins.misbehave]\nmemory_mib = 512\n".into(), ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("sqlite needs nothing");
    server.install_plugin(fixtures::MISBEHAVE.as_ref(), "misbehave.wasm");
    server.wait_for_plugin("misbehave", "1.0.0").await;

    let (status, problem) = server.get("/api/v1/misbehave/huge?mib=64").await;
    assert_eq!(status, 502, "{problem}");
    assert_eq!(problem["type"], "urn:devpulse:problem:plugin-response-too-large");
    assert!(problem["detail"].as_str().unwrap().contains("its limit is 4194304"), "{problem}");
    let response = server.request(reqwest::Method::GET, "/api/v1/misbehave/huge?mib=1").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().len(), (1 << 20) + 2, "a JSON string of 1 MiB passes");

    let db = server.db().await;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let written = devpulse::store::entities::plugin_document::Entity::find()
        .filter(devpulse::store::entities::plugin_document::Column::Plugin.eq("misbehave"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(written, 1, "only the call under the cap committed its write");
    let (status, ok) = server.get("/api/v1/misbehave/ok").await;
    assert_eq!((status, ok), (200, serde_json::json!({"ok": true})), "the plugin keeps serving");
    let (status, _): (u16, Value) = server.get("/api/v1/hello/stats").await;
    assert_eq!(status, 200, "and so do the others");
    server.stop().await;
}
