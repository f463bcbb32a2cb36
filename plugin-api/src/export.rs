//! The FFI glue behind [`crate::declare_plugin!`] and [`crate::Host`]: the only place in this crate that
//! calls across the boundary. Every function the host can call catches panics and turns them into error
//! results, because unwinding out of an `extern "C"` function aborts the process.

use std::any::Any;
use std::ffi::c_void;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_ffi::{FfiFuture, FutureExt};

use crate::abi::{
    ABI_VERSION, FfiBuffer, FfiLogLevel, FfiResult, FfiStr, HostHandle, WorkflowHandle,
};
use crate::host::Host;
use crate::workflow::{RunContext, RunInfo, Workflow};

/// Declares the plugin: exports the [`crate::abi::PluginDeclaration`] the host looks for.
///
/// ```no_run
/// # use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError};
/// # pub struct MyWorkflow;
/// # impl Workflow for MyWorkflow {
/// #     fn create(_: &serde_json::Value) -> Result<Self, WorkflowError> { Ok(MyWorkflow) }
/// #     async fn run(&self, _: RunContext) -> Result<RunReport, WorkflowError> { Ok(RunReport::default()) }
/// # }
/// mc_plugin_api::declare_plugin! {
///     name: "myWorkflow",
///     version: env!("CARGO_PKG_VERSION"),
///     description: "What it does, in one line",
///     workflow: MyWorkflow,
/// }
/// ```
#[macro_export]
macro_rules! declare_plugin {
    (
        name: $name:expr,
        version: $version:expr,
        description: $description:expr,
        workflow: $workflow:ty $(,)?
    ) => {
        /// The declaration the Message Center host reads and checks before anything else.
        // SAFETY: the symbol name is unique to Message Center plugins and the static is immutable.
        #[unsafe(no_mangle)]
        pub static MESSAGE_CENTER_PLUGIN: $crate::abi::PluginDeclaration =
            $crate::abi::PluginDeclaration {
                magic: $crate::abi::PLUGIN_MAGIC,
                abi_version: $crate::abi::ABI_VERSION,
                rustc_version: $crate::abi::FfiStr::new($crate::RUSTC_VERSION),
                api_version: $crate::abi::FfiStr::new($crate::API_VERSION),
                name: $crate::abi::FfiStr::new($name),
                version: $crate::abi::FfiStr::new($version),
                description: $crate::abi::FfiStr::new($description),
                create: $crate::export::create::<$workflow>,
            };
    };
}

/// How the error message of a run that panicked starts, so the host can count panics apart from errors.
pub const PANIC_PREFIX: &str = "run panicked: ";

/// Text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// `PluginDeclaration::create` for workflow type `W`.
///
/// # Safety
/// `settings` must be a valid [`FfiStr`] for the duration of the call.
pub unsafe extern "C" fn create<W: Workflow>(settings: FfiStr) -> FfiResult<WorkflowHandle> {
    let created = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host passes a string it keeps alive for this call.
        let text = unsafe { settings.as_str() };
        let value: serde_json::Value = if text.is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_str(text).map_err(|e| format!("settings are not JSON: {e}"))?
        };
        W::create(&value).map_err(|e| e.message().to_owned())
    }));
    match created {
        Ok(Ok(workflow)) => FfiResult::Ok(WorkflowHandle {
            this: Arc::into_raw(Arc::new(workflow)).cast::<c_void>(),
            run: run::<W>,
            destroy: destroy::<W>,
        }),
        Ok(Err(message)) => FfiResult::err(message),
        Err(payload) => FfiResult::err(format!(
            "workflow creation panicked: {}",
            panic_message(payload.as_ref())
        )),
    }
}

/// `WorkflowHandle::run` for workflow type `W`.
///
/// # Safety
/// `this` must come from [`create::<W>`] and not yet be destroyed; `host` must stay valid until the
/// returned future is dropped; `run_info` must be valid for the call.
unsafe extern "C" fn run<W: Workflow>(
    this: *const c_void,
    host: HostHandle,
    run_info: FfiStr,
) -> FfiFuture<FfiResult<FfiBuffer>> {
    let prepared = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host hands over a vtable that lives as long as the run; its first field is the ABI
        // version, which never moves.
        let host_abi = unsafe { (*host.vtable).abi_version };
        if host_abi != ABI_VERSION {
            return Err(format!(
                "host offers plugin ABI version {host_abi}, this plugin was built for {ABI_VERSION}"
            ));
        }
        // SAFETY: `this` was made by Arc::into_raw in `create::<W>` and the host has not destroyed it;
        // taking one more strong count keeps the workflow alive for as long as the future needs it.
        let workflow = unsafe {
            Arc::increment_strong_count(this.cast::<W>());
            Arc::from_raw(this.cast::<W>())
        };
        // SAFETY: the host keeps the string alive for this call.
        let info: RunInfo = serde_json::from_str(unsafe { run_info.as_str() })
            .map_err(|e| format!("run info is not valid JSON: {e}"))?;
        Ok((workflow, info))
    }));
    let (workflow, info) = match prepared {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(message)) => return std::future::ready(FfiResult::err(message)).into_ffi(),
        Err(payload) => {
            let message = format!("{PANIC_PREFIX}{}", panic_message(payload.as_ref()));
            return std::future::ready(FfiResult::err(message)).into_ffi();
        }
    };
    let work = async move {
        let ctx = RunContext {
            info,
            host: Host::new(host),
        };
        match workflow.run(ctx).await {
            Ok(report) => match serde_json::to_vec(&report) {
                Ok(json) => FfiResult::Ok(FfiBuffer::from_vec(json)),
                Err(e) => FfiResult::err(format!("run report could not be encoded: {e}")),
            },
            Err(e) => FfiResult::err(e.message().to_owned()),
        }
    };
    PanicToError::new(work).into_ffi()
}

/// `WorkflowHandle::destroy` for workflow type `W`.
///
/// # Safety
/// `this` must come from [`create::<W>`]; it is released here, once.
unsafe extern "C" fn destroy<W: Workflow>(this: *const c_void) {
    // SAFETY: the pointer came from Arc::into_raw in `create::<W>`; this releases the host's reference.
    let workflow = unsafe { Arc::from_raw(this.cast::<W>()) };
    // A panicking Drop must not unwind into the host; there is nobody to report it to but stderr.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(workflow))) {
        eprintln!(
            "workflow destructor panicked: {}",
            panic_message(payload.as_ref())
        );
    }
}

/// Wraps a run's future so that a panic while polling or dropping it becomes an error result instead of
/// unwinding into the host.
struct PanicToError<F> {
    inner: Option<Pin<Box<F>>>,
}

impl<F> PanicToError<F> {
    fn new(inner: F) -> Self {
        PanicToError {
            inner: Some(Box::pin(inner)),
        }
    }
}

impl<F: Future<Output = FfiResult<FfiBuffer>>> Future for PanicToError<F> {
    type Output = FfiResult<FfiBuffer>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(FfiResult::err("run polled after it finished"));
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                // The inner future is poisoned: drop it now (guarded) and never poll it again.
                let poisoned = self.inner.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(poisoned)));
                Poll::Ready(FfiResult::err(format!(
                    "{PANIC_PREFIX}{}",
                    panic_message(payload.as_ref())
                )))
            }
        }
    }
}

impl<F> Drop for PanicToError<F> {
    fn drop(&mut self) {
        let inner = self.inner.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
    }
}

// ---- calls from the plugin into the host ----

pub(crate) async fn host_call(
    handle: HostHandle,
    service: &str,
    request: &str,
) -> Result<String, String> {
    // SAFETY: the host keeps ctx and vtable valid for the whole run, and `call` copies both strings
    // before it returns.
    let future =
        unsafe { ((*handle.vtable).call)(handle.ctx, FfiStr::new(service), FfiStr::new(request)) };
    let buffer = future.await.into_result()?;
    String::from_utf8(buffer.as_bytes().to_vec()).map_err(|e| format!("answer is not UTF-8: {e}"))
}

pub(crate) fn host_log(handle: HostHandle, level: FfiLogLevel, message: &str) {
    // SAFETY: as in host_call; the message is borrowed for the call only.
    unsafe { ((*handle.vtable).log)(handle.ctx, level as u8, FfiStr::new(message)) }
}

pub(crate) fn host_now(handle: HostHandle) -> i64 {
    // SAFETY: as in host_call.
    unsafe { ((*handle.vtable).now_unix_millis)(handle.ctx) }
}

pub(crate) fn host_sleep(handle: HostHandle, millis: u64) -> FfiFuture<()> {
    // SAFETY: as in host_call.
    unsafe { ((*handle.vtable).sleep)(handle.ctx, millis) }
}

pub(crate) fn host_cancel_requested(handle: HostHandle) -> bool {
    // SAFETY: as in host_call.
    unsafe { ((*handle.vtable).cancel_requested)(handle.ctx) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::HostVTable;
    use crate::workflow::{RunReport, WorkflowError};

    /// A workflow whose behaviour is picked by its settings.
    struct Probe {
        panic_in_run: bool,
    }

    impl Workflow for Probe {
        fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
            match settings["create"].as_str() {
                Some("panic") => panic!("create exploded"),
                Some("error") => Err(WorkflowError::new("bad settings")),
                _ => Ok(Probe {
                    panic_in_run: settings["run"] == "panic",
                }),
            }
        }

        async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
            if self.panic_in_run {
                panic!("run exploded");
            }
            Ok(RunReport::processed(ctx.info.run_number))
        }
    }

    unsafe extern "C" fn no_call(
        _: *const c_void,
        _: FfiStr,
        _: FfiStr,
    ) -> FfiFuture<FfiResult<FfiBuffer>> {
        std::future::ready(FfiResult::err("no services in this test")).into_ffi()
    }
    unsafe extern "C" fn no_log(_: *const c_void, _: u8, _: FfiStr) {}
    unsafe extern "C" fn zero_clock(_: *const c_void) -> i64 {
        0
    }
    unsafe extern "C" fn no_sleep(_: *const c_void, _: u64) -> FfiFuture<()> {
        std::future::ready(()).into_ffi()
    }
    unsafe extern "C" fn never_cancel(_: *const c_void) -> bool {
        false
    }

    fn vtable(abi_version: u32) -> HostVTable {
        HostVTable {
            abi_version,
            call: no_call,
            log: no_log,
            now_unix_millis: zero_clock,
            sleep: no_sleep,
            cancel_requested: never_cancel,
        }
    }

    fn create_probe(settings: &str) -> Result<WorkflowHandle, String> {
        // SAFETY: the settings string outlives the call.
        unsafe { create::<Probe>(FfiStr::new(settings)) }.into_result()
    }

    fn run_probe(handle: &WorkflowHandle, vtable: &HostVTable) -> Result<String, String> {
        let host = HostHandle {
            ctx: std::ptr::null(),
            vtable,
        };
        let info = r#"{"workflow":"w","runNumber":7,"generation":1,"deadlineMillis":1000}"#;
        // SAFETY: the handle is alive, the vtable outlives the future, the info string the call.
        let future = unsafe { (handle.run)(handle.this, host, FfiStr::new(info)) };
        block_on(future)
            .into_result()
            .map(|buffer| buffer.to_string_lossy())
    }

    /// Polls a future to completion on this thread; the probe's futures never wait on anything.
    fn block_on<F: Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
    }

    #[test]
    fn create_errors_and_panics_become_error_results() {
        assert_eq!(
            create_probe(r#"{"create":"error"}"#).err().as_deref(),
            Some("bad settings")
        );
        let panicked = create_probe(r#"{"create":"panic"}"#).err().unwrap();
        assert!(panicked.contains("create exploded"), "{panicked}");
        assert!(create_probe("not json").err().unwrap().contains("not JSON"));
    }

    #[test]
    fn a_run_reports_json_and_a_panicking_run_an_error() {
        let good = create_probe("{}").unwrap();
        let report: RunReport =
            serde_json::from_str(&run_probe(&good, &vtable(ABI_VERSION)).unwrap()).unwrap();
        assert_eq!(report.processed, 7);
        // SAFETY: created above, destroyed once.
        unsafe { (good.destroy)(good.this) };

        let bad = create_probe(r#"{"run":"panic"}"#).unwrap();
        let error = run_probe(&bad, &vtable(ABI_VERSION)).unwrap_err();
        assert!(
            error.starts_with(PANIC_PREFIX) && error.contains("run exploded"),
            "{error}"
        );
        // SAFETY: as above.
        unsafe { (bad.destroy)(bad.this) };
    }

    #[test]
    fn a_host_of_another_abi_version_is_refused_before_the_run() {
        let handle = create_probe("{}").unwrap();
        let error = run_probe(&handle, &vtable(ABI_VERSION + 1)).unwrap_err();
        assert!(
            error.contains(&format!("ABI version {}", ABI_VERSION + 1)),
            "{error}"
        );
        // SAFETY: as above.
        unsafe { (handle.destroy)(handle.this) };
    }

    #[test]
    fn buffers_free_with_their_own_function() {
        let buffer = FfiBuffer::from_string("hello".to_owned());
        assert_eq!(buffer.as_bytes(), b"hello");
        drop(buffer);
    }
}
