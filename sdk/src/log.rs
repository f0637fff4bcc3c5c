//! Log lines in the host's log, tagged with the plugin's name.

use crate::host::log as raw;

pub use raw::Level;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    raw::log(level, message)
}

pub fn debug(message: &str) {
    log(Level::Debug, message)
}

pub fn info(message: &str) {
    log(Level::Info, message)
}

pub fn warn(message: &str) {
    log(Level::Warn, message)
}

pub fn error(message: &str) {
    log(Level::Error, message)
}
