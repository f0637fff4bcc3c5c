//! sea-orm entities for the host's tables.

pub mod alert;
pub mod alert_channel;
pub mod alert_label;
pub mod alert_transition;
pub mod audit_entry;
pub mod dead_letter;
pub mod delivery_cursor;
pub mod event;
pub mod hook_source;
pub mod lease;
pub mod metric_point;
pub mod metric_rollup;
pub mod metric_rollup_bin;
pub mod metric_series;
pub mod notification;
pub mod org;
pub mod plugin_document;
pub mod plugin_generation;
pub mod plugin_state;
pub mod replica;
pub mod schedule_run;
pub mod silence;
pub mod token;
pub mod user;
pub mod user_identity;
pub mod watched_object;
