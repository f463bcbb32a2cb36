//! The binary interface between the host and a plugin library.
//!
//! Everything here is `#[repr(C)]` and made only of integers, raw pointers, `extern "C"` function pointers
//! and [`async_ffi::FfiFuture`]s, so its layout does not depend on the compiler version or on the versions
//! of the crates on either side. Structured data crosses as UTF-8 JSON in an [`FfiBuffer`], which carries
//! the function that frees it: memory is always released by the allocator of the side that made it.
//!
//! Plugin authors never touch these types directly: they implement [`crate::Workflow`] and export it with
//! [`crate::declare_plugin!`]. The host reads them in its loader.

use std::ffi::c_void;

use async_ffi::FfiFuture;

/// First field of every declaration: "MSGCTRPL" read as a big-endian integer. A symbol of the right name
/// whose first eight bytes are not this is not a Message Center plugin.
pub const PLUGIN_MAGIC: u64 = u64::from_be_bytes(*b"MSGCTRPL");

/// Version of the binary layout in this module. It changes only when a type here changes shape; adding a
/// host service does not change it (services are named and carry JSON). The host refuses a plugin whose
/// declaration names another value, before it reads any other field.
pub const ABI_VERSION: u32 = 1;

/// Name of the exported static that holds the [`PluginDeclaration`], NUL-terminated for `dlsym`.
pub const DECLARATION_SYMBOL: &[u8] = b"MESSAGE_CENTER_PLUGIN\0";

/// A borrowed UTF-8 string: valid for the duration of the call it is passed to, or for the life of the
/// library when it sits in a [`PluginDeclaration`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FfiStr {
    /// The first byte.
    pub ptr: *const u8,
    /// The length in bytes.
    pub len: usize,
}

impl FfiStr {
    /// Borrows a Rust string. The caller keeps `s` alive for as long as the `FfiStr` is used.
    pub const fn new(s: &str) -> Self {
        FfiStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the string back.
    ///
    /// # Safety
    /// `self` must have been made by [`FfiStr::new`] from a string that is still alive.
    pub unsafe fn as_str<'a>(&self) -> &'a str {
        if self.len == 0 {
            return "";
        }
        // SAFETY: the caller guarantees ptr/len come from a live &str, which is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr, self.len)) }
    }
}

// SAFETY: an FfiStr is a shared borrow of immutable bytes, like &str, which is Send and Sync.
unsafe impl Send for FfiStr {}
// SAFETY: as above.
unsafe impl Sync for FfiStr {}

/// An owned byte buffer (UTF-8 JSON or text) that remembers how to free itself.
///
/// It is made from a `Vec<u8>` by [`FfiBuffer::from_vec`] on one side and read with
/// [`FfiBuffer::as_bytes`] on either side; dropping it calls `free`, which points into the code of the side
/// that allocated it, so the right allocator releases the memory.
#[repr(C)]
pub struct FfiBuffer {
    ptr: *mut u8,
    len: usize,
    cap: usize,
    free: extern "C" fn(ptr: *mut u8, len: usize, cap: usize),
}

extern "C" fn free_vec(ptr: *mut u8, len: usize, cap: usize) {
    // SAFETY: ptr/len/cap come from a Vec<u8> that this same compilation unit (and so this same allocator)
    // leaked in `FfiBuffer::from_vec`; it is rebuilt exactly once, by Drop.
    drop(unsafe { Vec::from_raw_parts(ptr, len, cap) });
}

impl FfiBuffer {
    /// Takes ownership of `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        FfiBuffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
            free: free_vec,
        }
    }

    /// Copies a string into a new buffer.
    pub fn from_string(s: String) -> Self {
        Self::from_vec(s.into_bytes())
    }

    /// The bytes, whichever side made them.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: ptr/len describe the initialised part of a live allocation owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes as text; invalid UTF-8 is replaced rather than trusted.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl Drop for FfiBuffer {
    fn drop(&mut self) {
        (self.free)(self.ptr, self.len, self.cap);
    }
}

// SAFETY: an FfiBuffer uniquely owns its allocation, like Vec<u8>; its free function is thread-agnostic.
unsafe impl Send for FfiBuffer {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for FfiBuffer {}

/// The result of a call across the boundary: a value, or an error message.
#[repr(C, u8)]
pub enum FfiResult<T> {
    /// The call succeeded.
    Ok(T),
    /// The call failed; the buffer holds the message.
    Err(FfiBuffer),
}

impl<T> FfiResult<T> {
    /// Turns the FFI result back into a Rust one, with the error as text.
    pub fn into_result(self) -> Result<T, String> {
        match self {
            FfiResult::Ok(value) => Ok(value),
            FfiResult::Err(message) => Err(message.to_string_lossy()),
        }
    }

    /// Builds an error result from a message.
    pub fn err(message: impl Into<String>) -> Self {
        FfiResult::Err(FfiBuffer::from_string(message.into()))
    }
}

/// Log levels as they cross the boundary.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfiLogLevel {
    /// Something failed.
    Error = 1,
    /// Something is wrong but the work goes on.
    Warn = 2,
    /// What happened, in normal operation.
    Info = 3,
    /// Details for diagnosis.
    Debug = 4,
    /// Every step.
    Trace = 5,
}

impl FfiLogLevel {
    /// Decodes a level received as a raw byte; unknown values are treated as `Info`.
    pub fn from_u8(value: u8) -> Self {
        match value {
            1 => FfiLogLevel::Error,
            2 => FfiLogLevel::Warn,
            4 => FfiLogLevel::Debug,
            5 => FfiLogLevel::Trace,
            _ => FfiLogLevel::Info,
        }
    }
}

/// The services the host offers to one workflow run. The host keeps `ctx` alive until the run's future has
/// been dropped; the plugin must not keep a copy beyond that.
#[repr(C)]
pub struct HostVTable {
    /// [`ABI_VERSION`] as the host was built with it.
    pub abi_version: u32,
    /// Calls the named service with a JSON request; both strings are copied before `call` returns. The
    /// future yields the JSON response or an error message.
    pub call: unsafe extern "C" fn(
        ctx: *const c_void,
        service: FfiStr,
        request: FfiStr,
    ) -> FfiFuture<FfiResult<FfiBuffer>>,
    /// Writes a line to the host's log, inside the span of the current workflow run.
    pub log: unsafe extern "C" fn(ctx: *const c_void, level: u8, message: FfiStr),
    /// Wall-clock time, milliseconds since the Unix epoch, from the host's clock.
    pub now_unix_millis: unsafe extern "C" fn(ctx: *const c_void) -> i64,
    /// A timer on the host's runtime.
    pub sleep: unsafe extern "C" fn(ctx: *const c_void, millis: u64) -> FfiFuture<()>,
    /// True once the host wants this run to end early (shutdown, workflow stopped, generation retired).
    pub cancel_requested: unsafe extern "C" fn(ctx: *const c_void) -> bool,
}

/// What the host hands to a workflow run: an opaque context and the table of functions that use it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostHandle {
    /// The host's context, passed back to every function of `vtable`.
    pub ctx: *const c_void,
    /// The host's functions.
    pub vtable: *const HostVTable,
}

// SAFETY: the host's context is a thread-safe object (an Arc'd struct of Send + Sync services) and the
// vtable is immutable static data; the host guarantees both outlive the run.
unsafe impl Send for HostHandle {}
// SAFETY: as above.
unsafe impl Sync for HostHandle {}

/// One instance of a workflow, created by [`PluginDeclaration::create`] and owned by the host until it calls
/// `destroy`.
#[repr(C)]
pub struct WorkflowHandle {
    /// The plugin's object; opaque to the host.
    pub this: *const c_void,
    /// Starts one run. `run_info` is JSON ([`crate::RunInfo`]), borrowed for the call. The future yields a
    /// JSON [`crate::RunReport`] or an error message; it never unwinds.
    pub run: unsafe extern "C" fn(
        this: *const c_void,
        host: HostHandle,
        run_info: FfiStr,
    ) -> FfiFuture<FfiResult<FfiBuffer>>,
    /// Releases `this`. Called once, after every future returned by `run` has been dropped.
    pub destroy: unsafe extern "C" fn(this: *const c_void),
}

// SAFETY: `this` points to a `Workflow`, which the trait requires to be Send + Sync.
unsafe impl Send for WorkflowHandle {}
// SAFETY: as above.
unsafe impl Sync for WorkflowHandle {}

/// The exported description of a plugin. `magic` and `abi_version` come first and will never move, so a
/// host can read them from any version of this struct and refuse a mismatch before touching the rest.
#[repr(C)]
pub struct PluginDeclaration {
    /// Always [`PLUGIN_MAGIC`].
    pub magic: u64,
    /// [`ABI_VERSION`] of the plugin-api the plugin was built with.
    pub abi_version: u32,
    /// `rustc --version` of the compiler that built the plugin.
    pub rustc_version: FfiStr,
    /// Crate version of the plugin-api the plugin was built with.
    pub api_version: FfiStr,
    /// The plugin's name; `[workflows.<name>] plugin` refers to it.
    pub name: FfiStr,
    /// The plugin's own version.
    pub version: FfiStr,
    /// One line saying what the workflow does.
    pub description: FfiStr,
    /// Creates a workflow instance from its settings (JSON of the `[workflows.<name>]` table).
    pub create: unsafe extern "C" fn(settings: FfiStr) -> FfiResult<WorkflowHandle>,
}

// SAFETY: a declaration is immutable static data: string pointers into the library's read-only memory and
// function pointers.
unsafe impl Sync for PluginDeclaration {}
