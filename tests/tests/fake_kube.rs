//! The fake Kubernetes API server (`tests/fake-kube`) checked with clients
//! written by others: the real `kubectl` lists, reads, waits on, applies to
//! and deletes from it as from a cluster, and kube-rs (the client DevPulse's
//! host uses) lists, applies and watches, resuming after a compaction.

use devpulse_e2e::kube::Kubectl;
use devpulse_e2e::runs;
use fake_kube::{Config, FakeKube};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;
use std::time::{Duration, Instant};

/// A workspace's objects, as a plugin would render them, in one stream of documents.
fn workspace_manifest(namespace: &str, image: &str) -> String {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"devpulse.dev/owner": "ada"}}}),
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "workspace", "namespace": namespace},
               "spec": {"hard": {"requests.cpu": "2", "requests.memory": "4Gi"}}}),
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "workspace", "namespace": namespace},
               "spec": {"limits": [{"type": "Container", "default": {"cpu": "2", "memory": "4Gi"}}]}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "home", "namespace": namespace},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ide", "namespace": namespace, "labels": {"app": "ide"}},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "ide"}},
                        "template": {"metadata": {"labels": {"app": "ide"}}, "spec": {
                            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                            "initContainers": [{"name": "clone", "image": "alpine/git", "args": ["clone", "--branch", "main", "https://example.com/r.git", "/home/coder/r"]}],
                            "containers": [{"name": "ide", "image": image, "ports": [{"containerPort": 8080}]}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ide", "namespace": namespace},
               "spec": {"selector": {"app": "ide"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": namespace},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    ];
    objects.iter().map(|o| format!("---\n{o}\n")).collect()
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_uses_the_fake_as_a_cluster() {
    if !runs("kubectl", &["version", "--client"]) {
        return;
    }
    let fake = FakeKube::start("127.0.0.1:0", Config::default()).await.expect("the fake starts");
    fake.fail_pulls_of("example.com/ide:missing");
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubectl = Kubectl::new(&fake, dir.path());
    let check = tokio::task::spawn_blocking(move || {
        // Discovery: every kind a workspace uses, with its short name.
        let resources = kubectl.ok(&["api-resources", "-o", "name"], None);
        for name in
            ["deployments.apps", "networkpolicies.networking.k8s.io", "persistentvolumeclaims", "resourcequotas"]
        {
            assert!(resources.lines().any(|line| line == name), "{name} in {resources}");
        }

        // Server-side apply of a whole workspace, then reads of each object.
        let applied = kubectl.ok(
            &["apply", "--server-side", "-f", "-"],
            Some(&workspace_manifest("ws-ada", "codercom/code-server:4.96.4")),
        );
        assert!(applied.contains("deployment.apps/ide serverside-applied"), "{applied}");
        let objects = kubectl.json(&[
            "get",
            "-n",
            "ws-ada",
            "deployments,services,persistentvolumeclaims,networkpolicies,resourcequotas,limitranges",
        ]);
        let kinds: Vec<&str> =
            objects["items"].as_array().into_iter().flatten().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            ["Deployment", "Service", "PersistentVolumeClaim", "NetworkPolicy", "ResourceQuota", "LimitRange"]
        );
        let claim = kubectl.json(&["get", "-n", "ws-ada", "pvc", "home"]);
        assert_eq!(claim["status"]["phase"], "Bound");

        // kubectl wait watches the Deployment until its pod is ready.
        kubectl.ok(&["wait", "-n", "ws-ada", "--for=condition=Available", "deployment/ide", "--timeout=20s"], None);
        let pods = kubectl.json(&["get", "-n", "ws-ada", "pods", "-l", "app=ide"]);
        let pod = &pods["items"][0];
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["name"], "ide");
        assert_eq!(pod["spec"]["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let pod_name = pod["metadata"]["name"].as_str().expect("a name").to_owned();
        let log = kubectl.ok(&["logs", "-n", "ws-ada", &pod_name, "-c", "clone"], None);
        assert!(log.contains("alpine/git"), "{log}");
        assert!(
            kubectl.json(&["get", "-n", "ws-ada", "pods", "-l", "app!=ide"])["items"]
                .as_array()
                .is_some_and(Vec::is_empty)
        );

        // A second manager changing a field the first owns is a conflict, unless forced.
        let scaled = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ide", "namespace": "ws-ada"}, "spec": {"replicas": 0}});
        let (success, refused) =
            kubectl.run(&["apply", "--server-side", "--field-manager=ops", "-f", "-"], Some(&scaled.to_string()));
        assert!(!success, "{refused}");
        assert!(refused.contains("conflict with \"kubectl\": .spec.replicas"), "{refused}");
        kubectl.ok(
            &["apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", "-"],
            Some(&scaled.to_string()),
        );
        let deployment = kubectl.json(&["get", "-n", "ws-ada", "deployment", "ide", "--show-managed-fields"]);
        assert_eq!(deployment["spec"]["replicas"], 0);
        let managers: Vec<&str> = deployment["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert_eq!(managers, ["kubectl", "ops"]);
        wait_until("the pod to go with the replica", || {
            kubectl.json(&["get", "-n", "ws-ada", "pods"])["items"].as_array().is_some_and(Vec::is_empty)
        });
        let claim_after = kubectl.json(&["get", "-n", "ws-ada", "pvc", "home"]);
        assert_eq!(claim_after["metadata"]["uid"], claim["metadata"]["uid"], "scaling to zero keeps the volume");

        // An image the cluster cannot pull leaves the pod waiting, with the reason.
        kubectl
            .ok(&["apply", "--server-side", "-f", "-"], Some(&workspace_manifest("ws-bob", "example.com/ide:missing")));
        wait_until("the pull to back off", || {
            let pods = kubectl.json(&["get", "-n", "ws-bob", "pods"]);
            pods["items"][0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
        });

        // Deleting a namespace deletes what it holds; a namespace that does not exist refuses objects.
        kubectl.ok(&["delete", "namespace", "ws-ada"], None);
        let (found, missing) = kubectl.run(&["get", "-n", "ws-ada", "deployment", "ide"], None);
        assert!(!found && missing.contains("NotFound"), "{missing}");
        let (created, refused) = kubectl.run(&["apply", "--server-side", "-f", "-"], Some(&scaled.to_string()));
        assert!(!created && refused.contains("namespaces \"ws-ada\" not found"), "{refused}");
    });
    check.await.expect("the kubectl checks pass");
}

#[tokio::test]
async fn kube_rs_applies_lists_and_watches_resuming_after_a_compaction() {
    let fake = FakeKube::start("127.0.0.1:0", Config { ready_delay: Duration::from_millis(50), ..Config::default() })
        .await
        .expect("the fake starts");
    let config = kube::Config::new(fake.url.parse().expect("a URL"));
    let client = kube::Client::try_from(config).expect("a client");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let mut events = watcher(pods.clone(), watcher::Config::default().labels("app=ide")).boxed();
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ide", "labels": {"app": "ide"}},
        "spec": {"selector": {"matchLabels": {"app": "ide"}},
                 "template": {"metadata": {"labels": {"app": "ide"}}, "spec": {"containers": [{"name": "ide", "image": "code-server"}]}}},
    });
    let params = PatchParams::apply("devpulse.k8s");
    let applied = deployments.patch("ide", &params, &Patch::Apply(&deployment)).await.expect("applied");
    let first_version = applied.metadata.resource_version.clone().expect("a resource version");

    // The watcher sees the pod start and become ready: as a change, or already
    // ready in its first list when that list comes after the readiness delay.
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = events.try_next().await.expect("the watch runs") {
            if let watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) = event {
                let ready = pod
                    .status
                    .and_then(|s| s.conditions)
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if ready {
                    return pod.metadata.name;
                }
            }
        }
        None
    })
    .await
    .expect("a ready pod in time")
    .expect("a pod name");
    let listed = pods.list(&ListParams::default().labels("app=ide")).await.expect("listed");
    assert_eq!(listed.items.iter().filter_map(|p| p.metadata.name.clone()).collect::<Vec<_>>(), [ready]);

    // After a compaction, a watch from an old version is told 410 Gone...
    fake.compact();
    let mut stale = deployments.watch(&WatchParams::default(), &first_version).await.expect("the watch opens").boxed();
    match stale.try_next().await.expect("an event") {
        Some(WatchEvent::Error(status)) => assert_eq!(status.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    // ...and the watcher, which relists on it, still sees later changes.
    let mut scaled = deployment.clone();
    scaled["spec"]["replicas"] = json!(0);
    deployments.patch("ide", &params, &Patch::Apply(&scaled)).await.expect("scaled to zero");
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = events.try_next().await.expect("the watch runs") {
            if let watcher::Event::Delete(pod) = event {
                return pod.metadata.name;
            }
        }
        None
    })
    .await
    .expect("the pod deleted in time");
    assert!(gone.is_some());
    let current = deployments.get("ide").await.expect("read back");
    assert_eq!(current.spec.and_then(|s| s.replicas), Some(0));
    assert_eq!(current.status.and_then(|s| s.ready_replicas), Some(0));
}
