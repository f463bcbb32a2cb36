//! An event in the real-time or batch queue (table `events`, SPEC "Event statuses" and "Event ids").
//!
//! `queue`, `status` and `channel` are kept as text rather than Rust enums mapped by sea-orm: a row
//! written by a newer version (a status added later) must still load in an older one, and plugins
//! exchange these values as strings anyway. [`EventStatus`] and the `CHANNEL_*` constants give the valid
//! values a name.

use sea_orm::entity::prelude::*;

/// A row of `events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// The row key, allocated by the database; the public id adds the instance id in the top 8 bits.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `"realtime"` or `"batch"` ([`mc_plugin_api::services::Queue::as_str`]).
    #[sea_orm(column_type = "Text")]
    pub queue: String,
    /// One of the [`EventStatus`] names.
    #[sea_orm(column_type = "Text")]
    pub status: String,
    /// The client's event type, which selects the template.
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    /// [`CHANNEL_EMAIL`] or [`CHANNEL_SMS`].
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub email: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub mobile_phone: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub external_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub language: Option<String>,
    /// The personalisation data (`{}` when the client sent none).
    #[sea_orm(column_type = "JsonBinary")]
    pub ctx: Json,
    /// Not to be processed before this time.
    pub scheduled_at: Option<DateTimeUtc>,
    /// Becomes `expired` if not delivered by this time.
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// Last change of the row; the archiving workflow reads events in change order.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The `channel` of an email event.
pub const CHANNEL_EMAIL: &str = "email";
/// The `channel` of an SMS event.
pub const CHANNEL_SMS: &str = "sms";

/// The event statuses of the SPEC, with the names stored in `events.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventStatus {
    Pending,
    PendingDelivery,
    Sent,
    Ignored,
    DeliveryFailed,
    NotTakenIntoAccount,
    Expired,
}

impl EventStatus {
    /// Every status, in the SPEC's order.
    pub const ALL: [EventStatus; 7] = [
        EventStatus::Pending,
        EventStatus::PendingDelivery,
        EventStatus::Sent,
        EventStatus::Ignored,
        EventStatus::DeliveryFailed,
        EventStatus::NotTakenIntoAccount,
        EventStatus::Expired,
    ];

    /// The name stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::PendingDelivery => "pending_delivery",
            EventStatus::Sent => "sent",
            EventStatus::Ignored => "ignored",
            EventStatus::DeliveryFailed => "delivery_failed",
            EventStatus::NotTakenIntoAccount => "not_taken_into_account",
            EventStatus::Expired => "expired",
        }
    }

    /// The status named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// Final statuses never change again; only these are archived and purged.
    pub fn is_final(self) -> bool {
        !matches!(self, EventStatus::Pending | EventStatus::PendingDelivery)
    }
}

impl std::fmt::Display for EventStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip_and_finality_matches_spec() {
        for status in EventStatus::ALL {
            assert_eq!(EventStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(EventStatus::from_name("Pending"), None);
        let finals: Vec<&str> = EventStatus::ALL
            .into_iter()
            .filter(|status| status.is_final())
            .map(EventStatus::as_str)
            .collect();
        assert_eq!(
            finals,
            [
                "sent",
                "ignored",
                "delivery_failed",
                "not_taken_into_account",
                "expired"
            ]
        );
    }
}
