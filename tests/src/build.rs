//! Building and locating the artifacts the tests (and the benchmarks) run: the server binary and the
//! plugin libraries, built by a nested `cargo` that does not make the outer one rebuild.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Every package [`ensure_built`] builds: the host, the shipped plugins and the test plugins.
pub const PACKAGES: &[&str] = &[
    "message-center",
    "rt-events-processing",
    "batch-events-processing",
    "update-events-status",
    "archiving",
    "webhook-delivery",
    "fault-probe",
    "wrong-abi",
    "reload-probe-v1",
    "reload-probe-v2",
];

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// The target directory: `CARGO_TARGET_DIR` (relative to the workspace root) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// `<target>/debug`, where the tests' artifacts are built.
pub fn artifact_dir() -> PathBuf {
    target_dir().join("debug")
}

/// `<target>/release`, where [`build_release`] builds.
pub fn release_dir() -> PathBuf {
    target_dir().join("release")
}

/// Builds the server binary and every plugin the tests use, once per test process. Panics with cargo's
/// output if the build fails.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut command = nested_cargo();
        command.arg("build");
        for package in PACKAGES {
            command.arg("-p").arg(package);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?} build: {e}", command.get_program()));
        if !output.status.success() {
            panic!(
                "`cargo build` of the test artifacts failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    });
}

/// `cargo` (the one running these tests, or a bench) for a build of the workspace, run from its root.
/// Without the variables cargo sets for the process it runs (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...):
/// build scripts that watch one of them (ring's watches `CARGO_MANIFEST_DIR`) would see it change between
/// `cargo test` or `cargo bench` and this build, and each of the two would rebuild ring, rustls, lettre
/// and message-center on every run. The benches build the release server with it too.
pub fn nested_cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_its_child) {
            command.env_remove(name);
        }
    }
    command.current_dir(workspace_root());
    command
}

/// Whether cargo sets `name` for a test or bench it runs (not for the builds it makes).
fn set_by_cargo_for_its_child(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}

/// Builds `packages` in release mode (for the benchmarks; `CARGO_TARGET_DIR` honoured) and returns
/// [`release_dir`]. Panics if the build fails (cargo's output goes to the terminal).
pub fn build_release(packages: &[&str]) -> PathBuf {
    let mut command = nested_cargo();
    command.args(["build", "--release"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let status = command.status().expect("cargo runs");
    assert!(
        status.success(),
        "building {packages:?} in release mode failed"
    );
    release_dir()
}

/// The built `message-center` binary (debug).
pub fn server_binary() -> PathBuf {
    ensure_built();
    artifact_dir().join("message-center")
}

/// The built library of a plugin crate (`"fault-probe"` → `<target>/debug/libfault_probe.so`).
pub fn plugin_library(crate_name: &str) -> PathBuf {
    ensure_built();
    artifact_dir().join(library_file_name(crate_name))
}

/// The `message-center` binary in a build directory (e.g. [`build_release`]'s); panics if absent.
pub fn server_binary_in(dir: &Path) -> PathBuf {
    let binary = dir.join("message-center");
    assert!(binary.is_file(), "no server binary at {}", binary.display());
    binary
}

/// The library of plugin crate `crate_name` in a build directory; panics if absent.
pub fn plugin_library_in(dir: &Path, crate_name: &str) -> PathBuf {
    let path = dir.join(library_file_name(crate_name));
    assert!(path.is_file(), "no plugin at {}", path.display());
    path
}

/// `lib<crate_name_with_underscores>.so`.
pub fn library_file_name(crate_name: &str) -> String {
    format!("lib{}.so", crate_name.replace('-', "_"))
}

/// Runs `message-center check-plugin FILE` and returns its output.
pub fn check_plugin(file: &Path) -> Output {
    let mut command = Command::new(server_binary());
    command.arg("check-plugin").arg(file);
    scrub_env(&mut command);
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run message-center check-plugin: {e}"))
}

/// Removes `MC_*` variables inherited from the caller, which would override the test's configuration.
pub(crate) fn scrub_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MC_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_BACKTRACE", "1");
}
