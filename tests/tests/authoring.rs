//! The plugin author's path end to end, in each language: `devpulse plugin new`,
//! `devpulse plugin build --out` into a running server's plugins folder, then
//! its routes, storage and event subscription through the server's HTTP API.
//!
//! The Python and JavaScript builds use componentize-py and jco as installed by
//! `scripts/setup --test`; outside CI a missing tool skips its test.

use devpulse_e2e::{Backend, TestServer, devpulse_binary, have, tool_path};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A persistent cargo target folder for scaffolded crates, beside the
/// workspace's own, so repeated runs build incrementally.
fn scaffold_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors().nth(3).expect("target/<profile>/deps/<exe>").join("scaffolded")
}

fn devpulse(args: &[&str]) -> Output {
    let output = Command::new(devpulse_binary())
        .args(args)
        .env("PATH", tool_path())
        .env("CARGO_TARGET_DIR", scaffold_target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run devpulse");
    assert!(
        output.status.success(),
        "devpulse {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Scaffolds, builds and installs `name` in `lang`, then exercises it through the server.
async fn scaffold_build_and_serve(lang: &str, name: &str, prepare: impl FnOnce(&Path)) {
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let projects = tempfile::tempdir().unwrap();
    let dir = projects.path().join(name);
    let created = devpulse(&["plugin", "new", name, "--lang", lang, "--dir", dir.to_str().unwrap()]);
    assert_eq!(stdout(&created), dir.display().to_string());
    prepare(&dir);

    let built = devpulse(&["plugin", "build", dir.to_str().unwrap(), "--out", server.plugins_dir.to_str().unwrap()]);
    let installed = PathBuf::from(stdout(&built));
    assert_eq!(installed.parent(), Some(server.plugins_dir.as_path()), "{installed:?}");

    let report = stdout(&devpulse(&["plugin", "inspect", installed.to_str().unwrap()]));
    assert!(report.starts_with(&format!("{name} 0.1.0")), "{report}");
    assert!(report.contains(&format!("WIT           devpulse:plugin@{}", devpulse::wit::LATEST)), "{report}");
    assert!(report.contains(&format!("POST    /api/v1/{name}/greetings")), "{report}");
    assert!(report.contains(&format!("subscriptions {name}.greeted")), "{report}");

    server.wait_for_plugin(name, "0.1.0").await;
    for times in 1..=2 {
        let (status, body) = server.post(&format!("/api/v1/{name}/greetings"), &json!({"name": "Ada"})).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body, json!({"message": "Hello, Ada!", "name": "Ada", "times_greeted": times}));
    }
    let (status, body) = server.get(&format!("/api/v1/{name}/greetings/Ada")).await;
    assert_eq!((status, body["times_greeted"].clone()), (200, json!(2)), "{body}");
    let (status, problem) = server.post(&format!("/api/v1/{name}/greetings"), &json!({"who": "Ada"})).await;
    assert_eq!(status, 400, "the declared schema is enforced: {problem}");

    // Each greeting emitted an event the plugin subscribes to; its handler counts them.
    let seen = server
        .wait_for(Duration::from_secs(30), || async {
            let (_, stats) = server.get(&format!("/api/v1/{name}/stats")).await;
            (stats["events_seen"] == 2).then_some(())
        })
        .await;
    assert!(seen.is_some(), "events delivered: {:?}", server.get(&format!("/api/v1/{name}/stats")).await);

    let document = server.document().await;
    let post = &document["paths"][format!("/api/v1/{name}/greetings")]["post"];
    assert_eq!(post["requestBody"]["content"]["application/json"]["schema"]["required"][0], "name");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_plugin_from_new_to_a_live_route() {
    scaffold_build_and_serve("rust", "standup-bot", |dir| {
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct StandupBot;"), "the type is named after the plugin");
        // The template's native tests pass in the new project, with plain `cargo test`.
        let test = Command::new("cargo")
            .arg("test")
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", scaffold_target_dir())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&test.stdout);
        assert!(test.status.success(), "{report}\n{}", String::from_utf8_lossy(&test.stderr));
        assert!(report.contains("test result: ok. 7 passed"), "{report}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_from_new_to_a_live_route() {
    if !have("componentize-py") {
        return;
    }
    scaffold_build_and_serve("python", "py-greeter", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_plugin_from_new_to_a_live_route() {
    if !have("jco") {
        return;
    }
    scaffold_build_and_serve("js", "js-greeter", |_| {}).await;
}

#[test]
fn new_refuses_bad_names_and_occupied_folders() {
    let projects = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| Command::new(devpulse_binary()).args(args).output().unwrap();
    let bad = run(&["plugin", "new", "Bad_Name", "--dir", projects.path().join("x").to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must be 1 to 63 of a-z"), "{bad:?}");
    let reserved = run(&["plugin", "new", "metrics", "--dir", projects.path().join("y").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&reserved.stderr).contains("reserved"), "{reserved:?}");
    std::fs::write(projects.path().join("keep.txt"), "mine").unwrap();
    let occupied = run(&["plugin", "new", "fine", "--dir", projects.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&occupied.stderr).contains("not empty"), "{occupied:?}");
    let nothing = run(&["plugin", "build", projects.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("is not a plugin project"), "{nothing:?}");
}
