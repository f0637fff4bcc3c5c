//! The WIT contract as the host sees it, and the versions it loads.
//!
//! Bindings are generated for the newest version only. A component built against
//! an older, additive version of the same 0.x line links against them through
//! wasmtime's semver matching (an import of `storage@0.1.0` is served by
//! `storage@0.1.1`, an export of `handler@0.1.0` is found when looking for
//! `handler@0.1.1`). A future breaking version adds a module beside this one with
//! its own bindings and converts its types at the edge (see `docs/plugins.md`).

wasmtime::component::bindgen!({
    path: "../wit/latest",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use devpulse::plugin::types::{Error as PluginError, Principal, Role};
pub use exports::devpulse::plugin::handler::{Event, Manifest, Request, Response};

pub use devpulse_wit::{LATEST, PACKAGE, SUPPORTED as SUPPORTED_VERSIONS};

/// The interface a plugin must export; its version is the plugin's WIT version.
pub const HANDLER: &str = "devpulse:plugin/handler";
