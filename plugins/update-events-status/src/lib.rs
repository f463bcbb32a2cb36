//! `updateEventsStatus`: copies final delivery-log outcomes onto their events: an entry `sent` makes the
//! event `sent`, `ignored` makes it `ignored`, `failed` (final) makes it `delivery_failed`
//! ([`mc_plugin_api::DeliveryStatus::event_status`]).

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use mc_plugin_api::services::{ApplyDeliveryOutcomes, DeliveryOutcome, ListFinalDeliveries};
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError, declare_plugin};
use serde::Deserialize;

/// Entries copied per run when `batch_size` is absent or `null`.
const DEFAULT_BATCH_SIZE: u32 = 500;

/// The `[workflows.updateEventsStatus]` keys this workflow reads.
#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    batch_size: Option<u32>,
}

pub struct UpdateEventsStatus {
    batch_size: u32,
}

impl Workflow for UpdateEventsStatus {
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        let parsed: Settings = mc_plugin_api::settings(settings)?;
        let batch_size = parsed.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            return Err(WorkflowError::setting("batch_size", "must be at least 1"));
        }
        Ok(UpdateEventsStatus { batch_size })
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let finals = ctx
            .host
            .request(&ListFinalDeliveries {
                limit: self.batch_size,
            })
            .await?
            .deliveries;
        if finals.is_empty() {
            return Ok(RunReport::processed(0));
        }
        let outcomes: Vec<DeliveryOutcome> = finals
            .iter()
            .map(|entry| DeliveryOutcome {
                log_id: entry.log_id,
                event_id: entry.event_id,
                event_status: entry.status.event_status(),
            })
            .collect();
        let applied = ctx
            .host
            .request(&ApplyDeliveryOutcomes { outcomes })
            .await?
            .applied;
        Ok(RunReport::processed(finals.len() as u64)
            .with_more_work(finals.len() as u32 == self.batch_size)
            .with_detail(format!("{applied} event statuses updated")))
    }
}

declare_plugin! {
    name: "updateEventsStatus",
    version: env!("CARGO_PKG_VERSION"),
    description: "Copies final delivery-log statuses onto events",
    workflow: UpdateEventsStatus,
}
