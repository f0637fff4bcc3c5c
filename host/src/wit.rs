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
    world: "watching-plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use devpulse::plugin::types::{Error as PluginError, Principal, Role};
pub use exports::devpulse::plugin::handler::{Event, Manifest, Request, Response};
pub use exports::devpulse::plugin::watches::Watch;

use exports::devpulse::plugin::{handler, watches};
use wasmtime::component::InstancePre;

pub use devpulse_wit::{LATEST, PACKAGE, SUPPORTED as SUPPORTED_VERSIONS};

/// The interface a plugin must export; its version is the plugin's WIT version.
pub const HANDLER: &str = "devpulse:plugin/handler";

/// The interface a plugin exports when it follows Kubernetes objects (0.1.7 on).
pub const WATCHES: &str = "devpulse:plugin/watches";

/// A linked plugin, ready to instantiate: its `handler`, and its `watches` when
/// it exports them (the `watching-plugin` world; every other component lacks
/// them, so the generated world type, which needs both, is not used).
pub struct PluginPre<T: 'static> {
    instance_pre: InstancePre<T>,
    handler: handler::GuestIndices,
    watches: Option<watches::GuestIndices>,
}

/// One instance's exports.
pub struct Plugin {
    handler: handler::Guest,
    watches: Option<watches::Guest>,
}

impl<T: Send + 'static> PluginPre<T> {
    pub fn new(instance_pre: InstancePre<T>) -> wasmtime::Result<Self> {
        let handler = handler::GuestIndices::new(&instance_pre)?;
        let watches = watches::GuestIndices::new(&instance_pre).ok();
        Ok(PluginPre { instance_pre, handler, watches })
    }

    pub async fn instantiate_async(
        &self,
        mut store: impl wasmtime::AsContextMut<Data = T>,
    ) -> wasmtime::Result<Plugin> {
        let instance = self.instance_pre.instantiate_async(&mut store).await?;
        let handler = self.handler.load(&mut store, &instance)?;
        let watches = self.watches.as_ref().map(|watches| watches.load(&mut store, &instance)).transpose()?;
        Ok(Plugin { handler, watches })
    }
}

impl Plugin {
    pub fn devpulse_plugin_handler(&self) -> &handler::Guest {
        &self.handler
    }

    /// `None` for a component that does not export `watches`.
    pub fn devpulse_plugin_watches(&self) -> Option<&watches::Guest> {
        self.watches.as_ref()
    }
}
