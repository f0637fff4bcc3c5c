//! The plugin author's commands: `plugin new` scaffolds a project in Rust,
//! Python or JavaScript, `plugin build` turns it into a component, and
//! `plugin inspect` shows what the host will see in a `.wasm` file.

pub mod build;
pub mod inspect;
pub mod scaffold;
mod templates;

use std::path::PathBuf;

/// The languages `plugin new` scaffolds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A crate on `devpulse-sdk`, built with cargo for `wasm32-wasip2`.
    Rust,
    /// A module built with componentize-py.
    Python,
    /// An ES module built with jco (ComponentizeJS).
    Js,
}

/// Why an authoring command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    #[error(transparent)]
    Name(#[from] crate::runtime::manifest::ManifestError),
    #[error("{0} already exists and is not empty; choose another --dir")]
    NotEmpty(PathBuf),
    #[error(
        "no devpulse-sdk here to depend on; pass --sdk with the path of the SDK folder (sdk/ in the DevPulse repository)"
    )]
    NoSdk,
    #[error("{0} is not a plugin project: expected Cargo.toml, pyproject.toml or package.json")]
    UnknownProject(PathBuf),
    #[error("{file}: {reason}")]
    BadProject { file: PathBuf, reason: String },
    #[error("could not run `{command}`: {source}; {hint}")]
    Tool { command: String, hint: &'static str, source: std::io::Error },
    #[error("`{command}` failed ({status}); see its output above")]
    BuildFailed { command: String, status: std::process::ExitStatus },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Attaches the path to an I/O error.
fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AuthoringError + '_ {
    move |source| AuthoringError::Io { path: path.to_owned(), source }
}
