//! `rtEventsProcessing`: the real-time event queue's workflow.
//!
//! It will claim pending real-time events, link each to the newest published template for its
//! (type, channel) and hand it to delivery. Until the event store and delivery exist it does the part that
//! already has a host service: it measures the real-time backlog, so its runs show that it is loaded,
//! scheduled and connected to the host's store.

use mc_plugin_api::services::{CountEvents, Queue};
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError, declare_plugin};

pub struct RtEventsProcessing;

impl Workflow for RtEventsProcessing {
    fn create(_settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        Ok(RtEventsProcessing)
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let backlog = ctx
            .host
            .request(&CountEvents {
                queue: Some(Queue::Realtime),
                status: Some("pending".to_owned()),
            })
            .await?;
        Ok(RunReport::processed(0)
            .with_detail(format!("{} pending real-time events", backlog.count)))
    }
}

declare_plugin! {
    name: "rtEventsProcessing",
    version: env!("CARGO_PKG_VERSION"),
    description: "Processes the real-time event queue",
    workflow: RtEventsProcessing,
}
