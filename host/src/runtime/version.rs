//! Tells which WIT version a component was built against, before linking it.

use crate::wit::{HANDLER, PACKAGE, SUPPORTED_VERSIONS};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why a component is not a plugin this host can load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "not a DevPulse plugin: the component does not export `{HANDLER}` (it exports: {exports}); \
         build it against the `plugin` world of {PACKAGE}"
    )]
    WrongWorld { exports: String },
    #[error(
        "built against {PACKAGE}@{found}, which this host does not support; supported versions: {}",
        SUPPORTED_VERSIONS.join(", ")
    )]
    Unsupported { found: String },
}

/// The version of `devpulse:plugin/handler` the component exports, if supported.
pub fn detect(engine: &Engine, component: &Component) -> Result<String, VersionError> {
    let exports: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_owned()).collect();
    let prefix = format!("{HANDLER}@");
    let found = exports.iter().find_map(|name| name.strip_prefix(&prefix));
    match found {
        Some(version) if SUPPORTED_VERSIONS.contains(&version) => Ok(version.to_owned()),
        Some(version) => Err(VersionError::Unsupported { found: version.to_owned() }),
        None if exports.iter().any(|name| name == HANDLER) => {
            Err(VersionError::Unsupported { found: "(unversioned)".into() })
        }
        None => Err(VersionError::WrongWorld {
            exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
        }),
    }
}
