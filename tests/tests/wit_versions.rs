//! A component built against the frozen WIT 0.1.0 keeps loading in a host whose
//! current version is 0.1.1, imports included.

use devpulse_e2e::{Backend, TestServer, fixtures, on_both_backends};
use serde_json::json;
use std::time::Duration;

async fn a_plugin_built_against_0_1_0_loads_and_uses_storage(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    server.install_plugin(fixtures::LEGACY.as_ref(), "legacy.wasm");
    let first = server
        .wait_for(Duration::from_secs(10), || async {
            let (status, body) = server.post_empty("/api/v1/legacy/ping").await;
            (status == 200).then_some(body)
        })
        .await;
    assert_eq!(first, Some(json!({"pings": 1, "wit": "0.1.0"})));
    let (_, body) = server.post_empty("/api/v1/legacy/ping").await;
    assert_eq!(body["pings"], 2);
    let (_, info) = server.plugin("legacy").await;
    assert_eq!(info["wit_version"], "0.1.0");
    let (_, hello) = server.plugin("hello").await;
    assert_eq!(hello["wit_version"], devpulse::wit::LATEST);
    server.stop().await;
}

on_both_backends!(a_plugin_built_against_0_1_0_loads_and_uses_storage);
