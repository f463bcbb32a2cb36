//! `updateEventsStatus`: copies final delivery-log statuses (sent, ignored, delivery failed) onto events.
//!
//! Until delivery logs exist it reports how many events wait in `pending_delivery` for a final status,
//! read through the host's store.

use mc_plugin_api::services::CountEvents;
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError, declare_plugin};

pub struct UpdateEventsStatus;

impl Workflow for UpdateEventsStatus {
    fn create(_settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        Ok(UpdateEventsStatus)
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let awaiting = ctx
            .host
            .request(&CountEvents {
                queue: None,
                status: Some("pending_delivery".to_owned()),
            })
            .await?
            .count;
        Ok(RunReport::processed(0)
            .with_detail(format!("{awaiting} events awaiting a delivery status")))
    }
}

declare_plugin! {
    name: "updateEventsStatus",
    version: env!("CARGO_PKG_VERSION"),
    description: "Copies final delivery-log statuses onto events",
    workflow: UpdateEventsStatus,
}
