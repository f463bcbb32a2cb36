//! The trait a technical workflow implements, and what one run receives and returns.

use std::fmt;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::host::Host;

/// A technical workflow. The host creates one instance per `[workflows.<name>]` entry that uses this
/// plugin, then calls [`Workflow::run`] on its schedule (every `interval`, and at once when woken, for
/// instance by ingestion). Runs of one instance never overlap.
///
/// A workflow keeps no state that matters across runs: claims, cursors and progress live in the database,
/// behind the host's services, so that a hot reload or a crash loses nothing.
pub trait Workflow: Send + Sync + Sized + 'static {
    /// Builds an instance from its settings: the `[workflows.<name>]` table of the host's configuration as
    /// JSON (keys as written there, such as `batch_size`). Refuse bad settings here with a clear message.
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError>;

    /// Does one round of work. Return promptly when [`RunContext::cancel_requested`] turns true; a run that
    /// outlives its deadline is dropped by the host.
    fn run(&self, ctx: RunContext)
    -> impl Future<Output = Result<RunReport, WorkflowError>> + Send;
}

/// What the host says about the run it starts (it crosses the boundary as JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    /// The configured workflow name (`rtEventsProcessing`, ...), which may differ from the plugin name.
    pub workflow: String,
    /// Increases by one per run of this workflow since the host started.
    pub run_number: u64,
    /// The generation of the plugin library serving this run (1 at start, +1 per reload).
    pub generation: u64,
    /// Milliseconds the host allows this run before it drops it.
    pub deadline_millis: u64,
}

/// Everything a run may use: its description and the host's services.
#[derive(Clone)]
pub struct RunContext {
    /// Which workflow, run and plugin generation this is.
    pub info: RunInfo,
    /// The host's services for this run.
    pub host: Host,
}

impl RunContext {
    /// True once the host wants the run to end early: shutdown, the workflow stopped, or its plugin
    /// generation retired by a reload. Work already claimed should be finished or released, then return.
    pub fn cancel_requested(&self) -> bool {
        self.host.cancel_requested()
    }
}

/// The outcome of a successful run, shown in `/admin/workflows` and counted in `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Items (events, log entries, archive rows) this run handled.
    pub processed: u64,
    /// True when the run stopped with work left (a full batch): the host runs the workflow again at once
    /// instead of waiting for the next tick.
    #[serde(default)]
    pub more_work: bool,
    /// A short human-readable summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl RunReport {
    /// A report for `processed` items and nothing else to say.
    pub fn processed(processed: u64) -> Self {
        RunReport {
            processed,
            ..Default::default()
        }
    }

    /// Adds a summary line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Marks that work is left.
    pub fn with_more_work(mut self, more_work: bool) -> Self {
        self.more_work = more_work;
        self
    }
}

/// Why a workflow could not be created or a run failed. The message reaches `/admin/workflows` and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowError {
    message: String,
}

impl WorkflowError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        WorkflowError {
            message: message.into(),
        }
    }

    /// The message, as `/admin/workflows` shows it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WorkflowError {}

impl From<crate::host::HostError> for WorkflowError {
    fn from(err: crate::host::HostError) -> Self {
        WorkflowError::new(err.to_string())
    }
}

impl From<serde_json::Error> for WorkflowError {
    fn from(err: serde_json::Error) -> Self {
        WorkflowError::new(format!("invalid settings: {err}"))
    }
}
