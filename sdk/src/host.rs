//! Where the SDK's calls go: the WIT imports inside a component, the in-memory
//! [`crate::testing::TestHost`] in a native build. Both have the same shape, so
//! the typed helpers above them are written once.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::bindings::devpulse::plugin::{
    alerts, config, events, http, identity, kube, log, metrics, storage,
};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::imports::{alerts, config, events, http, identity, kube, log, metrics, storage};
