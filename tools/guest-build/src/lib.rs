//! Compiles guest crates (plugins and test fixtures) to `wasm32-wasip2` components
//! from a build script, so one `cargo build` or `cargo test` builds everything.
//!
//! The shape follows wasmtime's `crates/test-programs/artifacts/build.rs`: an inner
//! cargo with its own target dir (sharing the outer one deadlocks on its lock), the
//! outer build's flags removed (they break the component linker), and the inner
//! output sent to stderr (build-script stdout is read by cargo as directives).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

/// One compiled guest: its package name and the path of its `.wasm`.
pub struct Guest {
    pub package: String,
    pub wasm: PathBuf,
}

/// Builds `packages` (workspace members) as components and returns their paths.
/// Panics with an actionable message when the build fails: this runs in a build script.
pub fn build(packages: &[&str]) -> Vec<Guest> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = workspace_root(&manifest_dir);
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out_dir.join("guest-target");
    ensure_wasm_target();

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--quiet", "--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    // Inner cargo output must not reach stdout, which cargo parses as directives.
    cmd.stdout(std::process::Stdio::from(std::io::stderr()));
    let status = cmd.status().expect("could not run cargo for the guest build");
    if !status.success() {
        panic!("building the wasm plugins ({}) failed; see the errors above", packages.join(", "));
    }

    for path in ["wit", "sdk", "Cargo.lock"] {
        rerun_if_changed(&manifest_dir, &workspace, &workspace.join(path));
    }
    let artifacts = target_dir.join(TARGET).join(PROFILE);
    packages
        .iter()
        .map(|package| {
            let stem = package.replace('-', "_");
            let wasm = artifacts.join(format!("{stem}.wasm"));
            assert!(wasm.exists(), "{} was not produced", wasm.display());
            rerun_on_dependencies(&manifest_dir, &workspace, &artifacts.join(format!("{stem}.d")));
            Guest { package: package.to_string(), wasm }
        })
        .collect()
}

/// Writes `OUT_DIR/{file}` with one `&str` constant per guest, named after the
/// package in upper snake case, holding the path of its `.wasm`.
pub fn write_paths(guests: &[Guest], file: &str) {
    let mut code = String::new();
    for guest in guests {
        let name = guest.package.to_uppercase().replace('-', "_");
        writeln!(code, "pub const {name}: &str = {:?};", guest.wasm.display().to_string()).unwrap();
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    fs::write(out_dir.join(file), code).expect("write generated guest paths");
}

fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|toml| toml.contains("[workspace]")))
        .expect("no workspace Cargo.toml above the build script")
        .to_path_buf()
}

/// Installs the wasm target when it is missing (a fresh machine with only rustup),
/// because cargo does not add targets by itself.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let installed = sysroot.as_ref().is_some_and(|root| root.join("lib/rustlib").join(TARGET).exists());
    if installed {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Some(toolchain) = toolchain {
        cmd.args(["--toolchain", &toolchain]);
    }
    cmd.stdout(std::process::Stdio::from(std::io::stderr()));
    let ok = cmd.status().is_ok_and(|status| status.success());
    if !ok {
        panic!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed; \
             run `scripts/setup` or install it by hand"
        );
    }
}

/// Asks cargo to rerun the build script when `path` changes. Paths inside the
/// workspace are given relative to the package, so a fresh clone at another path
/// sharing the target dir (as CI does) is compared against its own files, not
/// against an earlier clone's.
fn rerun_if_changed(manifest_dir: &Path, workspace: &Path, path: &Path) {
    match (path.strip_prefix(workspace), manifest_dir.strip_prefix(workspace)) {
        (Ok(inside), Ok(package)) => {
            let up: PathBuf = package.components().map(|_| "..").collect();
            println!("cargo:rerun-if-changed={}", up.join(inside).display());
        }
        _ => println!("cargo:rerun-if-changed={}", path.display()),
    }
}

/// Reruns the build script when any source file of the guest changes, as listed in
/// the dep-info file the inner build wrote.
fn rerun_on_dependencies(manifest_dir: &Path, workspace: &Path, dep_info: &Path) {
    let Ok(text) = fs::read_to_string(dep_info) else {
        return;
    };
    let Some((_, deps)) = text.lines().next().and_then(|line| line.split_once(':')) else {
        return;
    };
    for dep in deps.split_whitespace() {
        rerun_if_changed(manifest_dir, workspace, Path::new(dep));
    }
}

/// Writes `OUT_DIR/{file}` defining `PLUGINS: &[(&str, &[u8])]`, each guest's
/// package name and its bytes, embedded with `include_bytes!`.
pub fn write_embedded(guests: &[Guest], file: &str) {
    let mut code = String::from(
        "/// Bundled plugins: (package name, component bytes).\npub static PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for guest in guests {
        writeln!(code, "    ({:?}, include_bytes!({:?})),", guest.package, guest.wasm.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    fs::write(out_dir.join(file), code).expect("write generated embedded guests");
}
