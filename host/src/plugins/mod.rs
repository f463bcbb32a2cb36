//! Loading, checking, running and hot-reloading the technical workflow plugins.
//!
//! - [`loader`]: `dlopen` of a private copy and the declaration check (the host's only `unsafe` besides
//!   [`host_vtable`] and [`permissions`]).
//! - [`registry`]: plugins by name, their generations and the workflow instances each generation serves.
//! - [`host_vtable`]: the functions a plugin run calls back into.
//! - [`permissions`]: refusing code that other users can change.
//! - [`scan`]: which files of the plugin directory are loaded (`plugins.files`).
//! - [`elf`]: refusing a truncated library before `dlopen` maps it (which would SIGBUS the host).

#[cfg(target_os = "linux")]
pub mod elf;
pub mod host_vtable;
pub mod loader;
pub mod permissions;
pub mod registry;
pub mod scan;

use std::path::{Path, PathBuf};

pub use loader::{
    LoadError, LoadOptions, PluginInfo, PluginLibrary, UNLOAD_GRACE, WorkflowInstance,
};
pub use registry::{PluginRegistry, PluginView, ReloadOutcome, ReloadResult, WorkflowSpec};

/// A private directory for the copies of libraries that are `dlopen`ed (mode 0700, so nobody else can
/// swap a copy between the copy and the `dlopen`).
pub fn prepare_work_dir(configured: Option<&Path>) -> std::io::Result<PathBuf> {
    let dir = match configured {
        Some(dir) => dir.to_owned(),
        None => std::env::temp_dir().join(format!("message-center-plugins-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// `message-center check-plugin FILE`: loads the file as the server would and returns its declaration, or
/// the exact reason it would be refused.
pub fn check_plugin(path: &Path, require_same_rustc: bool) -> Result<PluginInfo, LoadError> {
    let work_dir = prepare_work_dir(None).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let options = LoadOptions {
        work_dir: work_dir.clone(),
        require_same_rustc,
    };
    let loaded = PluginLibrary::load(path, &options).map(|library| library.info.clone());
    let _ = std::fs::remove_dir(&work_dir);
    loaded
}
