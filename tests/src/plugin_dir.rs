//! A plugin directory of a test's own, into which it copies (or breaks, or replaces) plugin libraries.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::build::{library_file_name, plugin_library};

/// The crates of the three execution workflows, as [`PluginDir::add_processing_plugins`] copies them.
pub const PROCESSING_PLUGINS: &[&str] = &[
    "rt-events-processing",
    "batch-events-processing",
    "update-events-status",
];

/// A fresh plugin directory (mode 0700) into which a test copies the libraries it wants.
pub struct PluginDir {
    dir: TempDir,
}

impl PluginDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mc-plugins-")
            .tempdir()
            .expect("create plugin directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .expect("chmod plugin directory");
        PluginDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Path of a file in the directory.
    pub fn file(&self, file_name: &str) -> PathBuf {
        self.path().join(file_name)
    }

    /// Copies the plugin crate's library in under its own name (`lib<crate>.so`); returns its path.
    pub fn add(&self, crate_name: &str) -> PathBuf {
        self.add_as(crate_name, &library_file_name(crate_name))
    }

    /// Copies the plugin crate's library in under `file_name`; returns its path.
    pub fn add_as(&self, crate_name: &str, file_name: &str) -> PathBuf {
        let bytes = fs::read(plugin_library(crate_name))
            .unwrap_or_else(|e| panic!("read library of {crate_name}: {e}"));
        self.write_file(file_name, &bytes)
    }

    /// Writes a file (mode 0644); returns its path.
    pub fn write_file(&self, file_name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.file(file_name);
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// Replaces `file_name` as a deploy would: writes the new content to a temporary name in the same
    /// directory (not ending in `.so`), then renames it over the old file.
    pub fn replace_with_bytes(&self, file_name: &str, bytes: &[u8]) -> PathBuf {
        let temp = self.file(&format!(".{file_name}.deploy-tmp"));
        fs::write(&temp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", temp.display()));
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", temp.display()));
        let path = self.file(file_name);
        fs::rename(&temp, &path).unwrap_or_else(|e| panic!("rename over {}: {e}", path.display()));
        path
    }

    /// [`PluginDir::replace_with_bytes`] with the library of a plugin crate.
    pub fn replace_with(&self, file_name: &str, crate_name: &str) -> PathBuf {
        let bytes = fs::read(plugin_library(crate_name))
            .unwrap_or_else(|e| panic!("read library of {crate_name}: {e}"));
        self.replace_with_bytes(file_name, &bytes)
    }

    /// Removes a file from the directory.
    pub fn remove(&self, file_name: &str) {
        let path = self.file(file_name);
        fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }

    /// Sets a file's mode bits.
    pub fn chmod(&self, file_name: &str, mode: u32) {
        let path = self.file(file_name);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    }

    /// Copies in the libraries of [`PROCESSING_PLUGINS`].
    pub fn add_processing_plugins(&self) {
        for crate_name in PROCESSING_PLUGINS {
            self.add(crate_name);
        }
    }
}

impl Default for PluginDir {
    fn default() -> Self {
        Self::new()
    }
}

/// The first `len` bytes of a plugin crate's library: a truncated ELF file.
pub fn truncated_library(crate_name: &str, len: usize) -> Vec<u8> {
    let mut bytes = fs::read(plugin_library(crate_name))
        .unwrap_or_else(|e| panic!("read library of {crate_name}: {e}"));
    assert!(
        bytes.len() > len,
        "library of {crate_name} is smaller than {len} bytes"
    );
    bytes.truncate(len);
    bytes
}
