//! sea-orm entities for the host's tables.

pub mod event;
pub mod metric_point;
pub mod plugin_document;
pub mod plugin_state;
