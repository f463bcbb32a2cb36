//! The table of host functions a plugin run receives ([`HostVTable`]), and the per-run context behind it.
//!
//! Every function here is called by plugin code through a raw pointer, so each catches panics (nothing
//! unwinds into the plugin), copies what it borrows before returning, and hands futures back as
//! [`FfiFuture`]s that run on the host's runtime.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_ffi::{FfiFuture, FutureExt};
use mc_plugin_api::abi::{
    ABI_VERSION, FfiBuffer, FfiLogLevel, FfiResult, FfiStr, HostHandle, HostVTable,
};
use tokio::sync::watch;

use crate::services::{Caller, HostServices, RunClaims};

/// What one run of one workflow may use. Kept alive by the runner until the run's future is dropped.
pub struct RunScope {
    pub services: Arc<HostServices>,
    pub workflow: String,
    pub plugin: String,
    pub generation: u64,
    /// What the run claims, under its own name.
    pub claims: Arc<RunClaims>,
    /// Shutdown started or the workflow was stopped.
    pub stop: Vec<Arc<AtomicBool>>,
    /// The generation serving this run was retired by a reload.
    pub retired: watch::Receiver<bool>,
}

impl RunScope {
    fn cancel_requested(&self) -> bool {
        *self.retired.borrow() || self.stop.iter().any(|flag| flag.load(Ordering::SeqCst))
    }

    /// The handle given to the plugin. Valid while `self` is alive.
    pub fn handle(self: &Arc<Self>) -> HostHandle {
        HostHandle {
            ctx: Arc::as_ptr(self).cast::<c_void>(),
            vtable: &HOST_VTABLE,
        }
    }
}

static HOST_VTABLE: HostVTable = HostVTable {
    abi_version: ABI_VERSION,
    call,
    log,
    now_unix_millis,
    sleep,
    cancel_requested,
};

/// Takes one more strong reference to the run scope behind `ctx`.
///
/// # Safety
/// `ctx` must come from [`RunScope::handle`] of a scope that is still alive.
unsafe fn scope_from(ctx: *const c_void) -> Arc<RunScope> {
    let ptr = ctx.cast::<RunScope>();
    // SAFETY: per the contract, ptr came from Arc::as_ptr of a live Arc<RunScope>; incrementing first
    // makes the Arc we build an extra owner, so the runner's own reference is untouched.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}

unsafe extern "C" fn call(
    ctx: *const c_void,
    service: FfiStr,
    request: FfiStr,
) -> FfiFuture<FfiResult<FfiBuffer>> {
    let prepared = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes the handle it was given for this run (alive until the run's future is
        // dropped, and this call happens while that future is polled) and two strings it keeps alive for
        // the duration of this call; both are copied here.
        unsafe {
            (
                scope_from(ctx),
                service.as_str().to_owned(),
                request.as_str().to_owned(),
            )
        }
    }));
    let Ok((scope, service, request)) = prepared else {
        return std::future::ready(FfiResult::err("host call failed: invalid arguments"))
            .into_ffi();
    };
    async move {
        let caller = Caller {
            workflow: &scope.workflow,
            plugin: &scope.plugin,
            claims: &scope.claims,
        };
        match scope.services.dispatch(caller, &service, &request).await {
            Ok(json) => FfiResult::Ok(FfiBuffer::from_string(json)),
            Err(e) => FfiResult::err(e.to_string()),
        }
    }
    .into_ffi()
}

unsafe extern "C" fn log(ctx: *const c_void, level: u8, message: FfiStr) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `call`; the message is borrowed for this call only and read here.
        let (scope, message) = unsafe { (&*ctx.cast::<RunScope>(), message.as_str()) };
        let (workflow, plugin) = (scope.workflow.as_str(), scope.plugin.as_str());
        match FfiLogLevel::from_u8(level) {
            FfiLogLevel::Error => tracing::error!(target: "plugin", workflow, plugin, "{message}"),
            FfiLogLevel::Warn => tracing::warn!(target: "plugin", workflow, plugin, "{message}"),
            FfiLogLevel::Info => tracing::info!(target: "plugin", workflow, plugin, "{message}"),
            FfiLogLevel::Debug => tracing::debug!(target: "plugin", workflow, plugin, "{message}"),
            FfiLogLevel::Trace => tracing::trace!(target: "plugin", workflow, plugin, "{message}"),
        }
    }));
}

unsafe extern "C" fn now_unix_millis(_ctx: *const c_void) -> i64 {
    chrono::Utc::now().timestamp_millis()
}

unsafe extern "C" fn sleep(_ctx: *const c_void, millis: u64) -> FfiFuture<()> {
    // The timer is created when first polled, inside the host runtime that polls the run.
    async move { tokio::time::sleep(Duration::from_millis(millis)).await }.into_ffi()
}

unsafe extern "C" fn cancel_requested(ctx: *const c_void) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `call`.
        unsafe { &*ctx.cast::<RunScope>() }.cancel_requested()
    }))
    .unwrap_or(true)
}
