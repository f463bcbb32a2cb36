//! The shared vocabulary of host and plugins: event statuses, delivery-log statuses, channels and queues.
//!
//! Each is an enum whose string form is exactly the one the contract uses (SPEC "Event statuses"): the
//! JSON of the host services, the HTTP API and the database columns carry these strings byte for byte,
//! and only Rust code sees the enums. Because the plugin boundary carries JSON, turning these fields from
//! `String` into enums changed nothing on the wire and [`crate::abi::ABI_VERSION`] stays as it was; a
//! plugin built before them still talks to a host built after, and the other way round.
//!
//! Parsing an unknown name fails with an [`UnknownName`] that lists the accepted names, both through
//! [`std::str::FromStr`] and through serde, so a plugin that sends a misspelt status gets an answer saying
//! what it may send.

use std::fmt;
use std::str::FromStr;

/// A name that is not one of a vocabulary's values; its message lists the accepted ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What the value names (`event status`, `channel`, ...).
    pub kind: &'static str,
    /// The name that was given.
    pub given: String,
    /// Every accepted name, in the vocabulary's order.
    pub accepted: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} `{}`; expected one of: {}",
            self.kind,
            self.given,
            self.accepted.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// Declares a vocabulary enum: its variants with their names, `ALL`, `NAMES`, `as_str`, `Display`,
/// `FromStr`, and serde as the name (one table, so the string forms cannot drift apart).
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the contract's order.
            pub const ALL: [$name; $name::NAMES.len()] = [$($name::$variant),+];
            /// Every name, in the same order as [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name used on the wire and in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<Self, UnknownName> {
                match name {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownName {
                        kind: $kind,
                        given: other.to_owned(),
                        accepted: $name::NAMES,
                    }),
                }
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} ({})", $kind, $name::NAMES.join(", "))
                    }

                    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<$name, E> {
                        name.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

vocabulary! {
    /// The status of an event (`events.status`, SPEC "Event statuses"). [`EventStatus::is_final`] ones
    /// never change again.
    EventStatus, "event status" {
        /// Accepted, waiting for its queue's workflow.
        Pending = "pending",
        /// Linked to a template version and handed to the delivery engine.
        PendingDelivery = "pending_delivery",
        /// Its message was accepted by the SMTP server or SMS gateway.
        Sent = "sent",
        /// Delivery was skipped (quarantined or invalid address).
        Ignored = "ignored",
        /// Every delivery attempt failed.
        DeliveryFailed = "delivery_failed",
        /// No published template matches its type and channel.
        NotTakenIntoAccount = "not_taken_into_account",
        /// Its `expiration` passed before it was processed.
        Expired = "expired",
    }
}

impl EventStatus {
    /// Final statuses never change again; only these are archived and purged.
    pub const fn is_final(self) -> bool {
        !matches!(self, EventStatus::Pending | EventStatus::PendingDelivery)
    }

    /// The status named `name`, if it is one (the `Option` form of [`FromStr`]).
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

vocabulary! {
    /// The status of one delivery attempt (`delivery_log.status`).
    DeliveryStatus, "delivery status" {
        /// Queued, not attempted yet (or waiting for its retry).
        Pending = "pending",
        /// Accepted by the SMTP server or SMS gateway.
        Sent = "sent",
        /// The attempt failed; final when no retry follows.
        Failed = "failed",
        /// Not attempted: the address is quarantined or invalid.
        Ignored = "ignored",
        /// Accepted by the relay, then bounced for good (a permanent DSN, a complaint, or a hard bounce
        /// reported over `POST /api/v1/bounces`): the entry was `sent` and the host requalified it, with
        /// its event (`delivery_failed`). Added in plugin-api 0.1.1; the host marks such entries copied
        /// onto their events itself, so `updateEventsStatus` never has to read one.
        Bounced = "bounced",
    }
}

vocabulary! {
    /// What a webhook notification tells (SPEC "Webhooks"): the `type` of its body. Added in plugin-api
    /// 0.2.0.
    WebhookEventType, "webhook event type" {
        /// The event became `sent`.
        EventSent = "event.sent",
        /// The event became `ignored`.
        EventIgnored = "event.ignored",
        /// The event became `delivery_failed`.
        EventDeliveryFailed = "event.delivery_failed",
        /// The event became `not_taken_into_account`.
        EventNotTakenIntoAccount = "event.not_taken_into_account",
        /// The event became `expired`.
        EventExpired = "event.expired",
        /// A delivery attempt failed transiently and a retry is scheduled.
        DeliveryDeferred = "delivery.deferred",
        /// A bounce was received for one of the event's messages.
        MessageBounced = "message.bounced",
    }
}

impl WebhookEventType {
    /// The type that tells that an event reached `status`, when `status` is final.
    pub const fn of_final_status(status: EventStatus) -> Option<Self> {
        match status {
            EventStatus::Sent => Some(WebhookEventType::EventSent),
            EventStatus::Ignored => Some(WebhookEventType::EventIgnored),
            EventStatus::DeliveryFailed => Some(WebhookEventType::EventDeliveryFailed),
            EventStatus::NotTakenIntoAccount => Some(WebhookEventType::EventNotTakenIntoAccount),
            EventStatus::Expired => Some(WebhookEventType::EventExpired),
            EventStatus::Pending | EventStatus::PendingDelivery => None,
        }
    }
}

vocabulary! {
    /// Where a webhook notification stands. Added in plugin-api 0.2.0.
    NotificationStatus, "notification status" {
        /// Not delivered yet: due at its `next_attempt_at`.
        Pending = "pending",
        /// A 2xx answer was received.
        Delivered = "delivered",
        /// Given up: the retry schedule is exhausted, or the endpoint answered `410 Gone`.
        Failed = "failed",
    }
}

vocabulary! {
    /// What a workflow decided about one webhook attempt (`webhooks.record`): the policy is the
    /// workflow's, the bookkeeping (times, schedule, disabling) the host's. Added in plugin-api 0.2.0.
    WebhookVerdict, "webhook verdict" {
        /// The receiver took it (a 2xx answer): the notification is `delivered`.
        Delivered = "delivered",
        /// Try again: after the attempt's `retryAfterSeconds` when it has one (capped by the host),
        /// otherwise after the next wait of `[webhooks] retry_schedule`; `failed` once that is exhausted.
        Retry = "retry",
        /// Give up on this notification (`failed`), leave the endpoint as it is.
        Fail = "fail",
        /// Give up and disable the endpoint (a `410 Gone`): nothing more is sent to it until an operator
        /// enables it again.
        Disable = "disable",
    }
}

impl DeliveryStatus {
    /// The event status a final entry with this status gives its event (`updateEventsStatus`): `sent`
    /// and `ignored` carry over, anything else means the delivery failed.
    pub const fn event_status(self) -> EventStatus {
        match self {
            DeliveryStatus::Sent => EventStatus::Sent,
            DeliveryStatus::Ignored => EventStatus::Ignored,
            DeliveryStatus::Pending | DeliveryStatus::Failed | DeliveryStatus::Bounced => {
                EventStatus::DeliveryFailed
            }
        }
    }
}

vocabulary! {
    /// How an event's message travels (`events.channel`, `templates.channel`).
    Channel, "channel" {
        /// An email to the event's `email`.
        Email = "email",
        /// An SMS to the event's `mobilePhone`.
        Sms = "sms",
    }
}

/// Email, the channel of an event or template that names none (SPEC "Event fields").
impl Default for Channel {
    fn default() -> Self {
        Channel::Email
    }
}

vocabulary! {
    /// The two event queues of the contract (`events.queue`).
    Queue, "queue" {
        /// Real-time events (`POST /api/v1/events`), handled by `rtEventsProcessing`.
        Realtime = "realtime",
        /// Batch events (`POST /api/v1/events/batch`), handled by `batchEventsProcessing`.
        Batch = "batch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        fn check<T>(all: &[T])
        where
            T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr + serde::Serialize,
            T: serde::de::DeserializeOwned,
            <T as FromStr>::Err: fmt::Debug,
        {
            for value in all {
                let name = value.to_string();
                assert_eq!(name.parse::<T>().unwrap(), *value);
                let json = serde_json::to_string(value).unwrap();
                assert_eq!(json, format!("\"{name}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *value);
            }
        }
        check(&EventStatus::ALL);
        check(&DeliveryStatus::ALL);
        check(&Channel::ALL);
        check(&Queue::ALL);
    }

    /// The final event statuses of SPEC.md, in their order.
    const FINAL_NAMES: [&str; 5] = [
        "sent",
        "ignored",
        "delivery_failed",
        "not_taken_into_account",
        "expired",
    ];

    #[test]
    fn the_strings_are_the_contracts() {
        assert_eq!(EventStatus::NAMES[..2], ["pending", "pending_delivery"]);
        assert_eq!(EventStatus::NAMES[2..], FINAL_NAMES);
        assert_eq!(
            DeliveryStatus::NAMES,
            ["pending", "sent", "failed", "ignored", "bounced"]
        );
        assert_eq!(Channel::NAMES, ["email", "sms"]);
        assert_eq!(Queue::NAMES, ["realtime", "batch"]);
    }

    #[test]
    fn finality_matches_the_spec() {
        let finals: Vec<&str> = EventStatus::ALL
            .into_iter()
            .filter(|status| status.is_final())
            .map(EventStatus::as_str)
            .collect();
        assert_eq!(finals, FINAL_NAMES);
    }

    #[test]
    fn unknown_names_list_the_accepted_ones() {
        let err = "Pending".parse::<EventStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown event status `Pending`; expected one of: pending, pending_delivery, sent, \
             ignored, delivery_failed, not_taken_into_account, expired"
        );
        let err = serde_json::from_str::<Channel>("\"fax\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown channel `fax`; expected one of: email, sms"),
            "{err}"
        );
        assert!(serde_json::from_str::<Queue>("1").is_err());
    }

    #[test]
    fn final_deliveries_map_to_event_statuses() {
        assert_eq!(DeliveryStatus::Sent.event_status(), EventStatus::Sent);
        assert_eq!(DeliveryStatus::Ignored.event_status(), EventStatus::Ignored);
        assert_eq!(
            DeliveryStatus::Failed.event_status(),
            EventStatus::DeliveryFailed
        );
    }
}
