//! Which files of the plugin directory a scan loads: every library of this platform, or only those
//! `plugins.files` lists.
//!
//! The list is what keeps a production-shaped start from running test code: `cargo build --release
//! --workspace` puts the test plugins next to the shipped ones in `target/release`, and a file that is
//! not listed is never opened (not even read), so its code, its refusal and its log lines stay out.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The libraries of one scan, sorted, and how many libraries were left out because they are not listed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub files: Vec<PathBuf>,
    pub skipped: usize,
    /// Listed names with no file in the directory.
    pub missing: Vec<String>,
}

/// The file names a scan may load; `None` = every library.
#[derive(Clone, Debug, Default)]
pub struct FileFilter(Option<BTreeSet<OsString>>);

impl FileFilter {
    /// Every library in the directory.
    pub fn all() -> Self {
        FileFilter(None)
    }

    /// Only these file names (`plugins.files`, validated as bare file names when the config loads).
    pub fn only<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        FileFilter(Some(names.into_iter().map(Into::into).collect()))
    }

    /// Whether a list restricts the scan.
    pub fn is_restricted(&self) -> bool {
        self.0.is_some()
    }

    fn admits(&self, path: &Path) -> bool {
        match (&self.0, path.file_name()) {
            (None, _) => true,
            (Some(names), Some(name)) => names.contains(name),
            (Some(_), None) => false,
        }
    }

    /// Lists `dir`: the admitted libraries, sorted, and the count of libraries not admitted. Only
    /// names and file types are looked at; nothing is opened.
    pub fn scan(&self, dir: &Path) -> std::io::Result<Scan> {
        let mut scan = Scan::default();
        let mut present = BTreeSet::new();
        for entry in std::fs::read_dir(dir)? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            if !has_library_extension(&path) || !path.is_file() {
                continue;
            }
            if !self.admits(&path) {
                scan.skipped += 1;
                continue;
            }
            if let Some(name) = path.file_name() {
                present.insert(name.to_owned());
            }
            scan.files.push(path);
        }
        scan.files.sort();
        if let Some(names) = &self.0 {
            scan.missing = names
                .iter()
                .filter(|name| !present.contains(*name))
                .map(|name| name.to_string_lossy().into_owned())
                .collect();
        }
        Ok(scan)
    }
}

/// Whether `path` is named like a plugin library of this platform (`.so` on Linux).
fn has_library_extension(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in files {
            // Not libraries at all: a scan that opened them would have to say so.
            std::fs::write(dir.path().join(file), b"not an ELF file").expect("write");
        }
        dir
    }

    fn names(scan: &Scan) -> Vec<String> {
        scan.files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn without_a_list_every_library_is_scanned() {
        let dir = dir_with(&["libb.so", "liba.so", "notes.txt", ".libc.so.deploy-tmp"]);
        std::fs::create_dir(dir.path().join("sub.so")).expect("mkdir");
        let scan = FileFilter::all().scan(dir.path()).expect("scan");
        assert_eq!(names(&scan), ["liba.so", "libb.so"]);
        assert_eq!(scan.skipped, 0);
        assert!(scan.missing.is_empty());
        assert!(!FileFilter::all().is_restricted());
    }

    #[test]
    fn a_list_admits_only_its_files_and_counts_the_others() {
        let dir = dir_with(&[
            "librt_events_processing.so",
            "libfault_probe.so",
            "libwrong_abi.so",
            "libreload_probe_v2.so",
            "message-center.d",
        ]);
        std::fs::create_dir(dir.path().join("sub.so")).expect("mkdir");
        let filter = FileFilter::only(["librt_events_processing.so", "libarchiving.so"]);
        assert!(filter.is_restricted());
        let scan = filter.scan(dir.path()).expect("scan");
        assert_eq!(names(&scan), ["librt_events_processing.so"]);
        assert_eq!(scan.skipped, 3, "the three unlisted libraries");
        assert_eq!(scan.missing, ["libarchiving.so"]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = dir_with(&[]);
        let gone = dir.path().join("gone");
        assert!(FileFilter::all().scan(&gone).is_err());
    }
}
