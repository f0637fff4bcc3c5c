//! A fake Kubernetes API server, since no cluster can run where DevPulse is
//! tested: it speaks the real REST protocol for the kinds workspaces use
//! (discovery, get, list with label selectors and pages, server-side apply
//! with field managers and conflicts, delete, watch with resource versions,
//! bookmarks and `410 Gone`) and plays the controllers' part (a Deployment's
//! pods start after a delay, or fail on an image it is told cannot be
//! pulled). `kubectl` and kube-rs talk to it as to a cluster; the
//! `fake-kube` binary serves it on its own. What it leaves out is listed in
//! `docs/workspaces.md`.

mod apply;
mod controllers;
mod http;
pub mod kinds;
mod openapi;
pub mod selector;
mod store;

use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::Store;
use tokio::task::JoinHandle;

/// How the fake cluster behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a new pod takes to become ready.
    pub ready_delay: Duration,
    /// Images no pod can pull (exact references, such as `example.com/ide:broken`).
    pub unpullable: BTreeSet<String>,
    /// How many changes a watch can resume from; older resource versions get `410 Gone`.
    pub history: usize,
    /// How often a watch that allows bookmarks receives one.
    pub bookmark_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ready_delay: Duration::from_millis(200),
            unpullable: BTreeSet::new(),
            history: 10_000,
            bookmark_every: Duration::from_secs(5),
        }
    }
}

/// What the HTTP side and the controllers share.
pub(crate) struct Shared {
    store: Mutex<Store>,
    config: Mutex<Config>,
    server_address: String,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The first image of a pod spec that cannot be pulled.
    pub(crate) fn unpullable_image(&self, spec: &Value) -> Option<String> {
        let config = self.config();
        ["initContainers", "containers"]
            .iter()
            .flat_map(|list| spec[list].as_array().into_iter().flatten())
            .filter_map(|c| c["image"].as_str())
            .find(|image| config.unpullable.contains(*image))
            .map(str::to_owned)
    }

    /// Starts the pod once the readiness delay has passed.
    pub(crate) fn schedule_start(self: &Arc<Self>, pod: &Value) {
        let shared = self.clone();
        let delay = self.config().ready_delay;
        let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let uid = pod["metadata"]["uid"].clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            controllers::start_pod(&shared, &namespace, &name, &uid);
        });
    }
}

/// A running fake API server; stops when dropped.
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`: the cluster's server URL.
    pub url: String,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeKube {
    /// Serves on `listen` (`127.0.0.1:0` for a free port).
    pub async fn start(listen: &str, config: Config) -> std::io::Result<Self> {
        let acceptor = TcpListener::bind(listen.to_owned()).into_acceptor().await?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| std::io::Error::other("the listener has no TCP address"))?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config.history)),
            config: Mutex::new(config),
            server_address: address.to_string(),
        });
        // Subscribed before the first request can store anything, so no change goes unreacted.
        let changes = shared.store().subscribe();
        let controllers = tokio::spawn(controllers::run(shared.clone(), changes));
        let app = http::app(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = Server::new_with_acceptor(acceptor).run(app).await {
                eprintln!("fake-kube: the server stopped: {error}");
            }
        });
        Ok(FakeKube { url: format!("http://{address}"), shared, tasks: vec![controllers, server] })
    }

    /// A kubeconfig for this server, with `namespace` as the context's default.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             users:\n- name: fake\n  user:\n    token: fake-token\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\n\
             current-context: fake\n",
            url = self.url
        )
    }

    /// The stored objects of a kind (`("apps/v1", "Deployment")`), in one namespace or all.
    pub fn objects(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(kind) = kinds::by_kind(api_version, kind) else { return Vec::new() };
        self.shared.store().list(kind, namespace, &selector::Selector::default()).into_iter().cloned().collect()
    }

    /// From now on, pods using `image` fail to pull it.
    pub fn fail_pulls_of(&self, image: &str) {
        self.shared.config().unpullable.insert(image.to_owned());
    }

    /// Forgets the change history, as etcd's compaction does: watches
    /// resuming from before now are told `410 Gone`.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// The current resource version.
    pub fn revision(&self) -> u64 {
        self.shared.store().revision()
    }

    /// Serves until the process ends.
    pub async fn wait(mut self) {
        if let Some(server) = self.tasks.pop() {
            let _ = server.await;
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
