//! The k8s plugin through the SDK's in-memory host: the objects a workspace
//! is made of, its status from the watches, the lifecycle's decisions, the
//! quotas and the previews, with expectations worked out by hand. The
//! end-to-end tests against the fake API server are in `tests/tests/workspaces.rs`.

use devpulse_sdk::Role;
use devpulse_sdk::testing::TestHost;
use k8s::K8s;
use k8s::lifecycle::{SCHEDULE, due};
use k8s::requests::Action;
use k8s::settings::Settings;
use k8s::workspace::{Desired, Reason, Timers, Workspace};
use serde_json::{Value, json};

const MIN: i64 = 60_000;
const H: i64 = 60 * MIN;

fn host() -> TestHost<K8s> {
    TestHost::new()
}

/// Creates a workspace and folds the requests, as the host would deliver them.
fn create(host: &TestHost<K8s>, body: Value) -> Value {
    let created = host.post("/workspaces", body).expect("created");
    assert_eq!(created.status, 201);
    host.deliver_emitted().expect("the requests fold");
    created.body.expect("a workspace")
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects.iter().find(|object| object["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {objects:#?}"))
}

#[test]
fn a_workspace_is_made_of_locked_down_typed_objects() {
    let host = host();
    let created = create(&host, json!({"repo": "acme/api", "branch": "feature/x", "tier": "small"}));
    let id = created["id"].as_str().expect("an id");
    assert!(id.starts_with("ws-"), "{id}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["namespace"], "devpulse-ws-user-1");
    let objects = host.kube_objects();
    let kinds: Vec<&str> = objects.iter().filter_map(|object| object["kind"].as_str()).collect();
    for kind in
        ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "PersistentVolumeClaim", "Deployment", "Service"]
    {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    let quota = object(&objects, "ResourceQuota");
    assert_eq!(quota["spec"]["hard"]["limits.cpu"], "16");
    let policy = object(&objects, "NetworkPolicy");
    assert_eq!(policy["spec"]["podSelector"], json!({}), "every pod of the namespace");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    let volume = object(&objects, "PersistentVolumeClaim");
    assert_eq!(volume["metadata"]["name"], format!("{id}-home"));
    assert_eq!(volume["spec"]["resources"]["requests"]["storage"], "10Gi");

    let deployment = object(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let clone = &pod["initContainers"][0];
    assert_eq!(clone["name"], "clone");
    let env: Vec<(&str, &str)> = clone["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|var| (var["name"].as_str().unwrap(), var["value"].as_str().unwrap()))
        .collect();
    assert!(env.contains(&("REPOSITORY", "https://github.com/acme/api.git")));
    assert!(env.contains(&("BRANCH", "feature/x")));
    let ide = &pod["containers"][0];
    assert_eq!(ide["image"], "codercom/code-server:4.96.4");
    assert_eq!(ide["resources"]["limits"], json!({"cpu": "2", "memory": "4Gi"}), "the small tier");
    for container in [clone, ide] {
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false, "{container}");
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(security["runAsNonRoot"], true);
        assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    }
    let service = object(&objects, "Service");
    assert_eq!(service["spec"]["selector"]["devpulse.dev/workspace"], id);
}

fn deployment_status(id: &str, replicas: u64, ready: u64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": id, "namespace": "devpulse-ws-user-1", "labels": {"devpulse.dev/workspace": id}},
        "spec": {"selector": {}, "template": {}},
        "status": {"replicas": replicas, "readyReplicas": ready},
    })
}

fn pod(id: &str, ready: bool, waiting: Option<(&str, &str)>) -> Value {
    let waiting = waiting.map(|(reason, message)| json!({"waiting": {"reason": reason, "message": message}}));
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{id}-abc"), "namespace": "devpulse-ws-user-1", "labels": {"devpulse.dev/workspace": id}},
        "status": {
            "phase": if ready { "Running" } else { "Pending" },
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{"name": "ide", "image": "x", "imageID": "", "ready": ready, "restartCount": 0,
                                   "state": waiting.unwrap_or(json!({"running": {}}))}],
        },
    })
}

fn status(host: &TestHost<K8s>, id: &str) -> Value {
    host.get(&format!("/workspaces/{id}")).expect("the workspace").body.expect("a body")
}

#[test]
fn status_follows_the_watched_deployment_and_pods_and_is_announced() {
    let host = host();
    let id = create(&host, json!({"repo": "acme/api", "branch": "main"}))["id"].as_str().unwrap().to_owned();
    host.kube_event("pods", "applied", pod(&id, false, None)).unwrap();
    assert_eq!(status(&host, &id)["status"], "starting");
    host.kube_event("pods", "applied", pod(&id, true, None)).unwrap();
    host.kube_event("deployments", "applied", deployment_status(&id, 1, 1)).unwrap();
    let running = status(&host, &id);
    assert_eq!(running["status"], "running");
    let history: Vec<&str> = running["history"].as_array().unwrap().iter().map(|t| t["to"].as_str().unwrap()).collect();
    assert_eq!(history, ["pending", "starting", "running"]);
    let announced: Vec<Value> =
        host.emitted().into_iter().filter(|(kind, _)| kind == "k8s.workspace.updated").map(|(_, p)| p).collect();
    assert_eq!(announced.last().unwrap()["status"], "running");
    assert_eq!(announced.last().unwrap()["previous"], "starting");

    // An image that cannot be pulled: failed, with the kubelet's words.
    host.kube_event("pods", "applied", pod(&id, false, Some(("ImagePullBackOff", "Back-off pulling image \"nope\""))))
        .unwrap();
    let failed = status(&host, &id);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure"], "ImagePullBackOff: Back-off pulling image \"nope\"");
}

#[test]
fn stop_keeps_the_volume_and_start_brings_the_pod_back() {
    let host = host();
    let id = create(&host, json!({"repo": "acme/api", "branch": "main"}))["id"].as_str().unwrap().to_owned();
    host.kube_event("pods", "applied", pod(&id, true, None)).unwrap();
    let stop = host.post(&format!("/workspaces/{id}/stop"), json!(null)).unwrap();
    assert_eq!(stop.status, 202);
    host.deliver_emitted().unwrap();
    assert_eq!(status(&host, &id)["status"], "stopping");
    let deployment = object(&host.kube_objects(), "Deployment").clone();
    assert_eq!(deployment["spec"]["replicas"], 0);
    host.kube_event("pods", "deleted", pod(&id, true, None)).unwrap();
    let stopped = status(&host, &id);
    assert_eq!(stopped["status"], "stopped");
    assert!(host.kube_objects().iter().any(|object| object["kind"] == "PersistentVolumeClaim"), "the volume stays");
    let last = stopped["history"].as_array().unwrap().iter().rev().nth(1).unwrap().clone();
    assert_eq!((last["to"].as_str(), last["reason"].as_str()), (Some("stopping"), Some("user")));

    host.post(&format!("/workspaces/{id}/start"), json!(null)).unwrap();
    host.deliver_emitted().unwrap();
    assert_eq!(object(&host.kube_objects(), "Deployment")["spec"]["replicas"], 1);
    assert_eq!(status(&host, &id)["status"], "pending");
}

#[test]
fn a_third_running_workspace_is_refused_naming_the_limit() {
    let host = host();
    create(&host, json!({"repo": "acme/api", "branch": "a"}));
    create(&host, json!({"repo": "acme/api", "branch": "b"}));
    let refused = host.post("/workspaces", json!({"repo": "acme/api", "branch": "c"})).unwrap_err();
    assert!(
        matches!(&refused, devpulse_sdk::Error::Denied(why) if why.contains("max_running_per_user")),
        "{refused:?}"
    );
    // Another person still may.
    let other = host.as_caller("user-2", Role::Developer);
    assert_eq!(other.post("/workspaces", json!({"repo": "acme/api", "branch": "c"})).unwrap().status, 201);
}

#[test]
fn developers_see_their_own_workspaces_and_managers_the_orgs() {
    let host = host();
    let mine = create(&host, json!({"repo": "acme/api", "branch": "a"}));
    let other = host.as_caller("user-2", Role::Developer);
    let id = mine["id"].as_str().unwrap();
    assert!(matches!(other.get(&format!("/workspaces/{id}")), Err(devpulse_sdk::Error::NotFound(_))));
    assert!(matches!(other.get("/workspaces?owner=user-1"), Err(devpulse_sdk::Error::Denied(_))));
    assert_eq!(other.get("/workspaces").unwrap().body.unwrap()["items"], json!([]));
    let manager = host.as_caller("user-3", Role::Manager);
    let all = manager.get("/workspaces?owner=*").unwrap().body.unwrap();
    assert_eq!(all["items"][0]["id"], id);

    // Pages follow the hex cursor of the last id, as the host's cursors are.
    let theirs = create(&other, json!({"repo": "acme/api", "branch": "b"}));
    let mut ids: Vec<&str> = vec![id, theirs["id"].as_str().unwrap()];
    ids.sort();
    let first = manager.get("/workspaces?owner=*&limit=1").unwrap().body.unwrap();
    assert_eq!(first["items"][0]["id"], ids[0]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{cursor}");
    let second = manager.get(&format!("/workspaces?owner=*&limit=1&cursor={cursor}")).unwrap().body.unwrap();
    assert_eq!(second["items"][0]["id"], ids[1]);
    assert_eq!(second["next_cursor"], Value::Null);
}

fn workspace(last_activity_at: i64) -> Workspace {
    serde_json::from_value(json!({
        "id": "ws-1", "owner": "user-1", "repo": "acme/api", "branch": "main", "tier": "micro",
        "image": "code-server", "namespace": "devpulse-ws-user-1",
        "idle_timeout_ms": 30 * MIN, "ttl_ms": 168 * H, "created_at": 0,
        "desired": "running", "status": "running", "failure": null,
        "last_activity_at": last_activity_at, "keep_alive_until": null, "stopped_at": null, "dormant_at": null,
        "preview": null, "observed": {"deployment": null, "deployment_deleted": false, "pods": {}},
        "history": [], "cost": {"running_ms": 0, "usd": 0.0, "since": null},
    }))
    .expect("a workspace")
}

#[test]
fn the_lifecycle_stops_idle_workspaces_unless_held_and_deletes_expired_and_dormant_ones() {
    // Settings are read through the host's config: the defaults here.
    let settings = host().call(Settings::load).unwrap();
    let due =
        |workspace: &Workspace, at: i64, over_budget: bool| due(&settings, &Timers::from(workspace), at, over_budget);
    let mut idle = workspace(0);
    assert_eq!(due(&idle, 29 * MIN, false), None);
    assert_eq!(due(&idle, 30 * MIN, false), Some((Action::Stop, Reason::Idle)));
    // A keep-alive holds it off until it runs out.
    idle.keep_alive_until = Some(90 * MIN);
    assert_eq!(due(&idle, 60 * MIN, false), None);
    assert_eq!(due(&idle, 90 * MIN, false), Some((Action::Stop, Reason::Idle)));
    // A spent budget stops it whatever its activity.
    assert_eq!(due(&workspace(H), H, true), Some((Action::Stop, Reason::Quota)));
    // Past its time to live it goes, running or not.
    assert_eq!(due(&workspace(168 * H), 168 * H, false), Some((Action::Delete, Reason::Ttl)));
    let mut stopped = workspace(0);
    stopped.desired = Desired::Stopped;
    stopped.ttl_ms = 1000 * H;
    assert_eq!(due(&stopped, 100 * H, false), None);
    stopped.dormant_at = Some(10 * H);
    assert_eq!(due(&stopped, 10 * H + 336 * H - 1, false), None);
    assert_eq!(due(&stopped, 10 * H + 336 * H, false), Some((Action::Delete, Reason::Dormant)));
}

#[test]
fn preview_workspaces_follow_their_pull_requests() {
    let host = host().with_role(Role::Admin);
    host.request(devpulse_sdk::Method::Put, "/policy", Some(json!({"preview_repos": ["acme/api"]}))).unwrap();
    let pull = |state: &str, draft: bool| json!({"repo": "acme/api", "number": 7, "author_user": "user-9", "state": state, "draft": draft, "head_ref": "fix/7"});
    host.event("github.pull.updated", pull("open", true)).unwrap();
    assert!(host.kube_objects().is_empty(), "a draft gets none");
    host.event("github.pull.updated", pull("open", false)).unwrap();
    let deployment = object(&host.kube_objects(), "Deployment").clone();
    assert_eq!(deployment["metadata"]["labels"]["devpulse.dev/owner"], "user-9");
    let manager = host.as_caller("user-3", Role::Manager);
    let listed = manager.get("/workspaces?owner=user-9").unwrap().body.unwrap();
    assert_eq!(listed["items"][0]["preview"], json!({"repo": "acme/api", "number": 7}));
    assert_eq!(listed["items"][0]["branch"], "fix/7");
    // Another update of the open pull request changes nothing; closing it deletes the workspace.
    host.event("github.pull.updated", pull("open", false)).unwrap();
    assert_eq!(host.kube_objects().iter().filter(|object| object["kind"] == "Deployment").count(), 1);
    host.event("github.pull.updated", pull("merged", false)).unwrap();
    assert!(!host.kube_objects().iter().any(|object| object["kind"] == "Deployment"));
    assert_eq!(manager.get("/workspaces?owner=user-9").unwrap().body.unwrap()["items"], json!([]));
    // Ticks go on only while workspaces live.
    host.tick(SCHEDULE, 0).unwrap();
}

#[test]
fn the_owners_heartbeats_for_the_repository_are_activity() {
    let host = host();
    let id = create(&host, json!({"repo": "acme/api", "branch": "main"}))["id"].as_str().unwrap().to_owned();
    let before = status(&host, &id)["last_activity_at"].clone();
    let later = devpulse_sdk::now() + 60_000;
    let heartbeat = |project: &str| json!({"id": project, "kind": "heartbeat", "at": later, "heartbeat": {"project": project, "is_write": false}});
    host.event("attendance.recorded", json!({"user": "user-1", "records": [heartbeat("other")]})).unwrap();
    assert_eq!(status(&host, &id)["last_activity_at"], before);
    host.event("attendance.recorded", json!({"user": "user-1", "records": [heartbeat("api")]})).unwrap();
    assert_ne!(status(&host, &id)["last_activity_at"], before);
}
