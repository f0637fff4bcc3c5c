//! What people record: clock events, idle spans and heartbeats, as stored.
//! Of a heartbeat only its time, project, language, category and write flag
//! exist here; file names, URLs, line numbers and window titles never reach
//! this type, so they cannot be stored or logged.

use devpulse_sdk::Timestamp;
use serde::{Deserialize, Serialize};

/// The kind of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ClockIn,
    Idle,
    Heartbeat,
    ClockOut,
}

/// One input, keyed by the id the client gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub kind: Kind,
    /// Milliseconds since the Unix epoch.
    pub at: Timestamp,
    /// End of an idle span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    /// Why this record was added as a correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<String>,
    /// Why a correction removed it; a removed record counts for nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<String>,
}

/// What is kept of an editor heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Heartbeat {
    pub project: Option<String>,
    pub language: Option<String>,
    pub category: Option<String>,
    pub is_write: bool,
}

impl Record {
    /// Records in time order; at one instant clock-ins first and clock-outs last.
    pub fn order(&self) -> (Timestamp, Kind, &str) {
        (self.at, self.kind, &self.id)
    }

    /// Counts for the timeline.
    pub fn live(&self) -> bool {
        self.removed.is_none()
    }
}
