//! `webhookDelivery`: delivers the webhooks outbox. Each run claims a batch of due notifications, has
//! the host send each endpoint's share in one call, all endpoints at the same time (the host caps
//! requests in flight per endpoint), decides what each answer means, and has the host record each
//! endpoint's attempts in one call as soon as they are in, so one slow receiver holds back only its own.
//!
//! The policy is here, where a third party would write its own: a 2xx is delivered; `410 Gone` disables
//! the endpoint; `429` and `503` are retried after their `Retry-After`; anything else (another status,
//! no answer) is retried on the host's `[webhooks] retry_schedule`, which turns it `failed` once
//! exhausted. The bookkeeping (times, schedule, attempts, disabling) is the host's.

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use mc_plugin_api::services::{
    ClaimWebhooks, RecordWebhookAttempts, SendWebhooks, WebhookAttempt, WebhookAttemptResult,
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

/// Sends one endpoint's notifications and records what came of them: two host calls, whatever their
/// number. Returns each one's status now (`None`: not recorded, the claim was lost).
async fn deliver(
    host: &Host,
    notifications: &[&WebhookNotificationRecord],
) -> Result<Vec<Option<NotificationStatus>>, WorkflowError> {
    let notification_ids: Vec<i64> = notifications.iter().map(|n| n.id).collect();
    let results = match host
        .request(&SendWebhooks {
            notification_ids: notification_ids.clone(),
        })
        .await
    {
        Ok(sent) if sent.results.len() == notification_ids.len() => {
            sent.results.into_iter().map(honoured).collect()
        }
        Ok(sent) => {
            return Err(WorkflowError::new(format!(
                "webhooks.send answered {} results for {} notifications",
                sent.results.len(),
                notification_ids.len()
            )));
        }
        // The host could not even try (the database is down): recorded as attempts without an
        // answer, so they are retried on the schedule.
        Err(e) => vec![
            WebhookAttemptResult {
                error: Some(e.to_string()),
                ..Default::default()
            };
            notification_ids.len()
        ],
    };
    let attempts = notification_ids
        .into_iter()
        .zip(results)
        .map(|(notification_id, result)| WebhookAttempt {
            notification_id,
            verdict: verdict(&result),
            result,
        })
        .collect();
    let recorded = host.request(&RecordWebhookAttempts { attempts }).await?;
    Ok(recorded
        .recorded
        .into_iter()
        .map(|r| {
            r.recorded
                .then(|| r.status.unwrap_or(NotificationStatus::Pending))
        })
        .collect())
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
        let mut by_endpoint: BTreeMap<&str, Vec<&WebhookNotificationRecord>> = BTreeMap::new();
        for notification in &claimed {
            by_endpoint
                .entry(notification.endpoint.as_str())
                .or_default()
                .push(notification);
        }
        let outcomes = futures::future::join_all(
            by_endpoint
                .values()
                .map(|group| async move { (group.len() as u64, deliver(&ctx.host, group).await) }),
        )
        .await;
        let (mut delivered, mut failed, mut pending, mut errors) = (0u64, 0u64, 0u64, 0u64);
        let mut first_error = None;
        for (count, outcome) in outcomes {
            match outcome {
                Ok(statuses) => {
                    for status in statuses {
                        match status {
                            Some(NotificationStatus::Delivered) => delivered += 1,
                            Some(NotificationStatus::Failed) => failed += 1,
                            Some(NotificationStatus::Pending) => pending += 1,
                            None => errors += 1,
                        }
                    }
                }
                Err(e) => {
                    errors += count;
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
