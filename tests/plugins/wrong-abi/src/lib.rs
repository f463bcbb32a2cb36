//! `wrongAbi`: a test plugin whose declaration claims an ABI version the host does not speak
//! (`ABI_VERSION + 1`). It exists to check that the host reads `magic` and `abi_version` first and refuses
//! the library with a message naming both versions, without calling anything in it. The declaration is
//! written by hand because `declare_plugin!` always records the right ABI version. Never shipped in the
//! plugin directory.

// Not `forbid`: this plugin must write its declaration by hand (see above), which needs the one
// `#[unsafe(no_mangle)]` allowed below; nothing else here may be unsafe.
#![deny(unsafe_code)]

use mc_plugin_api::abi::{ABI_VERSION, FfiStr, PLUGIN_MAGIC, PluginDeclaration};
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError};

/// A workflow a correct host never creates: `create` below must never be called.
pub struct NeverCreated;

impl Workflow for NeverCreated {
    fn create(_settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        panic!("wrong-abi: create called although the declaration has the wrong ABI version")
    }

    async fn run(&self, _ctx: RunContext) -> Result<RunReport, WorkflowError> {
        Err(WorkflowError::new("wrong-abi: run must never be called"))
    }
}

/// The declaration, with an ABI version one above the host's.
// SAFETY: the symbol name is the one Message Center looks for and the static is immutable.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub static MESSAGE_CENTER_PLUGIN: PluginDeclaration = PluginDeclaration {
    magic: PLUGIN_MAGIC,
    abi_version: ABI_VERSION + 1,
    rustc_version: FfiStr::new(mc_plugin_api::RUSTC_VERSION),
    api_version: FfiStr::new(mc_plugin_api::API_VERSION),
    name: FfiStr::new("wrongAbi"),
    version: FfiStr::new(env!("CARGO_PKG_VERSION")),
    description: FfiStr::new("Test plugin declaring an unsupported ABI version"),
    create: mc_plugin_api::export::create::<NeverCreated>,
};
