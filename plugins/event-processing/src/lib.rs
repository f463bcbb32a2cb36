//! What `rtEventsProcessing` and `batchEventsProcessing` do to the events of their queue: claim the due
//! ones, expire those past their `expiration`, mark those without a published template
//! `not_taken_into_account`, and hand the rest, linked to their template version, to delivery.
//!
//! Everything goes through the host's services, so claims, links and hand-overs live in the database:
//! a crash or a hot reload in the middle of a run loses nothing and repeats nothing.

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use std::collections::HashMap;

use mc_plugin_api::services::{
    ClaimEvents, DeliveryRequest, EnqueueDeliveries, EventChange, FindPublishedTemplate,
    TemplateRecord, UpdateEvents,
};
use mc_plugin_api::{Channel, EventStatus, Queue, RunContext, RunReport, WorkflowError};
use serde::Deserialize;

/// The `[workflows.<name>]` keys this logic reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ProcessingSettings {
    /// Events claimed per run.
    pub batch_size: u32,
    /// How long a claim holds if this instance dies mid-run.
    pub lease_seconds: u32,
}

impl Default for ProcessingSettings {
    fn default() -> Self {
        ProcessingSettings {
            batch_size: 100,
            lease_seconds: 300,
        }
    }
}

impl ProcessingSettings {
    /// Reads the settings the host passes to `create`, refusing nonsense with the key's name.
    pub fn from_settings(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        let parsed: ProcessingSettings = mc_plugin_api::settings(settings)?;
        if parsed.batch_size == 0 {
            return Err(WorkflowError::setting("batch_size", "must be at least 1"));
        }
        if parsed.lease_seconds == 0 {
            return Err(WorkflowError::setting(
                "lease_seconds",
                "must be at least 1",
            ));
        }
        Ok(parsed)
    }
}

/// One round over `queue`. Reports the events handled and whether a full batch suggests more.
pub async fn process_queue(
    ctx: &RunContext,
    queue: Queue,
    settings: &ProcessingSettings,
) -> Result<RunReport, WorkflowError> {
    let claimed = ctx
        .host
        .request(&ClaimEvents {
            queue,
            limit: settings.batch_size,
            lease_seconds: settings.lease_seconds,
        })
        .await?
        .events;
    if claimed.is_empty() {
        return Ok(RunReport::processed(0));
    }
    let now = ctx.host.now_unix_millis();
    let mut templates: HashMap<(String, Channel), Option<TemplateRecord>> = HashMap::new();
    let mut changes = Vec::new();
    let mut deliveries = Vec::new();
    let (mut expired, mut not_taken) = (0u64, 0u64);
    for event in &claimed {
        if event.expires_at_millis.is_some_and(|at| at <= now) {
            expired += 1;
            changes.push(change(event.id, EventStatus::Expired));
            continue;
        }
        let key = (event.event_type.clone(), event.channel);
        if !templates.contains_key(&key) {
            let found = ctx
                .host
                .request(&FindPublishedTemplate {
                    event_type: key.0.clone(),
                    channel: key.1,
                })
                .await?
                .template;
            templates.insert(key.clone(), found);
        }
        match &templates[&key] {
            Some(template) => deliveries.push(DeliveryRequest {
                event_id: event.id,
                template_name: template.name.clone(),
                template_version: template.version,
            }),
            None => {
                not_taken += 1;
                changes.push(change(event.id, EventStatus::NotTakenIntoAccount));
            }
        }
    }
    if !changes.is_empty() {
        ctx.host.request(&UpdateEvents { changes }).await?;
    }
    let handed = deliveries.len();
    if !deliveries.is_empty() {
        ctx.host.request(&EnqueueDeliveries { deliveries }).await?;
    }
    Ok(RunReport::processed(claimed.len() as u64)
        .with_more_work(claimed.len() as u32 == settings.batch_size)
        .with_detail(format!(
            "{handed} handed to delivery, {not_taken} not taken into account, {expired} expired"
        )))
}

fn change(id: i64, status: EventStatus) -> EventChange {
    EventChange {
        id,
        status,
        template_name: None,
        template_version: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_default_and_refuse_zero_and_bad_types_by_key() {
        let parsed = ProcessingSettings::from_settings(&json!({"enabled": true})).unwrap();
        assert_eq!((parsed.batch_size, parsed.lease_seconds), (100, 300));
        let parsed = ProcessingSettings::from_settings(&json!({"batch_size": 7})).unwrap();
        assert_eq!(parsed.batch_size, 7);
        for (settings, key) in [
            (json!({"batch_size": 0}), "batch_size"),
            (json!({"lease_seconds": 0}), "lease_seconds"),
            (json!({"batch_size": -1}), "batch_size"),
            (json!({"lease_seconds": "5m"}), "lease_seconds"),
        ] {
            let err = ProcessingSettings::from_settings(&settings).unwrap_err();
            assert!(
                err.message()
                    .starts_with(&format!("invalid setting `{key}`: ")),
                "{settings}: {err}"
            );
        }
    }
}
