//! `devpulse plugin build`: runs each language's own build tool and puts the
//! component where the server can load it.

use super::{AuthoringError, io};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds the project in `dir` and returns the component's path; with `out`
/// (a plugins folder or a file path) also copies it there, atomically, so a
/// watching server never loads a half-written file.
pub fn build(dir: &Path, out: Option<&Path>) -> Result<PathBuf, AuthoringError> {
    let wasm = if dir.join("Cargo.toml").is_file() {
        build_rust(dir)?
    } else if dir.join("pyproject.toml").is_file() {
        build_python(dir)?
    } else if dir.join("package.json").is_file() {
        build_js(dir)?
    } else {
        return Err(AuthoringError::UnknownProject(dir.to_owned()));
    };
    match out {
        Some(out) => install(&wasm, out),
        None => Ok(wasm),
    }
}

/// `cargo build --release --target wasm32-wasip2`, reading the artifact's path
/// from cargo's JSON messages (it honours `CARGO_TARGET_DIR`).
fn build_rust(dir: &Path) -> Result<PathBuf, AuthoringError> {
    let mut command = Command::new("cargo");
    command
        .current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"])
        .stdout(Stdio::piped());
    let output = run(command, "cargo build --release --target wasm32-wasip2", "install Rust with rustup")?;
    String::from_utf8_lossy(&output)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .rfind(|file| file.extension().is_some_and(|ext| ext == "wasm"))
        .ok_or_else(|| AuthoringError::BadProject {
            file: dir.join("Cargo.toml"),
            reason: "cargo produced no .wasm; the crate needs `crate-type = [\"cdylib\"]`".into(),
        })
}

/// The command in `[tool.devpulse] build`, producing `NAME.wasm`.
fn build_python(dir: &Path) -> Result<PathBuf, AuthoringError> {
    let file = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let project: toml::Value = toml::from_str(&text)
        .map_err(|err| AuthoringError::BadProject { file: file.clone(), reason: err.to_string() })?;
    let field = |path: &[&str]| {
        path.iter().try_fold(&project, |value, key| value.get(key)).and_then(toml::Value::as_str).map(String::from)
    };
    let missing = |what: &str| AuthoringError::BadProject { file: file.clone(), reason: format!("no {what}") };
    let name = field(&["project", "name"]).ok_or_else(|| missing("[project] name"))?;
    let script = field(&["tool", "devpulse", "build"]).ok_or_else(|| missing("[tool.devpulse] build command"))?;
    let mut command = tool("sh");
    command.current_dir(dir).args(["-c", &script]);
    run(command, &script, "install componentize-py: pip install componentize-py==0.25.1")?;
    produced(dir, &name)
}

/// `npm run build`, producing `NAME.wasm`.
fn build_js(dir: &Path) -> Result<PathBuf, AuthoringError> {
    let file = dir.join("package.json");
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let package: serde_json::Value = serde_json::from_str(&text)
        .map_err(|err| AuthoringError::BadProject { file: file.clone(), reason: err.to_string() })?;
    let name = package["name"]
        .as_str()
        .ok_or_else(|| AuthoringError::BadProject { file: file.clone(), reason: "no \"name\"".into() })?;
    let mut command = tool("npm");
    command.current_dir(dir).args(["run", "--silent", "build"]);
    run(command, "npm run build", "install Node.js 18+ and run `npm install` in the project")?;
    produced(dir, name)
}

/// A build tool whose output is all progress: it goes where ours does, since
/// our stdout carries only the result.
fn tool(program: &str) -> Command {
    let mut command = Command::new(program);
    command.stdout(Stdio::from(std::io::stderr()));
    command
}

/// Runs a build command with its stderr on ours; returns what it wrote to a piped stdout.
fn run(mut command: Command, shown: &str, hint: &'static str) -> Result<Vec<u8>, AuthoringError> {
    command.stderr(Stdio::inherit());
    tracing::info!(command = shown, "building");
    let output = command.output().map_err(|source| AuthoringError::Tool { command: shown.into(), hint, source })?;
    if !output.status.success() {
        return Err(AuthoringError::BuildFailed { command: shown.into(), status: output.status });
    }
    Ok(output.stdout)
}

fn produced(dir: &Path, name: &str) -> Result<PathBuf, AuthoringError> {
    let wasm = dir.join(format!("{name}.wasm"));
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(AuthoringError::BadProject { file: wasm, reason: "the build command did not produce it".into() })
    }
}

/// Copies `wasm` into `out` (a `.wasm` path, or a folder, created if missing)
/// under a temporary name, then renames it into place.
fn install(wasm: &Path, out: &Path) -> Result<PathBuf, AuthoringError> {
    let target = if out.extension().is_some_and(|ext| ext == "wasm") {
        out.to_owned()
    } else {
        std::fs::create_dir_all(out).map_err(io(out))?;
        out.join(wasm.file_name().unwrap_or_default())
    };
    let staging = target.with_extension("wasm.partial");
    std::fs::copy(wasm, &staging).map_err(io(&staging))?;
    std::fs::rename(&staging, &target).map_err(io(&target))?;
    Ok(target)
}
