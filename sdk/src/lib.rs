//! Write DevPulse plugins in Rust.
//!
//! A plugin is a type implementing [`Plugin`] (every method but `manifest` has a
//! default) exported with [`export_plugin!`]. The host calls it through the WIT
//! contract in `wit/`; everything durable goes through [`storage`], [`metrics`]
//! and [`events`], because each call runs in a fresh instance.
//!
//! ```ignore
//! struct Hello;
//! impl devpulse_sdk::Plugin for Hello {
//!     fn manifest() -> Manifest { Manifest::named("hello", "0.1.0", "Says hello") }
//! }
//! devpulse_sdk::export_plugin!(Hello);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.1.2",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export",
    });
}

pub mod config;
pub mod events;
pub mod http;
pub mod identity;
pub mod log;
pub mod metrics;
mod request;
pub mod storage;

pub use bindings::devpulse::plugin::types::{
    Error, Event, Manifest, Method, Param, ParamLocation, Principal, Request, Response, ResponseSpec, Role, Route,
    Schedule, SignatureScheme, Timestamp, WebhookSource,
};
pub use request::{Routes, route};

/// The SDK's WIT version: the plugin's component says it speaks this one.
pub const WIT_VERSION: &str = "0.1.2";

/// A plugin's whole contract. Only `manifest` is required; the defaults answer
/// `404` to requests and ignore events and ticks.
pub trait Plugin {
    /// Name, routes, subscriptions, schedules and capabilities. Read once at load.
    fn manifest() -> Manifest;

    /// Handles a call to one of the routes in the manifest.
    fn on_request(request: Request) -> Result<Response, Error> {
        Err(Error::NotFound(format!("no handler for {}", request.path)))
    }

    /// Handles an event whose kind matches a subscription.
    fn on_event(_event: Event) -> Result<(), Error> {
        Ok(())
    }

    /// Runs a schedule from the manifest, once per interval per org.
    fn on_tick(_schedule: &str, _now: Timestamp, _principal: Principal) -> Result<(), Error> {
        Ok(())
    }
}

impl Manifest {
    /// A manifest with nothing but its identity; fill the rest with struct update syntax.
    pub fn named(name: &str, version: &str, description: &str) -> Self {
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
}

impl Response {
    /// A JSON response with the given status.
    pub fn json(status: u16, body: &impl serde::Serialize) -> Result<Self, Error> {
        let body = serde_json::to_string(body).map_err(|err| Error::Internal(err.to_string()))?;
        Ok(Response { status, headers: vec![("content-type".into(), "application/json".into())], body: Some(body) })
    }
}

/// Converts a JSON (de)serialisation failure into the contract's error type.
pub(crate) fn invalid(err: serde_json::Error) -> Error {
    Error::InvalidInput(err.to_string())
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::exports::devpulse::plugin::handler::Guest;
}

/// Exports a [`Plugin`] as the component's `handler`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct Export;
            impl $crate::__private::Guest for Export {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::Plugin>::manifest()
                }
                fn on_event(event: $crate::Event) -> Result<(), $crate::Error> {
                    <$plugin as $crate::Plugin>::on_event(event)
                }
                fn on_request(request: $crate::Request) -> Result<$crate::Response, $crate::Error> {
                    <$plugin as $crate::Plugin>::on_request(request)
                }
                fn on_tick(
                    schedule: String,
                    now: $crate::Timestamp,
                    principal: $crate::Principal,
                ) -> Result<(), $crate::Error> {
                    <$plugin as $crate::Plugin>::on_tick(&schedule, now, principal)
                }
            }
            // Only components export symbols; natively the plugin is a plain
            // library (for unit tests), and WIT export names cannot be linked.
            #[cfg(target_arch = "wasm32")]
    $crate::__private::bindings::__export!(Export with_types_in $crate::__private::bindings);
        };
    };
}
