//! The `devpulse` binary as an operator runs it: options from the environment,
//! graceful shutdown on SIGTERM, `--help`, and `plugin inspect` errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_devpulse");

#[test]
fn serve_takes_options_from_the_environment_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("DEVPULSE_LISTEN", "127.0.0.1:0")
        .env("DEVPULSE_DATA_DIR", dir.path().join("data"))
        .env("DEVPULSE_PLUGINS_DIR", dir.path().join("plugins"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    let addr = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
        let line = lines.next().expect("the server exited early").unwrap();
        if line.contains("DevPulse is serving")
            && let Some(addr) = line.split("addr=").nth(1)
        {
            break addr.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(dir.path().join("data/devpulse.db").exists(), "SQLite lives in the data dir");
    assert!(dir.path().join("plugins").is_dir());

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean exit: {exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|line| line.contains("DevPulse stopped")), "{rest:?}");
    assert!(!addr.is_empty());
}

#[test]
fn help_documents_every_serve_option() {
    let output = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for option in ["--listen", "--data-dir", "--plugins-dir", "--database-url", "--redis-url", "--config"] {
        assert!(help.contains(option), "{option} missing from\n{help}");
    }
    assert!(help.contains("DEVPULSE_DATABASE_URL"), "environment variables are documented");
}

#[test]
fn inspect_explains_why_a_file_is_not_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("garbage.wasm");
    std::fs::write(&file, b"definitely not wasm").unwrap();
    let output = Command::new(BIN).args(["plugin", "inspect"]).arg(&file).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a loadable plugin") && stderr.contains("not a WebAssembly file"), "{stderr}");
}
