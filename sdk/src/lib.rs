//! Write DevPulse plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`] (only `manifest` is required)
//! exported with [`export_plugin!`]. Routes are plain functions taking a typed
//! [`Call`] and returning a typed value; their JSON Schemas are derived from
//! those types, so the OpenAPI document shows them without hand-written schemas.
//! Each call runs in a fresh instance, so everything durable goes through
//! [`storage`], [`metrics`], [`events`] and [`alerts`]; the writes of a call commit together
//! when it succeeds.
//!
//! ```ignore
//! use devpulse_sdk::prelude::*;
//!
//! pub struct Hello;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Who { name: String }
//!
//! impl Plugin for Hello {
//!     fn manifest() -> Manifest {
//!         Manifest::new("hello", "0.1.0", "Says hello")
//!     }
//!     fn routes() -> Vec<Route> {
//!         vec![get("/greetings/{name}", greet).summary("Greet someone")]
//!     }
//! }
//!
//! fn greet(call: Call<Who>) -> Result<String> {
//!     Ok(format!("Hello, {}!", call.params.name))
//! }
//!
//! devpulse_sdk::export_plugin!(Hello);
//! ```
//!
//! Natively (`cargo test`) the same functions run against [`testing::TestHost`],
//! an in-memory host.

use __private::bindings;

pub mod alerts;
pub mod config;
pub mod definitions;
mod error;
pub mod events;
mod host;
pub mod http;
pub mod identity;
pub mod kube;
pub mod log;
mod manifest;
pub mod metrics;
pub mod params;
mod routes;
mod schema;
pub mod storage;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use bindings::devpulse::plugin::types::{
    Error, Event, Manifest, Method, Principal, Request, Response, Role, Schedule, SignatureScheme, Timestamp,
    WebhookSource,
};
pub use params::{Cursor, Date, Time};
pub use routes::{Call, Route, delete, get, patch, post, put};
pub use schemars::JsonSchema;

/// The SDK's WIT version, the newest: the plugin's component says it speaks this one.
pub use devpulse_wit::LATEST as WIT_VERSION;

/// The result of every plugin function; the host turns an [`Error`] into a
/// problem document with the matching status.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a plugin file usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Call, Cursor, Date, Error, Event, JsonSchema, Manifest, Method, Plugin, Principal, Result, Role, Route, Time,
        Timestamp, alerts, config, delete, events, get, http, identity, log, metrics, now, patch, post, put, storage,
    };
    pub use serde::{Deserialize, Serialize};
}

/// A plugin's whole contract. Only `manifest` is required; without routes,
/// events and ticks the defaults do nothing.
pub trait Plugin {
    /// Name, version, subscriptions, schedules, webhook sources and capabilities.
    /// Read once at load; the routes come from [`Plugin::routes`].
    fn manifest() -> Manifest;

    /// The REST operations mounted at `/api/v1/{name}/...`.
    fn routes() -> Vec<Route> {
        Vec::new()
    }

    /// Handles an event whose kind matches a subscription. An error is retried
    /// and, after the configured attempts, kept as a dead letter.
    fn on_event(_event: Event) -> Result<()> {
        Ok(())
    }

    /// Runs a schedule from the manifest, once per interval per org.
    fn on_tick(_schedule: &str, _now: Timestamp, _principal: Principal) -> Result<()> {
        Ok(())
    }

    /// Kubernetes objects to follow (with the `kube` capability); each change
    /// arrives at [`Plugin::on_event`] (see [`kube::Watch`]).
    fn watches() -> Vec<kube::Watch> {
        Vec::new()
    }
}

/// The current time in milliseconds since the Unix epoch (the unit of [`Timestamp`]).
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as Timestamp)
        .unwrap_or(0)
}

/// The plumbing [`export_plugin!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    /// The generated bindings; plugins use the re-exports at the crate root.
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit/latest",
            world: "watching-plugin",
            pub_export_macro: true,
            export_macro_name: "__export",
        });
    }
    pub use crate::bindings::exports::devpulse::plugin::handler::Guest;
    pub use crate::bindings::exports::devpulse::plugin::watches::Guest as Watches;
    pub use crate::manifest::describe;
    pub use crate::routes::dispatch;
}

/// Exports a [`Plugin`] as the component's `handler` and `watches`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct Export;
            impl $crate::__private::Guest for Export {
                fn describe() -> $crate::Manifest {
                    $crate::__private::describe::<$plugin>()
                }
                fn on_event(event: $crate::Event) -> $crate::Result<()> {
                    <$plugin as $crate::Plugin>::on_event(event)
                }
                fn on_request(request: $crate::Request) -> $crate::Result<$crate::Response> {
                    $crate::__private::dispatch(<$plugin as $crate::Plugin>::routes(), request)
                }
                fn on_tick(
                    schedule: String,
                    now: $crate::Timestamp,
                    principal: $crate::Principal,
                ) -> $crate::Result<()> {
                    <$plugin as $crate::Plugin>::on_tick(&schedule, now, principal)
                }
            }
            impl $crate::__private::Watches for Export {
                fn describe_watches() -> Vec<$crate::kube::Watch> {
                    <$plugin as $crate::Plugin>::watches()
                }
            }
            // Only components export symbols; natively the plugin is a plain
            // library (for unit tests), and WIT export names cannot be linked.
            #[cfg(target_arch = "wasm32")]
    $crate::__private::bindings::__export!(Export with_types_in $crate::__private::bindings);
        };
    };
}
