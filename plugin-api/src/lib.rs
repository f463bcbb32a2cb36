//! # mc-plugin-api: write a Message Center technical workflow
//!
//! A technical workflow (`rtEventsProcessing`, `archiving`, or one of your own) is a `cdylib` that the
//! Message Center host loads from its plugin directory, checks, and runs on a schedule. This crate is all a
//! plugin needs: implement [`Workflow`], export it with [`declare_plugin!`], and reach the world only
//! through the [`Host`] handed to each run.
//!
//! ```no_run
//! use mc_plugin_api::{declare_plugin, services::CountEvents, RunContext, RunReport, Workflow, WorkflowError};
//!
//! pub struct Hello;
//!
//! impl Workflow for Hello {
//!     fn create(_settings: &serde_json::Value) -> Result<Self, WorkflowError> {
//!         Ok(Hello)
//!     }
//!
//!     async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
//!         let pending = ctx.host.request(&CountEvents::default()).await?;
//!         ctx.host.info(&format!("{} events in the store", pending.count));
//!         Ok(RunReport::processed(0))
//!     }
//! }
//!
//! declare_plugin! {
//!     name: "hello",
//!     version: env!("CARGO_PKG_VERSION"),
//!     description: "Says how many events there are",
//!     workflow: Hello,
//! }
//! ```
//!
//! Read the `[workflows.<name>]` settings `create` receives with [`settings()`] into a
//! `#[derive(Deserialize)]` struct of your keys; its errors name the bad key. Statuses, channels and
//! queues are the enums of [`vocabulary`], never strings.
//!
//! ## Why the boundary looks like this
//! Each `cdylib` carries its own copy of std, of its allocator's bookkeeping, of tokio and of tracing, and
//! Rust has no stable ABI. So the boundary is plain C: `#[repr(C)]` structs of function pointers
//! ([`abi`]), futures as [`async_ffi::FfiFuture`], data as JSON in buffers that carry their own `free`.
//! Nothing unwinds across it (every export catches panics), the host checks the declaration's magic and
//! [`abi::ABI_VERSION`] before it calls anything, and a plugin never spawns tasks, opens pools or installs
//! loggers of its own: the host's services do that work on the host's runtime.

// Everything public here is read by plugin authors (and `cargo doc`); an undocumented item fails clippy's
// `-D warnings`. Set here because a crate's `[lints]` table cannot both inherit the workspace's and add.
#![warn(missing_docs)]

pub mod abi;
#[doc(hidden)]
pub mod export;
pub mod host;
pub mod services;
mod settings;
pub mod vocabulary;
pub mod workflow;

pub use abi::FfiLogLevel as LogLevel;
pub use host::{Host, HostError, HostRequest};
pub use settings::settings;
pub use vocabulary::{
    Channel, DeliveryStatus, EventStatus, NotificationStatus, Queue, UnknownName, WebhookEventType,
    WebhookVerdict,
};
pub use workflow::{RunContext, RunInfo, RunReport, Workflow, WorkflowError};

/// The `rustc --version` of the compiler that built this crate, and so the plugin that depends on it.
pub const RUSTC_VERSION: &str = env!("MC_PLUGIN_API_RUSTC_VERSION");

/// This crate's version, recorded in every plugin's declaration.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

pub use serde_json;
