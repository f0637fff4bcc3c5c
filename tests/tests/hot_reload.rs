//! Hot reload: plugins appear, change and disappear with their files, while
//! requests keep being served, and bad files are listed with their reasons.

use devpulse_e2e::{Backend, Options, TestServer, fixtures};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(10);

async fn greeter_version(server: &TestServer) -> Option<String> {
    let (status, body) = server.get("/api/v1/greeter/version").await;
    (status == 200).then(|| body["version"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_file_serves_then_upgrades_under_load_then_leaves() {
    // The clients below send thousands of requests on one token: the rate
    // limit is not what is tested, and a `429` would read as a failed swap.
    let options = Options { config: "[rate_limits]\nper_token = 0\n".into(), ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("sqlite needs nothing");
    server.install_plugin(fixtures::GREETER_V1.as_ref(), "greeter.wasm");
    let version = server.wait_for(WITHIN, || greeter_version(&server)).await;
    assert_eq!(version.as_deref(), Some("1.0.0"), "the new plugin answers within seconds");
    let document = server.document().await;
    assert!(document["paths"]["/api/v1/greeter/version"]["get"].is_object(), "the document follows hot loads");

    // Clients hammer the route while the file is replaced by version 2.
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (server, stop, failures, served) = (server.clone(), stop.clone(), failures.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            let mut seen_v2 = false;
            while !stop.load(Ordering::Relaxed) {
                match greeter_version(&server).await {
                    Some(version) => {
                        seen_v2 |= version == "2.0.0";
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            seen_v2
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.install_plugin(fixtures::GREETER_V2.as_ref(), "greeter.wasm");
    let upgraded = server
        .wait_for(WITHIN, || async { (greeter_version(&server).await.as_deref() == Some("2.0.0")).then_some(()) })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut clients_saw_v2 = 0;
    for client in clients {
        clients_saw_v2 += client.await.unwrap() as u32;
    }
    assert!(upgraded.is_some(), "version 2 took over");
    assert!(clients_saw_v2 > 0);
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no request failed during the swap");
    assert!(served.load(Ordering::Relaxed) > 10, "the clients kept being served");

    std::fs::remove_file(server.plugins_dir.join("greeter.wasm")).unwrap();
    let gone = server.wait_for(WITHIN, || async { greeter_version(&server).await.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "removing the file unloads the plugin");
    let (status, _) = server.plugin("greeter").await;
    assert_eq!(status, 404);
    Arc::into_inner(server).expect("no clients left").stop().await;
}

/// The failed entry for `file` in the plugin list, once it shows up.
async fn failure_of(server: &TestServer, file: &str) -> Option<Value> {
    let (_, page) = server.get("/api/v1/plugins?limit=200").await;
    page["items"].as_array()?.iter().find(|item| item["source"].as_str().is_some_and(|s| s.ends_with(file))).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_listed_with_reasons_and_the_rest_keep_serving() {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let hello_bytes = devpulse::bundled::PLUGINS.iter().find(|(name, _)| *name == "hello").unwrap().1;
    server.install_bytes(b"this is not wasm at all", "garbage.wasm");
    server.install_bytes(b"\0asm\x01\0\0\0", "core-module.wasm");
    server.install_plugin(fixtures::FUTURE_WIT.as_ref(), "future.wasm");
    server.install_plugin(fixtures::NOT_A_PLUGIN.as_ref(), "other-world.wasm");
    server.install_plugin(fixtures::TRAP_DESCRIBE.as_ref(), "trap-describe.wasm");
    server.install_bytes(hello_bytes, "hello-copy.wasm");
    server.install_plugin(fixtures::GREETER_V1.as_ref(), "greeter.wasm");

    let expectations = [
        ("garbage.wasm", "not a WebAssembly file"),
        ("core-module.wasm", "a core WebAssembly module, not a component"),
        (
            "future.wasm",
            &format!(
                "built against devpulse:plugin@9.0.0, which this host does not support; supported versions: {}",
                devpulse::wit::SUPPORTED_VERSIONS.join(", ")
            ),
        ),
        ("other-world.wasm", "not a DevPulse plugin: the component does not export `devpulse:plugin/handler`"),
        ("trap-describe.wasm", "no manifest today"),
        ("hello-copy.wasm", "plugin name \"hello\" is already used by bundled"),
    ];
    for (file, reason) in expectations {
        let entry =
            server.wait_for(WITHIN, || failure_of(&server, file)).await.unwrap_or_else(|| panic!("{file} listed"));
        assert_eq!(entry["status"], "failed", "{entry}");
        let error = entry["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{file}: {error:?} should say {reason:?}");
    }
    assert_eq!(server.wait_for(WITHIN, || greeter_version(&server)).await.as_deref(), Some("1.0.0"));
    let (status, _) = server.post("/api/v1/hello/greetings", &json!({"name": "Ann"})).await;
    assert_eq!(status, 201, "the bundled plugin keeps serving");

    // A broken replacement leaves the running version in place, with the reason.
    server.install_bytes(b"truncated", "greeter.wasm");
    let rejected = server
        .wait_for(WITHIN, || async {
            let (_, info) = server.plugin("greeter").await;
            info["error"].as_str().filter(|e| e.contains("replacement rejected")).map(str::to_owned)
        })
        .await;
    assert!(rejected.is_some(), "the rejection is reported");
    let (_, info) = server.plugin("greeter").await;
    assert_eq!(info["status"], "running");
    assert_eq!(greeter_version(&server).await.as_deref(), Some("1.0.0"), "the old version keeps running");

    let metrics = server.text("/metrics").await;
    assert!(metrics.contains("devpulse_plugin_load_failures_total"), "load failures are counted");
    server.stop().await;
}
