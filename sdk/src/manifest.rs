//! Building a manifest, and the `describe` export that adds the routes to it.

use crate::{Manifest, Plugin, Schedule, SignatureScheme, WebhookSource};

impl Manifest {
    /// A manifest with nothing but its identity. `name` is also the URL prefix
    /// of the routes: lowercase letters, digits and `-`.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            routes: Vec::new(),
            subscriptions: Vec::new(),
            schedules: Vec::new(),
            webhook_sources: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    /// Receive events whose kind matches `pattern`: `github.pull_request`, `github.*`, `*`.
    pub fn subscribe(mut self, pattern: &str) -> Self {
        self.subscriptions.push(pattern.into());
        self
    }

    /// Run `on_tick(name, ...)` once every `interval_seconds` per org.
    pub fn schedule(mut self, name: &str, interval_seconds: u32) -> Self {
        self.schedules.push(Schedule { name: name.into(), interval_seconds });
        self
    }

    /// Accept signed webhooks at `/api/v1/hooks/{name}/{org}`; each delivery
    /// becomes an event of kind `{name}.{kind header}`.
    pub fn webhook_source(mut self, source: WebhookSource) -> Self {
        self.webhook_sources.push(source);
        self
    }

    /// Ask for a host capability (`http`); the operator decides whether to grant it.
    pub fn capability(mut self, name: &str) -> Self {
        self.capabilities.push(name.into());
        self
    }
}

impl WebhookSource {
    /// A sender signing like GitHub (`X-Hub-Signature-256: sha256=<hex>`) with
    /// GitHub's header names.
    pub fn github(name: &str) -> Self {
        WebhookSource {
            name: name.into(),
            scheme: SignatureScheme::GithubHmacSha256,
            kind_header: "X-GitHub-Event".into(),
            delivery_header: "X-GitHub-Delivery".into(),
            signature_header: "X-Hub-Signature-256".into(),
        }
    }
}

/// The manifest as the host reads it: the plugin's own plus its routes' specs.
pub fn describe<P: Plugin>() -> Manifest {
    let mut manifest = P::manifest();
    manifest.routes.extend(P::routes().iter().map(crate::routes::Route::spec));
    manifest
}
