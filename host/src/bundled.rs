//! Plugins compiled into the binary by the build script, so one file runs DevPulse.

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
