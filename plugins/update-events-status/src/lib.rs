//! `updateEventsStatus`: copies final delivery-log outcomes onto their events: an entry `sent` makes the
//! event `sent`, `ignored` makes it `ignored`, `failed` (final) makes it `delivery_failed`.

use mc_plugin_api::services::{ApplyDeliveryOutcomes, DeliveryOutcome, ListFinalDeliveries};
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError, declare_plugin};

pub struct UpdateEventsStatus {
    batch_size: u32,
}

impl Workflow for UpdateEventsStatus {
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        let batch_size = match settings.get("batch_size") {
            None | Some(serde_json::Value::Null) => 500,
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| WorkflowError::new("batch_size must be a positive integer"))?,
        };
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
                event_status: event_status(&entry.status).to_owned(),
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

/// The event status a final delivery entry means.
fn event_status(delivery_status: &str) -> &'static str {
    match delivery_status {
        "sent" => "sent",
        "ignored" => "ignored",
        _ => "delivery_failed",
    }
}

declare_plugin! {
    name: "updateEventsStatus",
    version: env!("CARGO_PKG_VERSION"),
    description: "Copies final delivery-log statuses onto events",
    workflow: UpdateEventsStatus,
}
