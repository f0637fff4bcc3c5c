//! The event log's moving parts: the group-commit writer ingest appends
//! through, and the wake-up signal delivery workers wait on. The SQL lives in
//! [`crate::store::event_log`].

pub mod wake;
pub mod writer;
