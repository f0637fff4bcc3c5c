//! Alerts, a host primitive: plugins (through the `alerts` import) and
//! scripts (through the API) raise and resolve them by key; people
//! acknowledge, resolve and silence them; the host notifies channels.
//!
//! Everything is durable and transactional: a transition, its history row and
//! the notifications it causes commit together, with the plugin call or the
//! request that caused them (`lifecycle`). Notifications leave through an
//! outbox (`notify`) at least once, each with an id stable across attempts.

pub mod channels;
pub mod lifecycle;
pub mod matchers;
pub mod model;
pub mod notify;
pub mod query;
pub mod silences;
pub mod targets;

pub use model::{AlertError, AlertWrite, Links, NewAlert, Severity, State};
