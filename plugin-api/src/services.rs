//! Typed requests for the host's services. Each request names its service and its response type through
//! [`HostRequest`]; the host answers unknown services with an error naming them, so a plugin built against
//! a newer plugin-api fails clearly on an older host instead of misbehaving.

use serde::{Deserialize, Serialize};

use crate::host::HostRequest;

/// The two event queues of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    /// Real-time events (`POST /api/v1/events`), handled by `rtEventsProcessing`.
    Realtime,
    /// Batch events (`POST /api/v1/events/batch`), handled by `batchEventsProcessing`.
    Batch,
}

impl Queue {
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Realtime => "realtime",
            Queue::Batch => "batch",
        }
    }
}

/// `events.count`: how many events match, by queue and status.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountEvents {
    /// Only this queue; both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Queue>,
    /// Only this status (`pending`, `sent`, ...); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The answer to [`CountEvents`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventCount {
    pub count: u64,
}

impl HostRequest for CountEvents {
    const SERVICE: &'static str = "events.count";
    type Response = EventCount;
}
