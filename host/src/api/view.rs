//! How stored rows look in the API (camelCase, ids as strings).

use serde_json::{Value, json};

use crate::db::entities::{delivery_log, event};

/// A public id as the API writes it: the unsigned decimal string (ids of instance 128 and above do not
/// fit a signed 64-bit integer's positive half, and JavaScript clients lose precision past 2^53).
pub fn id_string(public_id: i64) -> String {
    (public_id as u64).to_string()
}

/// Parses an id written by [`id_string`].
pub fn parse_id(text: &str) -> Option<i64> {
    text.parse::<u64>().ok().map(|id| id as i64)
}

/// The event, with its delivery-log entries when given.
pub fn event(e: &event::Model, deliveries: Option<&[delivery_log::Model]>) -> Value {
    let id = id_string(e.public_id());
    let mut value = json!({
        "id": id,
        "href": format!("/api/v1/events/{id}"),
        "queue": e.queue,
        "status": e.status,
        "type": e.event_type,
        "channel": e.channel,
        "email": e.email,
        "mobilePhone": e.mobile_phone,
        "externalId": e.external_id,
        "language": e.language,
        "scheduled": e.scheduled_at.map(|t| t.to_rfc3339()),
        "expiration": e.expires_at.map(|t| t.to_rfc3339()),
        "ctx": e.ctx,
        "createdAt": e.created_at.to_rfc3339(),
        "updatedAt": e.updated_at.to_rfc3339(),
        "finishedAt": e.finished_at.map(|t| t.to_rfc3339()),
        // When it was linked to its template: the archive's reports measure queue time by it.
        "linkedAt": e.linked_at.map(|t| t.to_rfc3339()),
        "template": match (&e.template_name, e.template_version) {
            (Some(name), Some(version)) => json!({ "name": name, "version": version }),
            _ => Value::Null,
        },
    });
    if let Some(deliveries) = deliveries {
        value["deliveries"] = deliveries.iter().map(delivery).collect();
    }
    value
}

fn delivery(d: &delivery_log::Model) -> Value {
    json!({
        "attempt": d.attempt,
        "channel": d.channel,
        "address": d.address,
        "status": d.status,
        "messageId": d.message_id,
        "error": d.error,
        "template": d.template_name.as_ref().map(|name| json!({ "name": name, "version": d.template_version })),
        "final": d.is_final,
        // When the attempt was made (its outcome recorded); for a pending entry, when it was queued.
        "at": d.updated_at.to_rfc3339(),
        "nextAttemptAt": d.next_attempt_at.map(|t| t.to_rfc3339()),
        // When the relay / gateway accepted it (a `sent` attempt): sending time ends here.
        "acceptedAt": d.accepted_at.map(|t| t.to_rfc3339()),
    })
}
