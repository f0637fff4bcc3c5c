//! The parts of a cluster that act on objects after they are stored, played
//! just far enough for workspaces: the Deployment controller and the kubelet
//! (a pod per replica, ready after a delay, or stuck on an image it cannot
//! pull), and the small defaults other controllers fill in (a namespace is
//! `Active`, a claim `Bound`, a service gets a cluster IP). Pods are owned by
//! their Deployment directly: the fake has no ReplicaSets.

use crate::Shared;
use crate::kinds::{Kind, by_kind};
use crate::selector::Selector;
use crate::store::{Change, Store, now};
use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

fn kind(api_version: &str, name: &str) -> &'static Kind {
    by_kind(api_version, name).expect("the fake serves every kind its controllers write")
}

/// Reacts to every change `changes` receives until the server stops.
pub async fn run(shared: Arc<Shared>, mut changes: broadcast::Receiver<Arc<Change>>) {
    loop {
        match changes.recv().await {
            Ok(change) => react(&shared, &change),
            Err(RecvError::Lagged(_)) => resync(&shared),
            Err(RecvError::Closed) => return,
        }
    }
}

fn react(shared: &Arc<Shared>, change: &Change) {
    let object = change.object();
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
    match (change.kind.kind, &change.after) {
        ("Deployment", Some(deployment)) => {
            let name = deployment["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            reconcile_deployment(shared, &namespace, &name);
        }
        ("Pod", _) => {
            let owner = object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["kind"] == "Deployment")
                .and_then(|r| r["name"].as_str());
            if let Some(owner) = owner {
                reconcile_deployment(shared, &namespace, owner);
            }
        }
        (_, Some(after)) => fill_defaults(&mut shared.store(), change.kind, after),
        _ => {}
    }
}

/// After missed changes, reconciles everything once.
fn resync(shared: &Arc<Shared>) {
    let deployments: Vec<(String, String)> = shared
        .store()
        .list(kind("apps/v1", "Deployment"), None, &Selector::default())
        .iter()
        .map(|d| {
            (
                d["metadata"]["namespace"].as_str().unwrap_or_default().into(),
                d["metadata"]["name"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    for (namespace, name) in deployments {
        reconcile_deployment(shared, &namespace, &name);
    }
}

fn fill_defaults(store: &mut Store, kind: &'static Kind, object: &Value) {
    let mut filled = object.clone();
    match kind.kind {
        "Namespace" => filled["status"] = json!({"phase": "Active"}),
        "PersistentVolumeClaim" => {
            let capacity = object["spec"]["resources"]["requests"].clone();
            filled["status"] =
                json!({"phase": "Bound", "accessModes": object["spec"]["accessModes"], "capacity": capacity});
        }
        "Service" if object["spec"]["clusterIP"].is_null() => {
            let revision = store.revision();
            filled["spec"]["clusterIP"] = json!(format!("10.96.{}.{}", (revision >> 8) & 0xff, revision & 0xff));
        }
        _ => return,
    }
    if filled != *object {
        store.put(kind, filled);
    }
}

fn template_hash(template: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    format!("{:010x}", hasher.finish() & 0xff_ffff_ffff)
}

fn owned_by<'a>(pods: Vec<&'a Value>, uid: &Value) -> Vec<&'a Value> {
    pods.into_iter()
        .filter(|pod| pod["metadata"]["ownerReferences"].as_array().into_iter().flatten().any(|r| r["uid"] == *uid))
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Brings a Deployment's pods to its replica count and template, then its status to its pods.
fn reconcile_deployment(shared: &Arc<Shared>, namespace: &str, name: &str) {
    let (deployments, pods) = (kind("apps/v1", "Deployment"), kind("v1", "Pod"));
    let mut store = shared.store();
    let Some(deployment) = store.get(deployments, namespace, name).cloned() else { return };
    let uid = deployment["metadata"]["uid"].clone();
    let wanted = deployment["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let hash = template_hash(&deployment["spec"]["template"]);

    let current: Vec<Value> =
        owned_by(store.list(pods, Some(namespace), &Selector::default()), &uid).into_iter().cloned().collect();
    let (matching, outdated): (Vec<Value>, Vec<Value>) =
        current.into_iter().partition(|pod| pod["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
    for pod in outdated.iter().chain(matching.iter().skip(wanted)) {
        store.delete(pods, namespace, pod["metadata"]["name"].as_str().unwrap_or_default());
    }
    for _ in matching.len()..wanted {
        let pod = new_pod(shared, &store, &deployment, &hash);
        let created = store.put(pods, pod);
        shared.schedule_start(&created);
    }

    let owned: Vec<Value> =
        owned_by(store.list(pods, Some(namespace), &Selector::default()), &uid).into_iter().cloned().collect();
    let ready = owned.iter().filter(|pod| is_ready(pod)).count();
    let available = ready >= wanted;
    let mut status = json!({
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": owned.len(),
        "updatedReplicas": owned.iter().filter(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str()).count(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [
            {"type": "Available", "status": if available { "True" } else { "False" },
             "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
             "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." }},
            {"type": "Progressing", "status": "True",
             "reason": if ready == wanted { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
             "message": format!("Deployment \"{name}\" has {ready} of {wanted} replicas ready.")},
        ],
    });
    if wanted > ready {
        status["unavailableReplicas"] = json!(wanted - ready);
    }
    let keep_times = |mut status: Value, old: &Value| {
        for (condition, previous) in status["conditions"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .zip(old["conditions"].as_array().into_iter().flatten())
        {
            if condition["status"] == previous["status"] && condition["reason"] == previous["reason"] {
                condition["lastTransitionTime"] = previous["lastTransitionTime"].clone();
            }
        }
        status
    };
    let mut status = keep_times(status, &deployment["status"]);
    for condition in status["conditions"].as_array_mut().into_iter().flatten() {
        if condition["lastTransitionTime"].is_null() {
            condition["lastTransitionTime"] = json!(now());
        }
    }
    if deployment["status"] != status {
        let mut updated = deployment;
        updated["status"] = status;
        store.put(deployments, updated);
    }
}

fn container_states(containers: &Value, waiting: &Value) -> Value {
    let states: Vec<Value> = containers
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"name": c["name"], "image": c["image"], "ready": false, "restartCount": 0, "started": false, "state": {"waiting": waiting}}))
        .collect();
    Value::Array(states)
}

fn new_pod(shared: &Shared, store: &Store, deployment: &Value, hash: &str) -> Value {
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    let template = &deployment["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let suffix = format!("{:05x}", (store.revision() * 2_654_435_761) & 0xfffff);
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!("fake-node");
    let waiting = match shared.unpullable_image(&spec) {
        Some(image) => {
            json!({"reason": "ErrImagePull", "message": format!("failed to pull image \"{image}\": not found")})
        }
        None => json!({"reason": "ContainerCreating"}),
    };
    let init_waiting = json!({"reason": "PodInitializing"});
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{name}-{hash}-{suffix}"),
            "namespace": deployment["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": deployment["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}],
            "initContainerStatuses": container_states(&template["spec"]["initContainers"], &init_waiting),
            "containerStatuses": container_states(&template["spec"]["containers"], &waiting),
        },
    });
    if let Some(annotations) = template["metadata"].get("annotations") {
        pod["metadata"]["annotations"] = annotations.clone();
    }
    pod
}

/// The kubelet's part once a pod's delay has passed: it runs, or it backs off pulling.
pub fn start_pod(shared: &Shared, namespace: &str, name: &str, uid: &Value) {
    let pods = kind("v1", "Pod");
    let mut store = shared.store();
    let Some(pod) = store.get(pods, namespace, name).filter(|p| p["metadata"]["uid"] == *uid).cloned() else { return };
    let mut started = pod.clone();
    let at = now();
    match shared.unpullable_image(&pod["spec"]) {
        Some(image) => {
            let waiting =
                json!({"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")});
            started["status"]["containerStatuses"] = container_states(&pod["spec"]["containers"], &waiting);
        }
        None => {
            let terminated: Vec<Value> = pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({"name": c["name"], "image": c["image"], "ready": true, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at, "finishedAt": at}}})
                })
                .collect();
            let running: Vec<Value> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({"name": c["name"], "image": c["image"], "ready": true, "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": at}}})
                })
                .collect();
            started["status"] = json!({
                "phase": "Running",
                "podIP": format!("10.244.0.{}", store.revision() & 0xff),
                "startTime": at,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": at},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": at},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": at},
                    {"type": "Ready", "status": "True", "lastTransitionTime": at},
                ],
                "initContainerStatuses": terminated,
                "containerStatuses": running,
            });
        }
    }
    if started != pod {
        store.put(pods, started);
    }
}

/// What `GET .../pods/{name}/log` answers: a line per container the pod ran.
pub fn pod_log(pod: &Value, container: Option<&str>) -> Result<String, String> {
    let all: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().into_iter().flatten())
        .collect();
    let chosen: Vec<&Value> = match container {
        Some(name) => {
            let found: Vec<&Value> = all.into_iter().filter(|c| c["name"] == name).collect();
            if found.is_empty() {
                return Err(format!(
                    "container {name} is not valid for pod {}",
                    pod["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
            found
        }
        None => all,
    };
    Ok(chosen
        .iter()
        .map(|c| {
            format!(
                "fake-kube: container {} ran image {} with command {} and args {}\n",
                c["name"], c["image"], c["command"], c["args"]
            )
        })
        .collect())
}
