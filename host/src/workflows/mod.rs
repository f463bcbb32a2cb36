//! The technical workflows the configuration declares, each driven by its own [`runner::WorkflowRunner`].

pub mod runner;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use runner::{RunnerContext, RunnerSettings, WorkflowRunner};
pub use status::{WorkflowState, WorkflowView};

use crate::shutdown::ShutdownController;
use mc_plugin_api::Queue;

/// The workflow of the real-time queue, by its contract name.
pub const REALTIME_WORKFLOW: &str = "rtEventsProcessing";
/// The workflow of the batch queue, by its contract name.
pub const BATCH_WORKFLOW: &str = "batchEventsProcessing";
/// The workflow that copies final delivery outcomes onto events, by its contract name.
pub const STATUS_WORKFLOW: &str = "updateEventsStatus";
/// The workflow that delivers webhook notifications, woken whenever the store writes some.
pub const WEBHOOK_WORKFLOW: &str = "webhookDelivery";

/// All configured workflows, by name.
pub struct WorkflowSet {
    runners: BTreeMap<String, Arc<WorkflowRunner>>,
}

impl WorkflowSet {
    pub fn new(settings: impl IntoIterator<Item = RunnerSettings>) -> Self {
        WorkflowSet {
            runners: settings
                .into_iter()
                .map(|s| (s.name.clone(), Arc::new(WorkflowRunner::new(s))))
                .collect(),
        }
    }

    /// Starts every runner's loop on the runtime; each holds a shutdown subscription until it returns.
    pub fn spawn_all(&self, context: &RunnerContext, shutdown: &ShutdownController) {
        for runner in self.runners.values() {
            let runner = Arc::clone(runner);
            let context = context.clone();
            let shutdown = shutdown.subscribe();
            tokio::spawn(runner.run_loop(context, shutdown));
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<WorkflowRunner>> {
        self.runners.get(name)
    }

    /// Wakes the workflow that processes `queue` (SPEC: `rtEventsProcessing` for real-time events,
    /// `batchEventsProcessing` for batch events), so new events need not wait for its next tick.
    pub fn wake_for_queue(&self, queue: Queue) {
        self.wake(match queue {
            Queue::Realtime => REALTIME_WORKFLOW,
            Queue::Batch => BATCH_WORKFLOW,
        });
    }

    /// Wakes a workflow by name (unknown names are ignored: the workflow may simply not be configured).
    pub fn wake(&self, name: &str) {
        if let Some(runner) = self.runners.get(name) {
            runner.wake();
        }
    }

    pub fn list(&self) -> Vec<WorkflowView> {
        self.runners.values().map(|r| r.status.view()).collect()
    }
}
