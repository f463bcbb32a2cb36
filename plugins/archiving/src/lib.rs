//! `archiving`: on the control instance, pulls finished events and their delivery logs from each execution
//! instance into the archive.
//!
//! Until the archive API exists it reports the size of its local input, the events with a final status,
//! read through the host's store.

use mc_plugin_api::services::CountEvents;
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError, declare_plugin};

/// The final statuses of the contract: what the archive takes.
const FINAL_STATUSES: [&str; 5] = [
    "sent",
    "ignored",
    "delivery_failed",
    "not_taken_into_account",
    "expired",
];

pub struct Archiving;

impl Workflow for Archiving {
    fn create(_settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        Ok(Archiving)
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let mut finished = 0;
        for status in FINAL_STATUSES {
            if ctx.cancel_requested() {
                break;
            }
            let count = CountEvents {
                queue: None,
                status: Some(status.to_owned()),
            };
            finished += ctx.host.request(&count).await?.count;
        }
        Ok(RunReport::processed(0).with_detail(format!("{finished} finished events to archive")))
    }
}

declare_plugin! {
    name: "archiving",
    version: env!("CARGO_PKG_VERSION"),
    description: "Archives finished events of the execution instances on the control instance",
    workflow: Archiving,
}
