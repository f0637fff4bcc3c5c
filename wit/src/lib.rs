//! The plugin contract, `devpulse:plugin`, as data the host, the SDK and the
//! templates share: one constant names the newest version, and `latest/` (a
//! link to its folder) is what the bindings and templates are generated from.
//!
//! Released folders are frozen: `RELEASED` holds each file's SHA-256, and the
//! tests in `tests/released.rs` fail when a released file changes, when a
//! version is not additive over the one before, or when the constants and the
//! folders disagree. Changes that need a major version wait in `PENDING.md`.

/// The WIT package every plugin speaks.
pub const PACKAGE: &str = "devpulse:plugin";

/// The newest released version: what the SDK and `plugin new` build against.
pub const LATEST: &str = "0.1.7";

/// Every version the host loads, oldest first; the last is [`LATEST`].
pub const SUPPORTED: &[&str] = &["0.1.0", "0.1.1", "0.1.2", "0.1.3", "0.1.4", "0.1.5", "0.1.6", "0.1.7"];

/// The newest version's files, as `plugin new` writes them into a project.
pub const LATEST_FILES: &[(&str, &str)] = &[
    ("types.wit", include_str!("../latest/types.wit")),
    ("imports.wit", include_str!("../latest/imports.wit")),
    ("world.wit", include_str!("../latest/world.wit")),
];
