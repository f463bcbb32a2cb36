//! `rtEventsProcessing`: the real-time queue's workflow. Woken by ingestion, so an event is linked and
//! handed to delivery within milliseconds of its `201`, and on its interval for scheduled events.

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use event_processing::{ProcessingSettings, process_queue};
use mc_plugin_api::{Queue, RunContext, RunReport, Workflow, WorkflowError, declare_plugin};

pub struct RtEventsProcessing {
    settings: ProcessingSettings,
}

impl Workflow for RtEventsProcessing {
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        Ok(RtEventsProcessing {
            settings: ProcessingSettings::from_settings(settings)?,
        })
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        process_queue(&ctx, Queue::Realtime, &self.settings).await
    }
}

declare_plugin! {
    name: "rtEventsProcessing",
    version: env!("CARGO_PKG_VERSION"),
    description: "Processes the real-time event queue",
    workflow: RtEventsProcessing,
}
