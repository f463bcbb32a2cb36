//! The archive feed's wire format: how an execution instance writes a finished event in
//! `GET /api/v1/archive/events` (the same object as `GET /api/v1/events/{id}`, deliveries included) and
//! how the control instance reads it back into an archive row.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use serde::Deserialize;
use serde_json::Value;

use crate::api::view;
use crate::db::entities::archive_event;
use mc_plugin_api::{DeliveryStatus, EventStatus};

/// One event of a feed page, as the control instance reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    /// The public id, as a decimal string.
    pub id: String,
    pub queue: String,
    pub status: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub channel: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub ctx: Value,
    pub created_at: DateTime<Utc>,
    /// Absent from the feed of an execution instance older than the reports.
    #[serde(default)]
    pub linked_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub template: Option<FeedTemplate>,
    #[serde(default)]
    pub deliveries: Vec<Value>,
}

/// The template version an event was linked to.
#[derive(Clone, Debug, Deserialize)]
pub struct FeedTemplate {
    pub name: String,
    pub version: i32,
}

impl FeedEvent {
    /// Reads one element of a page's `events`; the message says what is wrong with it.
    pub fn parse(value: Value) -> Result<FeedEvent, String> {
        let event: FeedEvent = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if view::parse_id(&event.id).is_none() {
            return Err(format!("`id` `{}` is not a decimal event id", event.id));
        }
        if !EventStatus::from_name(&event.status).is_some_and(EventStatus::is_final) {
            return Err(format!(
                "event {} has status `{}`, which is not final",
                event.id, event.status
            ));
        }
        Ok(event)
    }

    /// The public id (checked by [`FeedEvent::parse`]).
    pub fn public_id(&self) -> i64 {
        view::parse_id(&self.id).unwrap_or_default()
    }

    /// When the relay / gateway accepted the event: the `acceptedAt` of its final `sent` delivery
    /// (`None` for an event not sent, or from an execution instance older than the reports).
    pub fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.deliveries
            .iter()
            .filter(|d| d["final"] == Value::Bool(true))
            .filter(|d| d["status"].as_str() == Some(DeliveryStatus::Sent.as_str()))
            .filter_map(|d| d["acceptedAt"].as_str())
            .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
    }

    /// The archive row for this event of execution instance `instance`.
    pub fn into_archive_row(
        self,
        instance: &str,
        archived_at: DateTime<Utc>,
    ) -> archive_event::ActiveModel {
        let finished = self.finished_at.unwrap_or(archived_at);
        let accepted_at = self.accepted_at();
        archive_event::ActiveModel {
            instance_name: Set(instance.to_owned()),
            event_id: Set(self.public_id()),
            queue: Set(self.queue),
            status: Set(self.status),
            event_type: Set(self.event_type),
            channel: Set(self.channel),
            email: Set(self.email),
            mobile_phone: Set(self.mobile_phone),
            external_id: Set(self.external_id),
            language: Set(self.language),
            ctx: Set(self.ctx),
            template_name: Set(self.template.as_ref().map(|t| t.name.clone())),
            template_version: Set(self.template.map(|t| t.version)),
            delivery_logs: Set(Value::Array(self.deliveries)),
            created_at: Set(self.created_at),
            linked_at: Set(self.linked_at),
            accepted_at: Set(accepted_at),
            finished_at: Set(self.finished_at),
            archived_at: Set(archived_at),
            finished_day: Set(finished.format("%Y-%m-%d").to_string()),
        }
    }
}
