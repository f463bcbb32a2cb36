//! Webhook services (`webhooks.claim`, `webhooks.send`, `webhooks.record`): the `webhookDelivery`
//! workflow decides what an answer means; the host owns the HTTP client, the body, the signature, the
//! destination check, the retry schedule and the state.

use std::time::Duration;

use chrono::Utc;
use mc_plugin_api::services::{
    ClaimWebhooks, ClaimedWebhooks, RecordWebhookAttempts, RecordedWebhookAttempt,
    RecordedWebhookAttempts, SendWebhooks, SentWebhooks, WebhookAttemptResult,
    WebhookNotificationRecord,
};
use mc_plugin_api::{NotificationStatus, WebhookVerdict};
use serde_json::json;

use super::{Caller, HostServices, ServiceError, stored};
use crate::db::entities::event::public_id;
use crate::store::{NewAttempt, NextState};
use crate::webhooks::WebhookSender;
use crate::webhooks::sender::KEPT_BYTES;

/// Most notifications one claim, send or record takes.
const MAX_CLAIM: u32 = 10_000;
/// Longest lease a run may ask for.
const MAX_LEASE_SECONDS: u32 = 3600;
/// Longest `Retry-After` honoured: a receiver cannot park a notification for longer than a day.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What the host needs to deliver webhooks: the sender and `[webhooks] retry_schedule`.
pub struct WebhookDelivery {
    pub sender: WebhookSender,
    pub retry_schedule: Vec<Duration>,
}

/// The `webhook-id` of notification `id` (also its id in the API).
pub fn webhook_id(id: i64) -> String {
    format!("msg_{id}")
}

/// The notification id in a `webhook-id` (`msg_<n>`, or a bare `<n>`).
pub fn parse_webhook_id(text: &str) -> Option<i64> {
    text.strip_prefix("msg_")
        .unwrap_or(text)
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
}

/// What follows an attempt, from the workflow's verdict, the attempts made (this one included) and the
/// schedule.
pub fn next_state(
    verdict: WebhookVerdict,
    attempts_made: u32,
    retry_after: Option<Duration>,
    http_status: Option<u16>,
    schedule: &[Duration],
    now: chrono::DateTime<Utc>,
) -> NextState {
    match verdict {
        WebhookVerdict::Delivered => NextState::Delivered,
        WebhookVerdict::Fail => NextState::Failed {
            disable_endpoint: None,
        },
        WebhookVerdict::Disable => NextState::Failed {
            disable_endpoint: Some(match http_status {
                Some(status) => format!(
                    "the endpoint answered {status} at {}; enable it again with PUT",
                    now.to_rfc3339()
                ),
                None => format!("disabled by webhookDelivery at {}", now.to_rfc3339()),
            }),
        },
        WebhookVerdict::Retry => {
            let Some(wait) = schedule.get(attempts_made.saturating_sub(1) as usize) else {
                return NextState::Failed {
                    disable_endpoint: None,
                };
            };
            let wait = retry_after.map_or(*wait, |asked| asked.min(MAX_RETRY_AFTER));
            NextState::Retry(
                now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
            )
        }
    }
}

impl HostServices {
    fn webhooks(&self) -> Result<&WebhookDelivery, ServiceError> {
        self.webhooks.as_deref().ok_or_else(|| {
            ServiceError::BadRequest("this instance does not deliver webhooks".to_owned())
        })
    }

    /// `webhooks.claim`.
    pub(super) async fn claim_webhooks(
        &self,
        caller: Caller<'_>,
        request: ClaimWebhooks,
    ) -> Result<ClaimedWebhooks, ServiceError> {
        self.webhooks()?;
        if request.limit == 0 || request.limit > MAX_CLAIM {
            return Err(ServiceError::BadRequest(format!(
                "limit must be 1 to {MAX_CLAIM}"
            )));
        }
        self.release_abandoned().await;
        let lease =
            Duration::from_secs(u64::from(request.lease_seconds.clamp(1, MAX_LEASE_SECONDS)));
        let claimed = self
            .store
            .claim_webhook_notifications(u64::from(request.limit), caller.claims.claimer(), lease)
            .await?;
        if !claimed.is_empty() {
            caller.claims.note_claimed();
        }
        let instances = self
            .store
            .event_instances(claimed.iter().map(|c| c.notification.event_id))
            .await?;
        let notifications = claimed
            .into_iter()
            .map(|c| {
                Ok(WebhookNotificationRecord {
                    id: c.notification.id,
                    endpoint: c.endpoint.name,
                    event_type: stored(&c.notification.event_type)?,
                    event_id: public_id(
                        instances
                            .get(&c.notification.event_id)
                            .copied()
                            .unwrap_or(0),
                        c.notification.event_id,
                    ),
                    attempts: u32::try_from(c.notification.attempts).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(ClaimedWebhooks { notifications })
    }

    /// `webhooks.send`: the bodies not fixed yet are built from two reads and fixed in one
    /// transaction, then every request goes out at once (the sender caps each endpoint).
    pub(super) async fn send_webhooks(
        &self,
        caller: Caller<'_>,
        request: SendWebhooks,
    ) -> Result<SentWebhooks, ServiceError> {
        let delivery = self.webhooks()?;
        let ids = request.notification_ids;
        if ids.len() > MAX_CLAIM as usize {
            return Err(ServiceError::BadRequest(format!(
                "notificationIds: at most {MAX_CLAIM} per call"
            )));
        }
        let claimed = self
            .store
            .claimed_webhook_notifications(&ids, caller.claims.claimer())
            .await?;
        let unfrozen: Vec<i64> = claimed
            .values()
            .filter(|c| c.notification.body.is_none())
            .map(|c| c.notification.event_id)
            .collect();
        let events = self.store.events_with_deliveries(&unfrozen).await?;
        let fresh: Vec<(i64, String)> = claimed
            .values()
            .filter(|c| c.notification.body.is_none())
            .filter_map(|c| {
                let (event, deliveries) = events.get(&c.notification.event_id)?;
                let body = json!({
                    "type": c.notification.event_type,
                    "timestamp": c.notification.created_at.to_rfc3339(),
                    "data": crate::api::view::event(event, Some(deliveries)),
                });
                Some((c.notification.id, body.to_string()))
            })
            .collect();
        let frozen = self.store.freeze_webhook_bodies(&fresh).await?;
        let (claimed, frozen) = (&claimed, &frozen);
        let results = futures::future::join_all(ids.iter().map(|id| async move {
            let not_tried = |error: String| WebhookAttemptResult {
                error: Some(error),
                ..Default::default()
            };
            let Some(claimed) = claimed.get(id) else {
                return not_tried(format!("notification {id} is not claimed by this run"));
            };
            let Some(body) = claimed
                .notification
                .body
                .as_ref()
                .or_else(|| frozen.get(id))
            else {
                return not_tried(format!("the event of notification {id} is gone"));
            };
            let key = match crate::webhooks::secret::key_bytes(&claimed.endpoint.secret) {
                Ok(key) => key,
                Err(why) => return not_tried(format!("the endpoint's secret is unusable: {why}")),
            };
            let outcome = delivery
                .sender
                .send(
                    claimed.endpoint.id,
                    &claimed.endpoint.url,
                    &webhook_id(*id),
                    &key,
                    body,
                )
                .await;
            WebhookAttemptResult {
                http_status: outcome.http_status,
                duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
                error: outcome.error,
                retry_after_seconds: outcome.retry_after.map(|d| d.as_secs()),
                response: outcome.response,
            }
        }))
        .await;
        Ok(SentWebhooks { results })
    }

    /// `webhooks.record`: every attempt of the call in one transaction.
    pub(super) async fn record_webhooks(
        &self,
        caller: Caller<'_>,
        request: RecordWebhookAttempts,
    ) -> Result<RecordedWebhookAttempts, ServiceError> {
        let delivery = self.webhooks()?;
        if request.attempts.len() > MAX_CLAIM as usize {
            return Err(ServiceError::BadRequest(format!(
                "attempts: at most {MAX_CLAIM} per call"
            )));
        }
        let now = Utc::now();
        let rows: Vec<(i64, NewAttempt)> = request
            .attempts
            .iter()
            .map(|a| {
                let result = &a.result;
                let attempt = NewAttempt {
                    at: now,
                    http_status: result.http_status,
                    duration_ms: result.duration_ms,
                    error: result.error.clone(),
                    response: result.response.as_deref().map(|r| clip(r, KEPT_BYTES)),
                };
                (a.notification_id, attempt)
            })
            .collect();
        // The schedule's step comes from the attempts the held row counts, read in the recording
        // transaction itself.
        let settled = self
            .store
            .record_webhook_attempts(caller.claims.claimer(), &rows, |index, made| {
                let asked = &request.attempts[index];
                next_state(
                    asked.verdict,
                    made,
                    asked.result.retry_after_seconds.map(Duration::from_secs),
                    asked.result.http_status,
                    &delivery.retry_schedule,
                    now,
                )
            })
            .await?;
        let recorded = settled
            .into_iter()
            .zip(&request.attempts)
            .map(|(settled, asked)| match settled {
                None => RecordedWebhookAttempt {
                    recorded: false,
                    status: None,
                    next_attempt_at_millis: None,
                },
                Some(recorded) => {
                    self.metrics.record_webhook_attempt(
                        &recorded.endpoint,
                        asked.result.http_status,
                        Duration::from_millis(asked.result.duration_ms),
                        recorded.final_status.map(NotificationStatus::as_str),
                    );
                    RecordedWebhookAttempt {
                        recorded: true,
                        status: Some(recorded.final_status.unwrap_or(NotificationStatus::Pending)),
                        next_attempt_at_millis: recorded
                            .next_attempt_at
                            .map(|t| t.timestamp_millis()),
                    }
                }
            })
            .collect();
        Ok(RecordedWebhookAttempts { recorded })
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Vec<Duration> {
        vec![Duration::from_secs(5), Duration::from_secs(300)]
    }

    #[test]
    fn retries_follow_the_schedule_then_fail() {
        let now = Utc::now();
        let at = |s: u64| NextState::Retry(now + chrono::Duration::seconds(s as i64));
        assert_eq!(
            next_state(WebhookVerdict::Retry, 1, None, Some(500), &schedule(), now),
            at(5)
        );
        assert_eq!(
            next_state(WebhookVerdict::Retry, 2, None, None, &schedule(), now),
            at(300)
        );
        assert_eq!(
            next_state(WebhookVerdict::Retry, 3, None, Some(500), &schedule(), now),
            NextState::Failed {
                disable_endpoint: None
            }
        );
    }

    #[test]
    fn retry_after_replaces_the_wait_capped_at_a_day() {
        let now = Utc::now();
        assert_eq!(
            next_state(
                WebhookVerdict::Retry,
                1,
                Some(Duration::from_secs(42)),
                Some(429),
                &schedule(),
                now
            ),
            NextState::Retry(now + chrono::Duration::seconds(42))
        );
        assert_eq!(
            next_state(
                WebhookVerdict::Retry,
                1,
                Some(Duration::from_secs(10 * 86_400)),
                Some(503),
                &schedule(),
                now
            ),
            NextState::Retry(now + chrono::Duration::seconds(86_400))
        );
    }

    #[test]
    fn delivered_failed_and_disabled() {
        let now = Utc::now();
        assert_eq!(
            next_state(
                WebhookVerdict::Delivered,
                1,
                None,
                Some(204),
                &schedule(),
                now
            ),
            NextState::Delivered
        );
        match next_state(
            WebhookVerdict::Disable,
            1,
            None,
            Some(410),
            &schedule(),
            now,
        ) {
            NextState::Failed {
                disable_endpoint: Some(reason),
            } => assert!(reason.contains("410"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn webhook_ids_round_trip() {
        assert_eq!(webhook_id(42), "msg_42");
        assert_eq!(parse_webhook_id("msg_42"), Some(42));
        assert_eq!(parse_webhook_id("42"), Some(42));
        assert_eq!(parse_webhook_id("msg_x"), None);
        assert_eq!(parse_webhook_id("0"), None);
        assert_eq!(clip("ééé", 3), "é");
    }
}
