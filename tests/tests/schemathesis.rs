//! Schemathesis (property-based API testing from the OpenAPI document) against
//! a real server with the bundled plugins on SQLite: every check, every phase,
//! the stateful one included, and no failure. The run is seeded, so a failure
//! is reproduced by running this test again; its report names the request.

use devpulse_e2e::{Backend, Options, TestServer, devpulse_binary, have, repo_root, tool_path};
use std::process::Command;

/// Test cases per operation and phase: enough to find every failure this
/// suite has met, small enough for a warm CI run.
const EXAMPLES: &str = "25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure() {
    if !have("schemathesis") {
        return;
    }
    // Thousands of requests on one token: the rate limit is not what is tested here.
    let options = Options { config: "[rate_limits]\nper_token = 1000000\n".into(), ..Options::default() };
    let server = TestServer::start_with(Backend::Sqlite, options).await.expect("sqlite needs nothing");
    let work = tempfile::tempdir().unwrap();
    let output = Command::new("schemathesis")
        .arg("--config-file")
        .arg(repo_root().join("tests/contract/schemathesis.toml"))
        .args(["run", &server.url("/openapi.json"), "--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful", "--max-examples", EXAMPLES, "--seed", "42"])
        // One worker: hypothesis parses lambdas' source to describe them, and
        // CPython 3.11's `ast` can fail when threads do that at once ("AST
        // constructor recursion depth mismatch", gh-106905); CI met it.
        .args(["--workers", "1", "--no-color", "--request-timeout", "30"])
        .current_dir(work.path())
        .env("PATH", tool_path())
        .env("PYTHONPATH", repo_root().join("tests/contract"))
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("DEVPULSE_BASE", &server.base)
        .env("DEVPULSE_BINARY", devpulse_binary())
        .env("DEVPULSE_DATA_DIR", &server.data_dir)
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("Stateful"), "the stateful phase ran:\n{report}");
    server.stop().await;
}
