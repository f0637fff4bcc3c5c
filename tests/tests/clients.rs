//! Clients generated from the committed `docs/openapi.json` work against a
//! real server: a Python client (openapi-python-client) and a TypeScript one
//! (openapi-typescript types with openapi-fetch, checked by `tsc`). Each calls
//! every GET without required parameters and round-trips a user and a token;
//! the scripts are in `tests/contract/`.

use devpulse_e2e::{Backend, TestServer, have, repo_root, tool_path, tools_dir};
use std::path::Path;
use std::process::Command;

fn run(command: &mut Command, what: &str) -> String {
    let output = command.env("PATH", tool_path()).output().unwrap_or_else(|err| panic!("{what}: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

fn document() -> std::path::PathBuf {
    repo_root().join("docs/openapi.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_works() {
    if !have("openapi-python-client") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.yaml");
    // Several zone names share a Python identifier (`GMT+0`, `GMT0`): enums become `Literal`s.
    std::fs::write(&config, "literal_enums: true\n").unwrap();
    let package = work.path().join("devpulse_client");
    run(
        Command::new("openapi-python-client")
            .args(["generate", "--meta", "none", "--path"])
            .arg(document())
            .arg("--output-path")
            .arg(&package)
            .arg("--config")
            .arg(&config),
        "openapi-python-client generate",
    );
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let python = tools_dir().join("venv/bin/python");
    let report = run(
        Command::new(python)
            .arg(repo_root().join("tests/contract/python_client.py"))
            .arg(work.path())
            .args([&server.base, &server.token])
            .arg(document()),
        "the Python client",
    );
    assert!(report.contains("round trips"), "{report}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_typescript_client_works() {
    if !have("openapi-typescript") || !have("tsc") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let contract = repo_root().join("tests/contract");
    for file in ["typescript_client.ts", "tsconfig.json"] {
        std::fs::copy(contract.join(file), work.path().join(file)).unwrap();
    }
    std::fs::write(work.path().join("package.json"), r#"{"type": "module"}"#).unwrap();
    std::os::unix::fs::symlink(tools_dir().join("npm/node_modules"), work.path().join("node_modules")).unwrap();
    run(
        Command::new("openapi-typescript").arg(document()).arg("--output").arg(work.path().join("schema.d.ts")),
        "openapi-typescript",
    );
    run(Command::new("tsc").arg("--project").arg(work.path().join("tsconfig.json")), "tsc");
    let server = TestServer::start(Backend::Sqlite).await.expect("sqlite needs nothing");
    let script: &Path = &work.path().join("out/typescript_client.js");
    let report = run(
        Command::new("node").arg(script).args([&server.base, &server.token]).arg(document()),
        "the TypeScript client",
    );
    assert!(report.contains("round trips"), "{report}");
    server.stop().await;
}
