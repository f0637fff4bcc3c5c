//! Workspaces end to end: the bundled `k8s` plugin, the host's kube client and
//! watches, against the fake API server (no real cluster runs here). A
//! workspace is created and runs with every object in place, stops keeping
//! its volume and starts again, hibernates when idle unless a keep-alive holds
//! it, becomes dormant and is deleted; a quota refuses a third; an image that
//! cannot be pulled fails with its reason and raises a health alert; a restart
//! of DevPulse in the middle loses no status change; a pull request gets a
//! preview workspace and takes it with it; outside its namespaces the plugin
//! is denied. `kubectl` reads what DevPulse applied.

use devpulse_e2e::kube::Kubectl;
use devpulse_e2e::{Backend, Options, TestServer};
use fake_kube::{Config, FakeKube};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(40);
const BROKEN_IMAGE: &str = "example.com/broken:1";
const KINDS: &str = r#"["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "PersistentVolumeClaim", "Deployment", "Service", "Pod"]"#;

/// A server whose k8s plugin is granted `kube` on `fake` in `namespaces`, with
/// a lifecycle pass every second and the given extra settings.
async fn server(fake: &FakeKube, dir: &Path, namespaces: &str, settings: &str) -> TestServer {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig("default")).expect("kubeconfig written");
    let config = format!(
        "[kube]\nkubeconfig = {path:?}\n\n[plugins.k8s]\ngrants = [\"kube\"]\n\n\
         [plugins.k8s.kube]\nnamespaces = [{namespaces}]\nkinds = {KINDS}\n\n\
         [plugins.k8s.schedules]\nlifecycle = 1\n\n[plugins.k8s.settings]\nmin_idle_timeout_minutes = 0\n{settings}\n",
        path = kubeconfig.display().to_string(),
    );
    TestServer::start_with(Backend::Sqlite, Options { config, ..Options::default() }).await.expect("a server")
}

async fn create(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    server.post_as(token, "/api/v1/k8s/workspaces", &body).await
}

async fn workspace(server: &TestServer, token: &str, id: &str) -> Value {
    let (status, workspace) = server.get_as(token, &format!("/api/v1/k8s/workspaces/{id}")).await;
    assert_eq!(status, 200, "{workspace}");
    workspace
}

/// Waits until the workspace is in `status`; its document then.
async fn wait_for_status(server: &TestServer, token: &str, id: &str, status: &str) -> Value {
    let reached = server
        .wait_for(WAIT, || async {
            let workspace = workspace(server, token, id).await;
            (workspace["status"] == status).then_some(workspace)
        })
        .await;
    match reached {
        Some(workspace) => workspace,
        None => panic!("{id} never became {status}: {:#}", workspace(server, token, id).await),
    }
}

fn history(workspace: &Value) -> Vec<(String, String)> {
    workspace["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|transition| {
            (
                transition["to"].as_str().unwrap_or_default().to_owned(),
                transition["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn named<'a>(objects: &'a [Value], name: &str) -> Option<&'a Value> {
    objects.iter().find(|object| object["metadata"]["name"] == name)
}

#[tokio::test]
async fn workspaces_run_stop_start_hibernate_fail_and_survive_a_restart() {
    let fake = FakeKube::start(
        "127.0.0.1:0",
        Config {
            ready_delay: Duration::from_millis(1500),
            unpullable: [BROKEN_IMAGE.to_owned()].into(),
            ..Config::default()
        },
    )
    .await
    .expect("the fake starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let settings = "dormant_after_hours = 0.002\ndelete_dormant_after_hours = 0.002\n";
    let mut server = server(&fake, dir.path(), r#""devpulse-ws-*""#, settings).await;
    let (ada, ada_token) = server.user_with_role("developer").await;
    let namespace = format!("devpulse-ws-{}", ada.to_ascii_lowercase());

    // Created: pending at once, then running once the pod is ready.
    let (status, created) =
        create(&server, &ada_token, json!({"repo": "acme/api", "branch": "main", "tier": "small"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["namespace"], namespace);
    let first = created["id"].as_str().expect("an id").to_owned();
    let running = wait_for_status(&server, &ada_token, &first, "running").await;
    assert_eq!(
        history(&running),
        [("pending", "user"), ("starting", "cluster"), ("running", "cluster")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(running["objects"].as_array().map(Vec::len), Some(3));

    // Every object, as the cluster holds it.
    let deployments = fake.objects("apps/v1", "Deployment", Some(&namespace));
    let deployment = named(&deployments, &first).expect("the Deployment");
    assert_eq!(deployment["metadata"]["labels"]["devpulse.dev/plugin"], "k8s");
    assert_eq!(deployment["metadata"]["managedFields"][0]["manager"], "devpulse.k8s");
    let pod_spec = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod_spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod_spec["initContainers"][0]["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(pod_spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(pod_spec["containers"][0]["resources"]["limits"]["cpu"], "2");
    let volumes = fake.objects("v1", "PersistentVolumeClaim", Some(&namespace));
    let volume = named(&volumes, &format!("{first}-home")).expect("the home volume").clone();
    assert_eq!(volume["status"]["phase"], "Bound");
    assert!(named(&fake.objects("v1", "ResourceQuota", Some(&namespace)), "workspaces").is_some());
    assert!(named(&fake.objects("v1", "LimitRange", Some(&namespace)), "workspaces").is_some());
    let policies = fake.objects("networking.k8s.io/v1", "NetworkPolicy", Some(&namespace));
    let policy = named(&policies, "ingress-only").expect("the network policy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    assert!(named(&fake.objects("v1", "Service", Some(&namespace)), &first).is_some());

    // kubectl reads what DevPulse applied (a blocking process: off the runtime the fake serves on).
    let kubectl = Kubectl::new(&fake, dir.path());
    let (selector, in_namespace, name) = (format!("devpulse.dev/workspace={first}"), namespace.clone(), first.clone());
    let (listed, read) = tokio::task::spawn_blocking(move || {
        let listed = kubectl.json(&["get", "deployments,pvc,services", "-n", &in_namespace, "-l", &selector]);
        (listed, kubectl.json(&["get", "deployment", &name, "-n", &in_namespace]))
    })
    .await
    .expect("kubectl ran");
    let kinds: Vec<&str> =
        listed["items"].as_array().expect("items").iter().filter_map(|item| item["kind"].as_str()).collect();
    assert_eq!(kinds, ["Deployment", "PersistentVolumeClaim", "Service"], "{listed}");
    assert_eq!(read["status"]["readyReplicas"], 1);

    // A second workspace that hibernates after 3 s idle, held by a keep-alive for 12 s.
    let (status, second) =
        create(&server, &ada_token, json!({"repo": "acme/web", "branch": "main", "idle_timeout_minutes": 0.05})).await;
    assert_eq!(status, 201, "{second}");
    let second = second["id"].as_str().expect("an id").to_owned();
    let (status, held) = server
        .post_as(&ada_token, &format!("/api/v1/k8s/workspaces/{second}/keep-alive"), &json!({"minutes": 0.2}))
        .await;
    assert_eq!(status, 202, "{held}");
    let (status, refused) = server
        .post_as(&ada_token, &format!("/api/v1/k8s/workspaces/{second}/keep-alive"), &json!({"minutes": 500}))
        .await;
    assert_eq!(status, 409, "beyond keep_alive_max_minutes: {refused}");

    // A third running workspace is beyond the quota.
    let (status, refused) = create(&server, &ada_token, json!({"repo": "acme/ops", "branch": "main"})).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["detail"].as_str().is_some_and(|detail| detail.contains("max_running_per_user")), "{refused}");

    // Stop keeps the volume; start brings the pod back on it.
    let (status, _) =
        server.call_as(&ada_token, Method::POST, &format!("/api/v1/k8s/workspaces/{first}/stop"), None).await;
    assert_eq!(status, 202);
    let stopped = wait_for_status(&server, &ada_token, &first, "stopped").await;
    assert!(history(&stopped).contains(&("stopping".to_owned(), "user".to_owned())));
    assert_eq!(
        named(&fake.objects("v1", "PersistentVolumeClaim", Some(&namespace)), &format!("{first}-home"))
            .map(|v| &v["metadata"]["uid"]),
        Some(&volume["metadata"]["uid"])
    );
    assert!(
        fake.objects("v1", "Pod", Some(&namespace))
            .iter()
            .all(|pod| pod["metadata"]["labels"]["devpulse.dev/workspace"] != first.as_str())
    );
    let (status, _) =
        server.call_as(&ada_token, Method::POST, &format!("/api/v1/k8s/workspaces/{first}/start"), None).await;
    assert_eq!(status, 202);
    wait_for_status(&server, &ada_token, &first, "running").await;

    // The keep-alive held the second past its idle timeout; then it hibernated, became dormant and was deleted.
    let held = workspace(&server, &ada_token, &second).await;
    assert_eq!(held["status"], "running", "held by the keep-alive: {held:#}");
    let idle = wait_for_status(&server, &ada_token, &second, "stopped").await;
    assert!(history(&idle).contains(&("stopping".to_owned(), "idle".to_owned())), "{idle:#}");
    let gone = wait_for_status(&server, &ada_token, &second, "deleted").await;
    let reasons = history(&gone);
    assert!(reasons.contains(&("stopped".to_owned(), "dormant".to_owned())), "{reasons:?}");
    assert!(reasons.contains(&("deleting".to_owned(), "dormant".to_owned())), "{reasons:?}");
    assert!(named(&fake.objects("v1", "PersistentVolumeClaim", Some(&namespace)), &format!("{second}-home")).is_none());

    // An image that cannot be pulled: failed with the kubelet's reason, and a health alert about its owner.
    let (status, broken) =
        create(&server, &ada_token, json!({"repo": "acme/api", "branch": "main", "image": BROKEN_IMAGE})).await;
    assert_eq!(status, 201, "{broken}");
    let broken = broken["id"].as_str().expect("an id").to_owned();
    let failed = wait_for_status(&server, &ada_token, &broken, "failed").await;
    assert!(
        failed["failure"].as_str().is_some_and(|why| why.contains("ImagePull") || why.contains("ErrImagePull")),
        "{failed:#}"
    );
    let alert = server
        .wait_for(WAIT, || async {
            let (_, alerts) = server.get("/api/v1/alerts?source=health").await;
            alerts["items"]
                .as_array()?
                .iter()
                .find(|alert| alert["key"] == format!("workspace/{broken}/workspace_failed"))
                .cloned()
        })
        .await
        .expect("a workspace_failed alert");
    assert!(alert["labels"]["user"] == ada.as_str() || alert.to_string().contains(&ada), "{alert}");
    let (status, _) =
        server.call_as(&ada_token, Method::DELETE, &format!("/api/v1/k8s/workspaces/{broken}"), None).await;
    assert_eq!(status, 204);
    wait_for_status(&server, &ada_token, &broken, "deleted").await;

    // DevPulse stops while a workspace starts; its pod becomes ready meanwhile; nothing is lost.
    let (status, late) = create(&server, &ada_token, json!({"repo": "acme/web", "branch": "next"})).await;
    assert_eq!(status, 201, "{late}");
    let late = late["id"].as_str().expect("an id").to_owned();
    wait_for_status(&server, &ada_token, &late, "starting").await;
    server.pause().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.resume().await;
    let after = wait_for_status(&server, &ada_token, &late, "running").await;
    assert_eq!(history(&after).last(), Some(&("running".to_owned(), "cluster".to_owned())));
    let (status, logs) =
        server.get_as(&ada_token, &format!("/api/v1/k8s/workspaces/{late}/logs?container=ide&tail_lines=5")).await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(logs["container"], "ide");
    server.stop().await;
}

const SECRET: &str = "preview-secret";

fn pull_request(action: &str, merged: bool) -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "action": action,
        "pull_request": {
            "number": 7, "title": "Fix the thing", "user": {"login": "ada", "type": "User"}, "draft": false,
            "state": if action == "closed" { "closed" } else { "open" },
            "created_at": now, "updated_at": now,
            "closed_at": if action == "closed" { json!(now) } else { json!(null) },
            "merged_at": if merged { json!(now) } else { json!(null) },
            "merged": merged, "merge_commit_sha": null,
            "head": {"ref": "fix/7", "sha": "7".repeat(40)}, "base": {"ref": "main", "sha": "0".repeat(40)},
            "additions": 3, "deletions": 1, "requested_reviewers": [],
        },
        "repository": {"full_name": "acme/api", "default_branch": "main"},
        "sender": {"login": "ada", "type": "User"},
    })
}

#[tokio::test]
async fn a_pull_request_gets_a_preview_workspace_that_goes_when_it_closes() {
    let fake = FakeKube::start("127.0.0.1:0", Config::default()).await.expect("the fake starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = server(&fake, dir.path(), r#""devpulse-ws-*""#, "").await;
    let (ada, _) = server.user_with_role("developer").await;
    let identities = json!({"identities": [{"provider": "github", "login": "ada"}]});
    let (status, user) =
        server.call_as(&server.token, Method::PATCH, &format!("/api/v1/users/{ada}"), Some(&identities)).await;
    assert_eq!(status, 200, "{user}");
    let (status, policy) = server
        .call_as(&server.token, Method::PUT, "/api/v1/k8s/policy", Some(&json!({"preview_repos": ["acme/api"]})))
        .await;
    assert_eq!(status, 200, "{policy}");
    let hook = server.configure_hook("github", SECRET).await;

    let opened = serde_json::to_vec(&pull_request("opened", false)).expect("JSON");
    let (status, ack) = server.deliver_github(&hook, SECRET, "pull_request", "d-1", &opened).await;
    assert_eq!(status, 202, "{ack}");
    let preview = server
        .wait_for(WAIT, || async {
            let (_, page) = server.get(&format!("/api/v1/k8s/workspaces?owner={ada}")).await;
            page["items"].as_array()?.first().cloned()
        })
        .await
        .expect("a preview workspace");
    assert_eq!(preview["preview"], json!({"repo": "acme/api", "number": 7}));
    assert_eq!(preview["branch"], "fix/7");
    let id = preview["id"].as_str().expect("an id").to_owned();
    wait_for_status(&server, &server.token, &id, "running").await;

    let closed = serde_json::to_vec(&pull_request("closed", true)).expect("JSON");
    let (status, ack) = server.deliver_github(&hook, SECRET, "pull_request", "d-2", &closed).await;
    assert_eq!(status, 202, "{ack}");
    let gone = wait_for_status(&server, &server.token, &id, "deleted").await;
    assert!(history(&gone).contains(&("deleting".to_owned(), "preview".to_owned())), "{gone:#}");
    let namespace = format!("devpulse-ws-{}", ada.to_ascii_lowercase());
    assert!(named(&fake.objects("apps/v1", "Deployment", Some(&namespace)), &id).is_none());

    // A rebuild replays all of it without touching the cluster, and comes to the same workspace.
    let revision = fake.revision();
    let (status, _) = server.post_empty("/api/v1/plugins/k8s/rebuild").await;
    assert_eq!(status, 202);
    let done = server
        .wait_for(WAIT, || async {
            let (_, rebuild) = server.get("/api/v1/plugins/k8s/rebuild").await;
            (rebuild["status"] == "done").then_some(())
        })
        .await;
    assert!(done.is_some(), "the rebuild finishes");
    let rebuilt = workspace(&server, &server.token, &id).await;
    assert_eq!(history(&rebuilt), history(&gone));
    assert_eq!(fake.revision(), revision, "no apply or delete reached the cluster");
    server.stop().await;
}

#[tokio::test]
async fn outside_its_granted_namespaces_the_plugin_is_denied() {
    let fake = FakeKube::start("127.0.0.1:0", Config::default()).await.expect("the fake starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = server(&fake, dir.path(), r#""team-*""#, "").await;
    let (status, problem) = create(&server, &server.token, json!({"repo": "acme/api", "branch": "main"})).await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|detail| detail.contains("devpulse-ws-")), "{problem}");
    assert!(fake.objects("apps/v1", "Deployment", None).is_empty());
    let (_, page) = server.get("/api/v1/k8s/workspaces").await;
    assert_eq!(page["items"], json!([]), "nothing was kept");
    server.stop().await;
}
