//! Opening a plugin library and checking its declaration: the host side of the boundary.
//!
//! A library is copied to a unique path before `dlopen`, because the dynamic loader caches libraries by
//! path: reopening the same path after the file changed would hand back the old code (or, if the file was
//! rewritten in place, map a half-written file). The copy is unlinked as soon as it is mapped.
//!
//! The declaration is read in two steps: the magic and the ABI version first (their offsets never change),
//! and only if both match is the rest read as a [`PluginDeclaration`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_ffi::FfiFuture;
use chrono::{DateTime, Utc};
use mc_plugin_api::abi::{
    ABI_VERSION, DECLARATION_SYMBOL, FfiBuffer, FfiResult, FfiStr, HostHandle, PLUGIN_MAGIC,
    PluginDeclaration, WorkflowHandle,
};
use serde::Serialize;

#[cfg(target_os = "linux")]
use super::elf;
use super::permissions;

/// Longest string a declaration may carry; anything longer is taken as garbage, not read.
const MAX_DECLARATION_STRING: usize = 4096;

/// Why a plugin file was refused. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Permissions(String),
    #[error("{path}: not a loadable library: {reason}")]
    NotALibrary { path: PathBuf, reason: String },
    #[error("{path}: not a Message Center plugin: it exports no MESSAGE_CENTER_PLUGIN declaration")]
    NoDeclaration { path: PathBuf },
    #[error(
        "{path}: not a Message Center plugin: declaration magic is {found:#018x}, expected {PLUGIN_MAGIC:#018x}"
    )]
    BadMagic { path: PathBuf, found: u64 },
    #[error(
        "{path}: plugin built for plugin ABI version {plugin}, this host speaks ABI version {host}; rebuild the plugin against mc-plugin-api {host_api}"
    )]
    AbiMismatch {
        path: PathBuf,
        plugin: u32,
        host: u32,
        host_api: &'static str,
    },
    #[error(
        "{path}: plugin built with `{plugin}`, this host was built with `{host}` and plugins.require_same_rustc is set"
    )]
    RustcMismatch {
        path: PathBuf,
        plugin: String,
        host: String,
    },
    #[error("{path}: invalid declaration: {reason}")]
    InvalidDeclaration { path: PathBuf, reason: String },
}

/// The declaration, copied out of the library into host-owned memory.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub abi_version: u32,
    pub rustc_version: String,
    pub description: String,
}

/// An open plugin library. Dropping the last `Arc` unloads it, so everything that points into its code
/// (workflow instances, run futures) holds an `Arc` to it.
pub struct PluginLibrary {
    pub info: PluginInfo,
    /// The file in the plugin directory it was loaded from.
    pub source: PathBuf,
    pub loaded_at: DateTime<Utc>,
    /// Points into `_library`'s code; valid while it is open, which is as long as `self` lives.
    create: CreateFn,
    /// Kept open for as long as anything may point into it; closed [`UNLOAD_GRACE`] after the drop.
    library: Option<libloading::Library>,
}

/// How long a library stays mapped after its last user is gone. A waker the plugin's future handed to a
/// host timer or channel forwards through the plugin's copy of async-ffi: the thread that wakes a run
/// (a runtime worker, when a timer fires) is still returning through that code while the woken run
/// finishes and drops the last reference. Closing at once unmapped the code under it (a SIGSEGV with the
/// instruction pointer in the unmapped range, seen once under CI load); returning takes microseconds.
pub const UNLOAD_GRACE: Duration = Duration::from_secs(5);

impl Drop for PluginLibrary {
    fn drop(&mut self) {
        let Some(library) = self.library.take() else {
            return;
        };
        let name = self.info.name.clone();
        let closer = std::thread::Builder::new()
            .name("mc-plugin-unload".to_owned())
            .spawn(move || {
                std::thread::sleep(UNLOAD_GRACE);
                drop(library);
                tracing::debug!(plugin = %name, "plugin library closed");
            });
        if let Err(e) = closer {
            // Without a thread to wait, keeping it mapped for good is the safe choice.
            tracing::warn!(error = %e, "plugin library left open: no thread to close it later");
        }
    }
}

impl std::fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("info", &self.info)
            .field("source", &self.source)
            .finish()
    }
}

/// Options that do not change between loads.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Where libraries are copied before `dlopen`.
    pub work_dir: PathBuf,
    /// Refuse plugins built by another rustc (otherwise the difference is only reported).
    pub require_same_rustc: bool,
}

/// The rustc that built this host, as plugin-api records it.
pub fn host_rustc_version() -> &'static str {
    mc_plugin_api::RUSTC_VERSION
}

static COPY_COUNTER: AtomicU64 = AtomicU64::new(0);

impl PluginLibrary {
    /// Loads `path`: permission check, structure check, copy, `dlopen`, declaration check.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, LoadError> {
        let bytes = read_plugin_file(path)?;
        Self::load_bytes(path, &bytes, options)
    }

    /// Loads `bytes`, read from `path` by [`read_plugin_file`]. The copy that is mapped is written from
    /// these very bytes, so what was checked is what runs.
    pub fn load_bytes(path: &Path, bytes: &[u8], options: &LoadOptions) -> Result<Self, LoadError> {
        #[cfg(target_os = "linux")]
        elf::check_shared_object(bytes).map_err(|reason| LoadError::NotALibrary {
            path: path.to_owned(),
            reason,
        })?;
        let copy = unique_copy_path(path, &options.work_dir);
        std::fs::write(&copy, bytes).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let opened = open_library(path, &copy);
        // The mapping stays valid after unlink; removing the copy now leaves nothing behind on any path.
        let _ = std::fs::remove_file(&copy);
        let library = opened?;
        let (info, create) = read_declaration(path, &library, options)?;
        Ok(PluginLibrary {
            info,
            source: path.to_owned(),
            loaded_at: Utc::now(),
            create,
            library: Some(library),
        })
    }

    /// Creates a workflow instance from its settings (JSON object).
    pub fn create_workflow(
        self: &Arc<Self>,
        settings: &serde_json::Value,
    ) -> Result<WorkflowInstance, String> {
        let settings = settings.to_string();
        // SAFETY: `create` comes from a declaration whose magic and ABI version matched, so it has the
        // signature of `PluginDeclaration::create`; the plugin-api glue catches panics; `settings` lives
        // across the call, and the library stays open because `self` is borrowed.
        let created = unsafe { (self.create)(FfiStr::new(&settings)) }.into_result()?;
        Ok(WorkflowInstance {
            handle: created,
            library: Arc::clone(self),
        })
    }
}

/// Reads a plugin file after checking that no other user can change it.
pub fn read_plugin_file(path: &Path) -> Result<Vec<u8>, LoadError> {
    permissions::check_plugin_file(path)?;
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })
}

fn unique_copy_path(path: &Path, work_dir: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_owned());
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| std::env::consts::DLL_EXTENSION.to_owned());
    let n = COPY_COUNTER.fetch_add(1, Ordering::Relaxed);
    work_dir.join(format!("{stem}.{}.{n}.{ext}", std::process::id()))
}

fn open_library(original: &Path, copy: &Path) -> Result<libloading::Library, LoadError> {
    // SAFETY: loading a library runs its initialisers. The file passed the permission check (only its
    // owner or root can write it), and Rust cdylibs built against plugin-api have no initialisers beyond
    // the standard library's. This is the trust the operator grants by putting a file in the plugin dir.
    unsafe { libloading::Library::new(copy) }.map_err(|e| LoadError::NotALibrary {
        path: original.to_owned(),
        reason: e.to_string().replace(&copy.display().to_string(), "<copy>"),
    })
}

type CreateFn = unsafe extern "C" fn(settings: FfiStr) -> FfiResult<WorkflowHandle>;

fn read_declaration(
    path: &Path,
    library: &libloading::Library,
    options: &LoadOptions,
) -> Result<(PluginInfo, CreateFn), LoadError> {
    // SAFETY: we ask for the address of a data symbol; nothing is read or called yet.
    let symbol =
        unsafe { library.get::<*const PluginDeclaration>(DECLARATION_SYMBOL) }.map_err(|_| {
            LoadError::NoDeclaration {
                path: path.to_owned(),
            }
        })?;
    let declaration: *const PluginDeclaration = *symbol;
    if declaration.is_null() {
        return Err(LoadError::NoDeclaration {
            path: path.to_owned(),
        });
    }
    // SAFETY: the symbol is exported by the library we just opened, so at least its first field is mapped;
    // every version of the declaration starts with the u64 magic, read unaligned in case it is garbage.
    let magic = unsafe { declaration.cast::<u64>().read_unaligned() };
    if magic != PLUGIN_MAGIC {
        return Err(LoadError::BadMagic {
            path: path.to_owned(),
            found: magic,
        });
    }
    // SAFETY: the magic matched, so this is a Message Center declaration, whose second field is always
    // the u32 ABI version at offset 8.
    let abi_version = unsafe {
        declaration
            .cast::<u8>()
            .add(8)
            .cast::<u32>()
            .read_unaligned()
    };
    if abi_version != ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            path: path.to_owned(),
            plugin: abi_version,
            host: ABI_VERSION,
            host_api: mc_plugin_api::API_VERSION,
        });
    }
    // SAFETY: magic and ABI version match, so the symbol is a `PluginDeclaration` of this exact layout,
    // immutable static data that lives as long as the library.
    let declaration = unsafe { &*declaration };
    let read = |field: &str, s: FfiStr| -> Result<String, LoadError> {
        if s.len > MAX_DECLARATION_STRING || (s.len > 0 && s.ptr.is_null()) {
            return Err(LoadError::InvalidDeclaration {
                path: path.to_owned(),
                reason: format!("field `{field}` is not a valid string"),
            });
        }
        if s.len == 0 {
            return Ok(String::new());
        }
        // SAFETY: the declaration's strings point into the library's read-only data (checked non-null
        // and bounded above); they are copied, then validated as UTF-8.
        let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
        String::from_utf8(bytes.to_vec()).map_err(|_| LoadError::InvalidDeclaration {
            path: path.to_owned(),
            reason: format!("field `{field}` is not UTF-8"),
        })
    };
    let info = PluginInfo {
        name: read("name", declaration.name)?,
        version: read("version", declaration.version)?,
        api_version: read("api_version", declaration.api_version)?,
        abi_version,
        rustc_version: read("rustc_version", declaration.rustc_version)?,
        description: read("description", declaration.description)?,
    };
    if info.name.is_empty() {
        return Err(LoadError::InvalidDeclaration {
            path: path.to_owned(),
            reason: "the plugin name is empty".to_owned(),
        });
    }
    if options.require_same_rustc && info.rustc_version != host_rustc_version() {
        return Err(LoadError::RustcMismatch {
            path: path.to_owned(),
            plugin: info.rustc_version,
            host: host_rustc_version().to_owned(),
        });
    }
    Ok((info, declaration.create))
}

/// A workflow object living inside a plugin. Dropping it calls the plugin's `destroy`, then releases the
/// library (field order: `handle` is dropped by hand in `Drop`, `library` after).
pub struct WorkflowInstance {
    handle: WorkflowHandle,
    library: Arc<PluginLibrary>,
}

impl WorkflowInstance {
    pub fn library(&self) -> &Arc<PluginLibrary> {
        &self.library
    }

    /// Starts one run. The returned future must be dropped before this instance: [`RunFuture`] makes sure
    /// of that by owning an `Arc` of it.
    pub fn start_run(self: &Arc<Self>, host: HostHandle, run_info_json: &str) -> RunFuture {
        // SAFETY: `this` and `run` come from the plugin's `create`; the instance is alive (borrowed), the
        // run-info string outlives the call, and the host handle stays valid until the returned future is
        // dropped (the caller keeps the host context alive alongside it).
        let future =
            unsafe { (self.handle.run)(self.handle.this, host, FfiStr::new(run_info_json)) };
        RunFuture {
            future,
            _instance: Arc::clone(self),
        }
    }
}

impl Drop for WorkflowInstance {
    fn drop(&mut self) {
        // SAFETY: called once; every RunFuture holds an Arc of this instance, so none is alive now.
        unsafe { (self.handle.destroy)(self.handle.this) }
    }
}

/// A run in flight. Field order matters: the plugin's future is dropped before the instance (and so the
/// library) it points into.
pub struct RunFuture {
    future: FfiFuture<FfiResult<FfiBuffer>>,
    _instance: Arc<WorkflowInstance>,
}

impl std::future::Future for RunFuture {
    type Output = Result<String, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.future)
            .poll(cx)
            .map(|result| result.into_result().map(|buffer| buffer.to_string_lossy()))
    }
}
