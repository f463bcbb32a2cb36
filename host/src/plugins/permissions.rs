//! Who may change the code the host runs. A plugin runs with the host's privileges, so a plugin file, or
//! the directory that holds it, that another user can write to is a way into the host: refuse it.

use std::path::Path;

use super::loader::LoadError;

/// Checks that the plugin directory is owned by this user or root and not writable by group or others.
pub fn check_plugin_dir(dir: &Path) -> Result<(), LoadError> {
    check(dir, "plugin directory")
}

/// Checks a plugin file and the directory that holds it.
pub fn check_plugin_file(path: &Path) -> Result<(), LoadError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        check(parent, "plugin directory")?;
    }
    check(path, "plugin file")
}

#[cfg(unix)]
fn check(path: &Path, what: &str) -> Result<(), LoadError> {
    use std::os::unix::fs::MetadataExt;

    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.mode();
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and all other users",
            (true, false) => "its group",
            _ => "all other users",
        };
        return Err(LoadError::Permissions(format!(
            "{}: refused: the {what} is writable by {who} (mode {:o}); other users must not be able to change code the host runs: chmod go-w it",
            path.display(),
            mode & 0o7777
        )));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(LoadError::Permissions(format!(
            "{}: refused: the {what} belongs to user id {}, not to the host's user ({me}) or root",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check(path: &Path, _what: &str) -> Result<(), LoadError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_world_and_group_writable_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libx.so");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_plugin_file(&file).is_ok());

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = check_plugin_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("writable by its group and all other users"),
            "{err}"
        );

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
        let err = check_plugin_file(&file).unwrap_err().to_string();
        assert!(err.contains("writable by its group"), "{err}");
    }

    #[test]
    fn refuses_a_writable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libx.so");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_plugin_file(&file).unwrap_err().to_string();
        assert!(err.contains("plugin directory is writable"), "{err}");
    }
}
