//! sea-orm entities for the host's tables.

pub mod audit_entry;
pub mod event;
pub mod metric_point;
pub mod org;
pub mod plugin_document;
pub mod plugin_state;
pub mod token;
pub mod user;
pub mod user_identity;
