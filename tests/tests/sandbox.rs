//! The sandbox holds: a plugin that loops, hoards memory, panics or hammers a
//! host import fails only that call, and the server stays healthy. Ungranted
//! capabilities answer `denied`.

use devpulse::store::entities::plugin_document;
use devpulse_e2e::{Backend, Options, TestServer, fixtures};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONFIG: &str = r#"
[plugins.misbehave]
deadline_ms = 400
memory_mib = 16
"#;

async fn start(config: &str) -> TestServer {
    let server = TestServer::start_with(Backend::Sqlite, Options { config: config.into(), ..Options::default() })
        .await
        .expect("sqlite needs nothing");
    server.install_plugin(fixtures::MISBEHAVE.as_ref(), "misbehave.wasm");
    let loaded = server
        .wait_for(Duration::from_secs(10), || async {
            (server.get("/api/v1/misbehave/ok").await.0 == 200).then_some(())
        })
        .await;
    assert!(loaded.is_some(), "misbehave loads");
    server
}

async fn assert_healthy(server: &TestServer) {
    assert_eq!(server.get("/health").await.0, 200);
    assert_eq!(server.get("/api/v1/misbehave/ok").await.0, 200, "the same plugin serves its next call");
    assert_eq!(server.post("/api/v1/hello/greetings", &json!({"name": "Ann"})).await.0, 201, "other plugins serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_only_its_own_call() {
    let server = start(CONFIG).await;
    let cases = [
        ("/api/v1/misbehave/loop", 504, "urn:devpulse:problem:plugin-timeout", "deadline"),
        ("/api/v1/misbehave/hostloop", 504, "urn:devpulse:problem:plugin-timeout", "deadline"),
        ("/api/v1/misbehave/alloc", 500, "urn:devpulse:problem:plugin-memory-limit", "16777216 bytes"),
        ("/api/v1/misbehave/panic", 500, "urn:devpulse:problem:plugin-trap", "misbehave panicked on purpose"),
    ];
    for (path, status, kind, detail) in cases {
        let (got, problem) = server.get(path).await;
        assert_eq!(got, status, "{path}: {problem}");
        assert_eq!(problem["type"], kind, "{path}: {problem}");
        let text = problem["detail"].as_str().unwrap_or_default();
        assert!(text.contains(detail), "{path}: {text:?} should mention {detail:?}");
        assert_healthy(&server).await;
    }
    let db = server.db().await;
    let documents =
        plugin_document::Entity::find().filter(plugin_document::Column::Plugin.eq("misbehave")).all(&db).await.unwrap();
    assert!(documents.is_empty(), "a trapped call commits nothing: {documents:?}");
    db.close().await.unwrap();
    let (_, info) = server.plugin("misbehave").await;
    let stats = &info["stats"]["on-request"];
    assert_eq!(stats["timeouts"], 2, "{info}");
    assert_eq!(stats["memory_exceeded"], 1, "{info}");
    assert_eq!(stats["traps"], 1, "{info}");
    let metrics = server.text("/metrics").await;
    assert!(
        metrics.contains(r#"devpulse_plugin_calls_total{export="on-request",outcome="timeout",plugin="misbehave"} 2"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_no_environment_files_or_sockets() {
    let server = start(CONFIG).await;
    let (status, body) = server.get("/api/v1/misbehave/escape").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["env_vars"], 0, "{body}");
    for refused in ["root_listing", "file_read", "tcp_connect"] {
        assert!(body[refused]["Err"].is_string(), "{refused} should fail: {body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_http_is_denied() {
    let server = start(CONFIG).await;
    let (status, body) = server.get("/api/v1/misbehave/fetch?url=http://127.0.0.1:9/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["denied"], "the http capability is not granted to this plugin");
    let (_, info) = server.plugin("misbehave").await;
    assert_eq!(info["capabilities_requested"], json!(["http"]));
    assert_eq!(info["capabilities_granted"], json!([]));
    server.stop().await;
}

/// Answers every connection with one fixed HTTP response.
async fn tiny_http_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello").await;
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_http_reaches_only_allowed_hosts() {
    let config = format!("{CONFIG}grants = [\"http\"]\nhttp_allow = [\"127.0.0.1\"]\n");
    let server = start(&config).await;
    let port = tiny_http_server().await;
    let (status, body) = server.get(&format!("/api/v1/misbehave/fetch?url=http://127.0.0.1:{port}/")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": 200, "body": "hello"}));
    let (_, body) = server.get(&format!("/api/v1/misbehave/fetch?url=http://localhost:{port}/")).await;
    assert_eq!(body["denied"], "host localhost is not in this plugin's http allow-list");
    server.stop().await;
}
