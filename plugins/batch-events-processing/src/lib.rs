//! `batchEventsProcessing`: the batch queue's workflow, in large batches and never ahead of real-time
//! work: while the real-time backlog is above `realtime_backlog_limit` it yields, and the delivery
//! engine sends real-time messages before batch ones.

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use event_processing::{ProcessingSettings, process_queue};
use mc_plugin_api::services::CountEvents;
use mc_plugin_api::{
    EventStatus, Queue, RunContext, RunReport, Workflow, WorkflowError, declare_plugin,
};
use serde::Deserialize;

/// Real-time events pending above which a batch run yields.
const DEFAULT_REALTIME_BACKLOG_LIMIT: u64 = 1000;

/// The key this workflow reads beside [`ProcessingSettings`]'s.
#[derive(Deserialize)]
struct BacklogSettings {
    /// `null` or absent: the default.
    #[serde(default)]
    realtime_backlog_limit: Option<u64>,
}

pub struct BatchEventsProcessing {
    settings: ProcessingSettings,
    realtime_backlog_limit: u64,
}

impl Workflow for BatchEventsProcessing {
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        let backlog: BacklogSettings = mc_plugin_api::settings(settings)?;
        let realtime_backlog_limit = backlog
            .realtime_backlog_limit
            .unwrap_or(DEFAULT_REALTIME_BACKLOG_LIMIT);
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
                status: Some(EventStatus::Pending),
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
