//! `batchEventsProcessing`: the batch queue's workflow, in large batches and never ahead of real-time
//! work: while the real-time backlog is above `realtime_backlog_limit` it yields, and the delivery
//! engine sends real-time messages before batch ones.

use event_processing::{ProcessingSettings, process_queue};
use mc_plugin_api::services::{CountEvents, Queue};
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError, declare_plugin};

pub struct BatchEventsProcessing {
    settings: ProcessingSettings,
    realtime_backlog_limit: u64,
}

impl Workflow for BatchEventsProcessing {
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        let realtime_backlog_limit = match settings.get("realtime_backlog_limit") {
            None | Some(serde_json::Value::Null) => 1000,
            Some(value) => value.as_u64().ok_or_else(|| {
                WorkflowError::new("realtime_backlog_limit must be a non-negative integer")
            })?,
        };
        Ok(BatchEventsProcessing {
            settings: ProcessingSettings::from_settings(settings)?,
            realtime_backlog_limit,
        })
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let backlog = ctx
            .host
            .request(&CountEvents {
                queue: Some(Queue::Realtime),
                status: Some("pending".to_owned()),
            })
            .await?
            .count;
        if backlog > self.realtime_backlog_limit {
            return Ok(RunReport::processed(0)
                .with_detail(format!("yielding to {backlog} pending real-time events")));
        }
        process_queue(&ctx, Queue::Batch, &self.settings).await
    }
}

declare_plugin! {
    name: "batchEventsProcessing",
    version: env!("CARGO_PKG_VERSION"),
    description: "Processes the batch event queue in large batches, after real-time work",
    workflow: BatchEventsProcessing,
}
