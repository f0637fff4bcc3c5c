//! The files behind `plugin new`. The Rust template is the bundled `hello`
//! plugin itself, so the showcase and the template cannot drift apart; Python
//! and JavaScript have their own, with the same routes and behaviour.

/// The WIT contract handed to Python and JavaScript projects: the newest version.
pub use devpulse_wit::{LATEST as WIT_VERSION, LATEST_FILES as WIT_FILES};

pub const RUST_LIB: &str = include_str!("../../../plugins/hello/src/lib.rs");
pub const RUST_TESTS: &str = include_str!("../../../plugins/hello/tests/native.rs");
pub const RUST_CARGO: &str = include_str!("../../../sdk/templates/rust/Cargo.toml");
pub const RUST_README: &str = include_str!("../../../sdk/templates/rust/README.md");
pub const RUST_GITIGNORE: &str = include_str!("../../../sdk/templates/rust/gitignore");

pub const PYTHON_APP: &str = include_str!("../../../sdk/templates/python/app.py");
pub const PYTHON_PROJECT: &str = include_str!("../../../sdk/templates/python/pyproject.toml");
pub const PYTHON_README: &str = include_str!("../../../sdk/templates/python/README.md");
pub const PYTHON_GITIGNORE: &str = include_str!("../../../sdk/templates/python/gitignore");

pub const JS_APP: &str = include_str!("../../../sdk/templates/js/app.js");
pub const JS_PACKAGE: &str = include_str!("../../../sdk/templates/js/package.json");
pub const JS_README: &str = include_str!("../../../sdk/templates/js/README.md");
pub const JS_GITIGNORE: &str = include_str!("../../../sdk/templates/js/gitignore");

/// Where the SDK was when this binary was built; a scaffolded crate depends on
/// it by path when it is still there.
pub const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");
