//! `webhookDelivery`: delivers the webhooks outbox. Each run claims a batch of due notifications, has
//! the host send them all at once (the host caps requests in flight per endpoint, so one slow receiver
//! holds back only its own), decides what each answer means, and has the host record it.
//!
//! The policy is here, where a third party would write its own: a 2xx is delivered; `410 Gone` disables
//! the endpoint; `429` and `503` are retried after their `Retry-After`; anything else (another status,
//! no answer) is retried on the host's `[webhooks] retry_schedule`, which turns it `failed` once
//! exhausted. The bookkeeping (times, schedule, attempts, disabling) is the host's.

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use mc_plugin_api::services::{
    ClaimWebhooks, RecordWebhookAttempt, SendWebhook, WebhookAttemptResult,
    WebhookNotificationRecord,
};
use mc_plugin_api::{
    Host, NotificationStatus, RunContext, RunReport, WebhookVerdict, Workflow, WorkflowError,
    declare_plugin,
};
use serde::Deserialize;

/// Notifications per run when `batch_size` is absent or `null`.
const DEFAULT_BATCH_SIZE: u32 = 100;
/// How long a run's claim holds if it dies, when `lease_seconds` is absent: past the run's timeout, so
/// a run still sending never loses its claims to the next one.
const DEFAULT_LEASE_SECONDS: u32 = 120;

/// The `[workflows.webhookDelivery]` keys this workflow reads.
#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    batch_size: Option<u32>,
    #[serde(default)]
    lease_seconds: Option<u32>,
}

pub struct WebhookDelivery {
    batch_size: u32,
    lease_seconds: u32,
}

/// What an attempt's answer means.
pub fn verdict(result: &WebhookAttemptResult) -> WebhookVerdict {
    match result.http_status {
        Some(200..=299) => WebhookVerdict::Delivered,
        Some(410) => WebhookVerdict::Disable,
        _ => WebhookVerdict::Retry,
    }
}

/// Only `429` and `503` may set the wait; any other answer's `Retry-After` is ignored.
fn honoured(mut result: WebhookAttemptResult) -> WebhookAttemptResult {
    if !matches!(result.http_status, Some(429 | 503)) {
        result.retry_after_seconds = None;
    }
    result
}

/// Sends one notification and records what came of it.
async fn deliver(
    host: &Host,
    notification: &WebhookNotificationRecord,
) -> Result<Option<NotificationStatus>, WorkflowError> {
    let result = match host
        .request(&SendWebhook {
            notification_id: notification.id,
        })
        .await
    {
        Ok(result) => honoured(result),
        // The host could not even try (the claim was lost, the event is gone, the database is down):
        // recorded as an attempt without an answer, so it is retried on the schedule.
        Err(e) => WebhookAttemptResult {
            error: Some(e.to_string()),
            ..Default::default()
        },
    };
    let verdict = verdict(&result);
    let recorded = host
        .request(&RecordWebhookAttempt {
            notification_id: notification.id,
            result,
            verdict,
        })
        .await?;
    Ok(recorded.status)
}

impl Workflow for WebhookDelivery {
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        let parsed: Settings = mc_plugin_api::settings(settings)?;
        let batch_size = parsed.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            return Err(WorkflowError::setting("batch_size", "must be at least 1"));
        }
        let lease_seconds = parsed.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
        if lease_seconds == 0 {
            return Err(WorkflowError::setting(
                "lease_seconds",
                "must be at least 1",
            ));
        }
        Ok(WebhookDelivery {
            batch_size,
            lease_seconds,
        })
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let claimed = ctx
            .host
            .request(&ClaimWebhooks {
                limit: self.batch_size,
                lease_seconds: self.lease_seconds,
            })
            .await?
            .notifications;
        if claimed.is_empty() {
            return Ok(RunReport::processed(0));
        }
        let outcomes =
            futures::future::join_all(claimed.iter().map(|n| deliver(&ctx.host, n))).await;
        let (mut delivered, mut failed, mut pending, mut errors) = (0u64, 0u64, 0u64, 0u64);
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(Some(NotificationStatus::Delivered)) => delivered += 1,
                Ok(Some(NotificationStatus::Failed)) => failed += 1,
                Ok(_) => pending += 1,
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        // Nothing recorded at all: the host is failing; the run fails so its claims are released.
        if errors == claimed.len() as u64
            && let Some(e) = first_error
        {
            return Err(e);
        }
        Ok(RunReport::processed(claimed.len() as u64)
            .with_more_work(claimed.len() as u32 == self.batch_size)
            .with_detail(format!(
                "{delivered} delivered, {pending} to retry, {failed} failed, {errors} not recorded"
            )))
    }
}

declare_plugin! {
    name: "webhookDelivery",
    version: env!("CARGO_PKG_VERSION"),
    description: "Delivers webhook notifications (Standard Webhooks) through the host",
    workflow: WebhookDelivery,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: Option<u16>, retry_after: Option<u64>) -> WebhookAttemptResult {
        WebhookAttemptResult {
            http_status: status,
            retry_after_seconds: retry_after,
            ..Default::default()
        }
    }

    #[test]
    fn the_policy() {
        assert_eq!(verdict(&answer(Some(200), None)), WebhookVerdict::Delivered);
        assert_eq!(verdict(&answer(Some(204), None)), WebhookVerdict::Delivered);
        assert_eq!(verdict(&answer(Some(410), None)), WebhookVerdict::Disable);
        assert_eq!(verdict(&answer(Some(500), None)), WebhookVerdict::Retry);
        assert_eq!(verdict(&answer(Some(301), None)), WebhookVerdict::Retry);
        assert_eq!(verdict(&answer(None, None)), WebhookVerdict::Retry);
        assert_eq!(
            honoured(answer(Some(429), Some(7))).retry_after_seconds,
            Some(7)
        );
        assert_eq!(
            honoured(answer(Some(503), Some(7))).retry_after_seconds,
            Some(7)
        );
        assert_eq!(
            honoured(answer(Some(500), Some(7))).retry_after_seconds,
            None
        );
    }
}
