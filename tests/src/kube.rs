//! What the Kubernetes tests share: the objects they apply, a server whose
//! `kube-probe` fixture is granted `kube` on a fake cluster, and an operator
//! changing Deployments behind DevPulse's back, and `kubectl` pointed at the fake.

use crate::{Backend, Options, TestServer, fixtures};
use fake_kube::FakeKube;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Where the probe's routes are mounted.
pub const PROBE: &str = "/api/v1/kube-probe";

/// A Deployment `name` (labelled `app: name`) running `replicas` pods of code-server.
pub fn deployment(namespace: &str, name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": "code-server"}]}}},
    })
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A server on SQLite whose probe is granted `kube` on `fake`, in namespaces
/// `ws-*` and for `kinds` (the items of a TOML list); the kubeconfig goes in `dir`.
pub async fn probe_server(fake: &FakeKube, dir: &Path, kinds: &str) -> TestServer {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig("default")).expect("kubeconfig written");
    let config = format!(
        "[kube]\nkubeconfig = {path:?}\n\n[plugins.kube-probe]\ngrants = [\"kube\"]\n\n\
         [plugins.kube-probe.kube]\nnamespaces = [\"ws-*\"]\nkinds = [{kinds}]\n",
        path = kubeconfig.display().to_string(),
    );
    let server =
        TestServer::start_with(Backend::Sqlite, Options { config, ..Options::default() }).await.expect("a server");
    let loaded = install_probe(&server).await;
    assert_eq!(loaded["capabilities_granted"], json!(["kube"]));
    assert_eq!(loaded["kube_namespaces"], json!(["ws-*"]));
    server
}

/// Installs the probe and waits until it runs; its `GET /api/v1/plugins/kube-probe` document.
pub async fn install_probe(server: &TestServer) -> Value {
    server.install_plugin(fixtures::KUBE_PROBE.as_ref(), "kube-probe.wasm");
    server.wait_for_plugin("kube-probe", "1.0.0").await;
    server.plugin("kube-probe").await.1
}

/// Applies `object` through the probe as `token`'s user.
pub async fn probe_apply(server: &TestServer, token: &str, object: &Value, force: bool) -> (u16, Value) {
    server.post_as(token, &format!("{PROBE}/objects"), &json!({"object": object, "force": force})).await
}

fn deployment_url(fake: &FakeKube, namespace: &str, name: &str) -> String {
    format!("{}/apis/apps/v1/namespaces/{namespace}/deployments/{name}", fake.url)
}

/// An operator applying a Deployment with `kubectl apply --server-side
/// --force-conflicts`, straight to the fake.
pub async fn operator_apply(fake: &FakeKube, object: &Value) {
    let namespace = object["metadata"]["namespace"].as_str().expect("a namespace");
    let name = object["metadata"]["name"].as_str().expect("a name");
    let response = reqwest::Client::new()
        .patch(format!("{}?fieldManager=kubectl&force=true", deployment_url(fake, namespace, name)))
        .header("content-type", "application/apply-patch+yaml")
        .body(object.to_string())
        .send()
        .await
        .expect("the fake answers");
    assert_eq!(response.status().as_u16(), 200);
}

/// An operator deleting a Deployment (its pods go with it), straight to the fake.
pub async fn operator_delete(fake: &FakeKube, namespace: &str, name: &str) {
    let response =
        reqwest::Client::new().delete(deployment_url(fake, namespace, name)).send().await.expect("the fake answers");
    assert_eq!(response.status().as_u16(), 200);
}

/// `kubectl` with the fake's kubeconfig.
pub struct Kubectl {
    kubeconfig: PathBuf,
    /// Clients before 1.27 validate applies against OpenAPI v2 documents, which the fake does not serve.
    validate: Vec<&'static str>,
}

impl Kubectl {
    pub fn new(fake: &FakeKube, dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, fake.kubeconfig("default")).expect("kubeconfig written");
        let version = std::process::Command::new("kubectl")
            .args(["version", "--client", "-o", "json"])
            .output()
            .expect("kubectl runs");
        let version: Value = serde_json::from_slice(&version.stdout).unwrap_or_default();
        let minor: u32 =
            version["clientVersion"]["minor"].as_str().unwrap_or("0").trim_end_matches('+').parse().unwrap_or(0);
        Kubectl { kubeconfig, validate: if minor < 27 { vec!["--validate=false"] } else { Vec::new() } }
    }

    /// Runs `kubectl args` (reading `stdin`), returning its exit success and output.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        use std::io::Write;
        let mut command = std::process::Command::new("kubectl");
        command.env("KUBECONFIG", &self.kubeconfig).args(args);
        if args.first() == Some(&"apply") {
            command.args(&self.validate);
        }
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("kubectl starts");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.unwrap_or_default().as_bytes()).expect("stdin written");
        drop(input);
        let output = child.wait_with_output().expect("kubectl ends");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (success, output) = self.run(args, stdin);
        assert!(success, "kubectl {args:?} failed: {output}");
        output
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&args, None)).expect("kubectl prints JSON")
    }
}
