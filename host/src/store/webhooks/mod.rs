//! Webhooks (SPEC "Webhooks"): endpoints (`endpoints.rs`), the outbox of notifications and their
//! attempts (`outbox.rs`), and the history and replay the API reads (`history.rs`).

mod endpoints;
mod history;
mod outbox;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use mc_plugin_api::WebhookEventType;

use crate::db::entities::{webhook_attempt, webhook_endpoint, webhook_notification};

pub use history::{HistoryEntry, HistoryFilter};
pub use outbox::{Finished, NextState};

/// What `PUT /api/v1/webhooks/{name}` asks for, checked by the API.
#[derive(Clone, Debug)]
pub struct EndpointChange {
    pub url: String,
    /// `None`: every type (on creation) or unchanged (on update).
    pub events: Option<Vec<WebhookEventType>>,
    /// `None`: enabled (on creation) or unchanged (on update).
    pub enabled: Option<bool>,
    /// `None` keeps the stored one; a creation without one gets the generated `new_secret`.
    pub secret: Option<String>,
}

/// What [`crate::store::Store::put_webhook_endpoint`] did.
#[derive(Clone, Debug)]
pub enum EndpointPut {
    Created(webhook_endpoint::Model),
    Updated(webhook_endpoint::Model),
}

/// A claimed notification with what sending it needs.
#[derive(Clone, Debug)]
pub struct ClaimedNotification {
    pub notification: webhook_notification::Model,
    pub endpoint: webhook_endpoint::Model,
}

/// What [`crate::store::Store::record_webhook_attempt`] stored.
#[derive(Clone, Debug)]
pub struct RecordedAttempt {
    /// The endpoint's name, for the metrics.
    pub endpoint: String,
    /// Whether the notification is now final (`delivered` or `failed`) and which.
    pub final_status: Option<mc_plugin_api::NotificationStatus>,
    /// When the next attempt is due, when one is.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Pending notifications of one endpoint, for the gauges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingByEndpoint {
    pub endpoint: String,
    pub pending: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// An attempt to store: what the host's sender saw.
#[derive(Clone, Debug, Default)]
pub struct NewAttempt {
    pub at: DateTime<Utc>,
    pub http_status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub response: Option<String>,
}

impl NewAttempt {
    fn row(&self, notification_id: i64) -> webhook_attempt::ActiveModel {
        use sea_orm::ActiveValue::Set;
        webhook_attempt::ActiveModel {
            notification_id: Set(notification_id),
            attempted_at: Set(self.at),
            http_status: Set(self.http_status.map(i32::from)),
            duration_ms: Set(Some(i64::try_from(self.duration_ms).unwrap_or(i64::MAX))),
            error: Set(self.error.clone()),
            response: Set(self.response.clone()),
            ..Default::default()
        }
    }
}

/// The stored form of a subscription (`,a,b,`; see the migration).
pub fn encode_events(types: &[WebhookEventType]) -> String {
    let mut sorted: Vec<WebhookEventType> = types.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut text = String::from(",");
    for t in sorted {
        text.push_str(t.as_str());
        text.push(',');
    }
    text
}

/// The types of a stored subscription (names this version does not know are skipped).
pub fn decode_events(text: &str) -> Vec<WebhookEventType> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .filter_map(|name| name.parse().ok())
        .collect()
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn subscriptions_round_trip_sorted_without_duplicates() {
        let types = [
            WebhookEventType::MessageBounced,
            WebhookEventType::EventSent,
            WebhookEventType::EventSent,
        ];
        let text = encode_events(&types);
        assert_eq!(text, ",event.sent,message.bounced,");
        assert_eq!(
            decode_events(&text),
            vec![
                WebhookEventType::EventSent,
                WebhookEventType::MessageBounced
            ]
        );
        assert_eq!(
            decode_events(&encode_events(&WebhookEventType::ALL)).len(),
            7
        );
    }
}
