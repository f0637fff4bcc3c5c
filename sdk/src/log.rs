//! Log lines in the host's log, tagged with the plugin's name.

use crate::bindings::devpulse::plugin::log as raw;

pub use raw::Level;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    raw::log(level, message)
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}
