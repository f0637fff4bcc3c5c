//! Kubernetes watches delivered as events (WIT 0.1.7), through the `kube-probe`
//! fixture (which watches its Deployments, and its Pods labelled `app=ide`),
//! the host's kube-rs watcher and the fake API server: every change of a
//! watched object reaches the plugin as a `kube.kube-probe.*` event in the
//! object's org; a change made while DevPulse is down arrives after it starts
//! again, and an object deleted meanwhile arrives as `deleted`.

use devpulse_e2e::TestServer;
use devpulse_e2e::kube::{PROBE, deployment, namespace, operator_apply, operator_delete, probe_apply, probe_server};
use fake_kube::{Config, FakeKube};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn apply(server: &TestServer, token: &str, object: &Value) {
    let (status, stored) = probe_apply(server, token, object, false).await;
    assert_eq!(status, 200, "{stored}");
}

/// Every change the probe was told of in the caller's org, oldest first.
async fn seen(server: &TestServer, token: &str) -> Vec<Value> {
    let (status, seen) = server.get_as(token, &format!("{PROBE}/seen")).await;
    assert_eq!(status, 200, "{seen}");
    seen.as_array().expect("a list").clone()
}

/// Waits until a change after the first `told` matches; all changes seen by then.
async fn wait_for_change(
    server: &TestServer,
    token: &str,
    told: usize,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let found = server
        .wait_for(WAIT, || async {
            let seen = seen(server, token).await;
            seen.iter().skip(told).any(&matches).then_some(seen)
        })
        .await;
    match found {
        Some(seen) => seen,
        None => panic!("never saw {what}; saw {:#}", Value::Array(seen(server, token).await)),
    }
}

fn is(change: &Value, what: &str, kind: &str, name: &str) -> bool {
    change["change"] == what && change["kind"] == kind && change["name"] == name
}

fn ready_deployment(change: &Value, name: &str, ready: u64) -> bool {
    is(change, "applied", "Deployment", name) && change["status"]["readyReplicas"].as_u64().unwrap_or(0) == ready
}

fn running_pod_of(change: &Value, deployment: &str) -> bool {
    change["change"] == "applied"
        && change["kind"] == "Pod"
        && change["name"].as_str().is_some_and(|name| name.starts_with(&format!("{deployment}-")))
        && change["status"]["phase"] == "Running"
}

#[tokio::test]
async fn watched_changes_arrive_as_events_in_their_org_and_survive_a_restart() {
    let fake = FakeKube::start("127.0.0.1:0", Config { ready_delay: Duration::from_millis(100), ..Config::default() })
        .await
        .expect("the fake starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut server = probe_server(&fake, dir.path(), r#""Namespace", "Deployment", "Pod""#).await;
    let (_, plugin) = server.plugin("kube-probe").await;
    assert_eq!(plugin["wit_version"], "0.1.7");
    assert_eq!(plugin["watches"][0]["event_kind"], "kube.kube-probe.deployments");
    assert_eq!(plugin["watches"][1]["labels"], "app=ide");
    assert_eq!(plugin["watches"][1]["granted"], true);
    let subscriptions = plugin["subscriptions"].as_array().expect("subscriptions");
    assert!(subscriptions.contains(&json!("kube.kube-probe.pods")), "{plugin}");
    let ada = server.token.clone();
    let other = server.another_org("beta").await;

    // Changes as they happen: the Deployment and its pod becoming ready.
    apply(&server, &ada, &namespace("ws-ada")).await;
    apply(&server, &ada, &deployment("ws-ada", "ide", 1)).await;
    apply(&server, &ada, &deployment("ws-ada", "db", 1)).await;
    apply(&server, &other, &namespace("ws-beta")).await;
    apply(&server, &other, &deployment("ws-beta", "ide", 1)).await;
    wait_for_change(&server, &ada, 0, "ide ready", |change| ready_deployment(change, "ide", 1)).await;
    let before = wait_for_change(&server, &ada, 0, "ide's pod running", |change| running_pod_of(change, "ide")).await;
    assert!(before.iter().any(|change| is(change, "applied", "Deployment", "db")), "db's Deployment is watched");
    assert!(!before.iter().any(|change| running_pod_of(change, "db")), "db's pods are outside the pods watch");
    assert!(before.iter().all(|change| change["namespace"] == "ws-ada"), "only ada's org's objects: {before:#?}");
    let event_kinds: HashSet<&str> = before.iter().filter_map(|change| change["event_kind"].as_str()).collect();
    assert_eq!(event_kinds, HashSet::from(["kube.kube-probe.deployments", "kube.kube-probe.pods"]));
    let beta =
        wait_for_change(&server, &other, 0, "beta's ide ready", |change| ready_deployment(change, "ide", 1)).await;
    assert!(beta.iter().all(|change| change["namespace"] == "ws-beta"), "only beta's objects: {beta:#?}");

    // While DevPulse is down an operator deletes db and scales ide to zero.
    let ide_uid = before.iter().find(|change| is(change, "applied", "Deployment", "ide")).expect("ide")["uid"].clone();
    server.pause().await;
    operator_delete(&fake, "ws-ada", "db").await;
    operator_apply(
        &fake,
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ide", "namespace": "ws-ada"}, "spec": {"replicas": 0}}),
    )
    .await;
    server.resume().await;

    // The relist brings ide's new state, its pod's end and db's deletion.
    wait_for_change(&server, &ada, 0, "db deleted", |change| is(change, "deleted", "Deployment", "db")).await;
    wait_for_change(&server, &ada, 0, "ide scaled to zero", |change| {
        is(change, "applied", "Deployment", "ide") && change["status"]["replicas"] == 0
    })
    .await;
    let after = wait_for_change(&server, &ada, 0, "ide's pod gone", |change| {
        change["change"] == "deleted" && change["kind"] == "Pod"
    })
    .await;
    assert!(after.iter().any(|change| change["uid"] == ide_uid && change["change"] == "applied"));

    // A watch expired by the server (410 Gone) lists again and goes on.
    fake.compact();
    let (status, taken_back) = probe_apply(&server, &ada, &deployment("ws-ada", "ide", 1), true).await;
    assert_eq!(status, 200, "the operator's replicas taken back: {taken_back}");
    let last =
        wait_for_change(&server, &ada, after.len(), "ide running again", |change| ready_deployment(change, "ide", 1))
            .await;

    // Nothing was told twice: one event per object version, one deletion per object.
    let mut versions = HashSet::new();
    for change in &last {
        let key = (change["uid"].to_string(), change["resource_version"].to_string(), change["change"].to_string());
        assert!(versions.insert(key), "told twice: {change}");
    }
    server.stop().await;
}
