//! Records the version of the compiler that builds this crate, so that every plugin declares the rustc it
//! was built with (plugin-api is compiled by the same rustc as the plugin that depends on it).
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MC_PLUGIN_API_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
