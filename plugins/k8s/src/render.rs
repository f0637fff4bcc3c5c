//! The Kubernetes objects of a workspace, as typed k8s-openapi values: a
//! namespace per person (or team) with a quota and default limits, and per
//! workspace a home volume, a Deployment running the IDE after an init
//! container clones the repository, a Service, and a network policy letting in
//! only the ingress controller. Pods run as non-root, without privilege
//! escalation, with every capability dropped and the RuntimeDefault seccomp profile.

use crate::settings::{NamespacePer, Settings, Tier};
use crate::workspace::Workspace;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, HTTPGetAction, LimitRange, LimitRangeItem, LimitRangeSpec,
    Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceQuota, ResourceQuotaSpec, ResourceRequirements, SeccompProfile,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Every workspace object carries it, so the plugin's watches find them.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const NAME: &str = "devpulse-workspace";
/// The workspace an object belongs to.
pub const WORKSPACE_LABEL: &str = "devpulse.dev/workspace";
pub const OWNER_LABEL: &str = "devpulse.dev/owner";

/// The IDE's port inside the pod.
const IDE_PORT: i32 = 8080;
/// The user code-server runs as.
const USER_ID: i64 = 1000;
const HOME: &str = "/home/coder";

/// The namespace-wide objects, shared by the workspaces in it.
pub const QUOTA: &str = "workspaces";
pub const LIMITS: &str = "workspaces";
pub const POLICY: &str = "ingress-only";

/// The namespace of `owner`'s workspaces (or `org`'s, per team): DNS-safe, at most 63 characters.
pub fn namespace_of(settings: &Settings, owner: &str, org: &str) -> String {
    let who = match settings.namespace_per {
        NamespacePer::User => owner,
        NamespacePer::Team => org,
    };
    let cleaned: String =
        who.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let mut name = format!("{}{cleaned}", settings.namespace_prefix);
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// The URL the IDE answers at.
pub fn url_of(settings: &Settings, workspace: &Workspace) -> String {
    settings.url.replace("{workspace}", &workspace.id).replace("{namespace}", &workspace.namespace)
}

pub fn volume_name(workspace: &Workspace) -> String {
    format!("{}-home", workspace.id)
}

fn labels(workspace: Option<&Workspace>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(NAME_LABEL.to_owned(), NAME.to_owned())]);
    if let Some(workspace) = workspace {
        labels.insert(WORKSPACE_LABEL.to_owned(), workspace.id.clone());
        labels.insert(OWNER_LABEL.to_owned(), workspace.owner.clone());
    }
    labels
}

fn meta(name: &str, namespace: Option<&str>, workspace: Option<&Workspace>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels(workspace)),
        ..ObjectMeta::default()
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), Quantity((*value).to_owned()))).collect()
}

/// The namespace and what every workspace in it shares.
pub struct Shared {
    pub namespace: Namespace,
    pub quota: ResourceQuota,
    pub limits: LimitRange,
    pub policy: NetworkPolicy,
}

pub fn shared(settings: &Settings, namespace: &str, smallest: &Tier) -> Shared {
    let in_namespace = Some(namespace);
    Shared {
        namespace: Namespace { metadata: meta(namespace, None, None), ..Namespace::default() },
        quota: ResourceQuota {
            metadata: meta(QUOTA, in_namespace, None),
            spec: Some(ResourceQuotaSpec {
                hard: Some(quantities(&[
                    ("requests.cpu", &settings.namespace_cpu),
                    ("limits.cpu", &settings.namespace_cpu),
                    ("requests.memory", &settings.namespace_memory),
                    ("limits.memory", &settings.namespace_memory),
                    ("requests.storage", &settings.namespace_storage),
                ])),
                ..ResourceQuotaSpec::default()
            }),
            ..ResourceQuota::default()
        },
        // Containers that name no resources (the clone) get the smallest tier's.
        limits: LimitRange {
            metadata: meta(LIMITS, in_namespace, None),
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".to_owned(),
                    default: Some(quantities(&[("cpu", &smallest.cpu), ("memory", &smallest.memory)])),
                    default_request: Some(quantities(&[("cpu", &smallest.cpu), ("memory", &smallest.memory)])),
                    ..LimitRangeItem::default()
                }],
            }),
        },
        // Default deny: every pod in the namespace takes traffic from the ingress controller only.
        policy: NetworkPolicy {
            metadata: meta(POLICY, in_namespace, None),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".to_owned()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "kubernetes.io/metadata.name".to_owned(),
                                settings.ingress_namespace.clone(),
                            )])),
                            ..LabelSelector::default()
                        }),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ..NetworkPolicyIngressRule::default()
                }]),
                ..NetworkPolicySpec::default()
            }),
        },
    }
}

pub fn volume(settings: &Settings, workspace: &Workspace) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(&volume_name(workspace), Some(&workspace.namespace), Some(workspace)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: (!settings.storage_class.is_empty()).then(|| settings.storage_class.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(quantities(&[("storage", &settings.volume_size)])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// Non-root, no privilege escalation, every capability dropped.
fn locked_down() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Capabilities::default() }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".to_owned(), ..SeccompProfile::default() }
}

fn home_mount() -> VolumeMount {
    VolumeMount { name: "home".to_owned(), mount_path: HOME.to_owned(), ..VolumeMount::default() }
}

/// The IDE, scaled to `replicas` (1 running, 0 stopped).
pub fn deployment(settings: &Settings, workspace: &Workspace, tier: &Tier, replicas: i32) -> Deployment {
    let selector = BTreeMap::from([(WORKSPACE_LABEL.to_owned(), workspace.id.clone())]);
    let env = |name: &str, value: String| EnvVar { name: name.to_owned(), value: Some(value), ..EnvVar::default() };
    let project = format!("{HOME}/project");
    let clone = Container {
        name: "clone".to_owned(),
        image: Some(settings.git_image.clone()),
        // A volume kept from an earlier start already has the code (and the person's changes).
        command: Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "test -d \"$PROJECT/.git\" || git clone --branch \"$BRANCH\" --single-branch \"$REPOSITORY\" \"$PROJECT\""
                .to_owned(),
        ]),
        env: Some(vec![
            env("REPOSITORY", settings.git_url.replace("{repo}", &workspace.repo)),
            env("BRANCH", workspace.branch.clone()),
            env("PROJECT", project.clone()),
        ]),
        volume_mounts: Some(vec![home_mount()]),
        security_context: Some(locked_down()),
        ..Container::default()
    };
    let resources = quantities(&[("cpu", &tier.cpu), ("memory", &tier.memory)]);
    let ide = Container {
        name: "ide".to_owned(),
        image: Some(workspace.image.clone()),
        args: Some(vec![
            "--bind-addr".to_owned(),
            format!("0.0.0.0:{IDE_PORT}"),
            "--auth".to_owned(),
            "none".to_owned(),
            project,
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: IDE_PORT,
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..ResourceRequirements::default()
        }),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".to_owned()),
                port: IntOrString::Int(IDE_PORT),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        }),
        volume_mounts: Some(vec![home_mount()]),
        security_context: Some(locked_down()),
        ..Container::default()
    };
    Deployment {
        metadata: meta(&workspace.id, Some(&workspace.namespace), Some(workspace)),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            // The home volume is ReadWriteOnce: the old pod goes before the new one comes.
            strategy: Some(DeploymentStrategy { type_: Some("Recreate".to_owned()), ..DeploymentStrategy::default() }),
            selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(Some(workspace))), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(USER_ID),
                        run_as_group: Some(USER_ID),
                        fs_group: Some(USER_ID),
                        seccomp_profile: Some(runtime_default()),
                        ..PodSecurityContext::default()
                    }),
                    init_containers: Some(vec![clone]),
                    containers: vec![ide],
                    volumes: Some(vec![Volume {
                        name: "home".to_owned(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: volume_name(workspace),
                            ..PersistentVolumeClaimVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

pub fn service(workspace: &Workspace) -> Service {
    Service {
        metadata: meta(&workspace.id, Some(&workspace.namespace), Some(workspace)),
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(WORKSPACE_LABEL.to_owned(), workspace.id.clone())])),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: 80,
                target_port: Some(IntOrString::String("http".to_owned())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
