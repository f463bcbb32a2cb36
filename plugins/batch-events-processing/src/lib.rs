//! `batchEventsProcessing`: the batch event queue's workflow, never ahead of real-time work.
//!
//! It will claim pending batch events in large batches, link them to templates and hand them to delivery.
//! For now it measures the batch backlog through the host's store, which shows that it is loaded,
//! scheduled and connected.

use mc_plugin_api::services::{CountEvents, Queue};
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError, declare_plugin};

pub struct BatchEventsProcessing;

impl Workflow for BatchEventsProcessing {
    fn create(_settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        Ok(BatchEventsProcessing)
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let request = CountEvents {
            queue: Some(Queue::Batch),
            status: Some("pending".to_owned()),
        };
        let pending = ctx.host.request(&request).await?.count;
        Ok(RunReport::processed(0).with_detail(format!("{pending} pending batch events")))
    }
}

declare_plugin! {
    name: "batchEventsProcessing",
    version: env!("CARGO_PKG_VERSION"),
    description: "Processes the batch event queue in large batches",
    workflow: BatchEventsProcessing,
}
