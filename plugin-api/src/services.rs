//! Typed requests for the host's services. Each request names its service and its response type through
//! [`HostRequest`]; the host answers unknown services with an error naming them, so a plugin built against
//! a newer plugin-api fails clearly on an older host instead of misbehaving.

use serde::{Deserialize, Serialize};

use crate::host::HostRequest;
use crate::vocabulary::{Channel, DeliveryStatus, EventStatus};

/// Moved to [`crate::vocabulary`]; still reachable here so `services::Queue` keeps working.
pub use crate::vocabulary::Queue;

/// `events.count`: how many events match, by queue and status.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountEvents {
    /// Only this queue; both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Queue>,
    /// Only this status; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EventStatus>,
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

/// An event as plugins see it. Times are milliseconds since the Unix epoch, comparable with
/// [`crate::Host::now_unix_millis`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// The public id (instance id in the top byte).
    pub id: i64,
    pub queue: Queue,
    pub status: EventStatus,
    pub event_type: String,
    pub channel: Channel,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    pub external_id: Option<String>,
    pub language: Option<String>,
    pub ctx: serde_json::Value,
    pub scheduled_at_millis: Option<i64>,
    pub expires_at_millis: Option<i64>,
    pub created_at_millis: i64,
    pub template_name: Option<String>,
    pub template_version: Option<i32>,
}

/// `events.claim`: takes up to `limit` due, pending events of `queue` for this instance, for
/// `lease_seconds`. Claims live in the database: another execution instance never gets the same event,
/// and an event whose claim lapses (its instance died) is claimed again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimEvents {
    pub queue: Queue,
    pub limit: u32,
    pub lease_seconds: u32,
}

/// The answer to [`ClaimEvents`], oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedEvents {
    pub events: Vec<EventRecord>,
}

impl HostRequest for ClaimEvents {
    const SERVICE: &'static str = "events.claim";
    type Response = ClaimedEvents;
}

/// One change to a claimed event: its new status and, when linked, its template version.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventChange {
    pub id: i64,
    pub status: EventStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<i32>,
}

/// `events.update`: applies changes to events this instance has claimed and releases their claims.
/// Events no longer claimed by this instance (the lease lapsed and another took them) are left alone.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEvents {
    pub changes: Vec<EventChange>,
}

/// The answer to [`UpdateEvents`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedEvents {
    pub updated: u64,
}

impl HostRequest for UpdateEvents {
    const SERVICE: &'static str = "events.update";
    type Response = UpdatedEvents;
}

/// A delivery attempt as plugins see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub attempt: i32,
    pub channel: Channel,
    pub address: Option<String>,
    pub status: DeliveryStatus,
    pub message_id: Option<String>,
    pub error: Option<String>,
    pub is_final: bool,
    pub at_millis: i64,
}

/// `events.get`: one event by public id, with its delivery log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetEvent {
    pub id: i64,
}

/// The answer to [`GetEvent`]; `event` is `None` when there is no such event.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventWithDeliveries {
    pub event: Option<EventRecord>,
    pub deliveries: Vec<DeliveryRecord>,
}

impl HostRequest for GetEvent {
    const SERVICE: &'static str = "events.get";
    type Response = EventWithDeliveries;
}

/// A published template version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRecord {
    pub name: String,
    pub version: i32,
    pub event_type: String,
    pub channel: Channel,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// `templates.findPublished`: the newest published template for (event type, channel).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindPublishedTemplate {
    pub event_type: String,
    pub channel: Channel,
}

/// The answer to [`FindPublishedTemplate`]; `None` means the event is not taken into account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedTemplate {
    pub template: Option<TemplateRecord>,
}

impl HostRequest for FindPublishedTemplate {
    const SERVICE: &'static str = "templates.findPublished";
    type Response = PublishedTemplate;
}

/// One event to hand to delivery, with the template version it is linked to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRequest {
    pub event_id: i64,
    pub template_name: String,
    pub template_version: i32,
}

/// `delivery.enqueue`: links each claimed event to its template version, sets it `pending_delivery`,
/// releases the claim and queues its first delivery attempt, in one transaction. Events no longer
/// claimed by this instance are skipped.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueueDeliveries {
    pub deliveries: Vec<DeliveryRequest>,
}

/// The answer to [`EnqueueDeliveries`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueuedDeliveries {
    pub enqueued: u64,
}

impl HostRequest for EnqueueDeliveries {
    const SERVICE: &'static str = "delivery.enqueue";
    type Response = EnqueuedDeliveries;
}

/// A final delivery-log entry not yet copied onto its event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalDelivery {
    pub log_id: i64,
    pub event_id: i64,
    /// `sent`, `failed` or `ignored`.
    pub status: DeliveryStatus,
}

/// `deliveries.finalUncopied`: the oldest final entries whose status is not on their event yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFinalDeliveries {
    pub limit: u32,
}

/// The answer to [`ListFinalDeliveries`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalDeliveries {
    pub deliveries: Vec<FinalDelivery>,
}

impl HostRequest for ListFinalDeliveries {
    const SERVICE: &'static str = "deliveries.finalUncopied";
    type Response = FinalDeliveries;
}

/// The status an event takes from its final delivery entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOutcome {
    pub log_id: i64,
    pub event_id: i64,
    /// `sent`, `ignored` or `delivery_failed` (see [`DeliveryStatus::event_status`]).
    pub event_status: EventStatus,
}

/// `events.applyDeliveryOutcomes`: sets each event's final status from its delivery entry and marks the
/// entry copied, in one transaction. An event that is no longer `pending_delivery` is left as it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyDeliveryOutcomes {
    pub outcomes: Vec<DeliveryOutcome>,
}

/// The answer to [`ApplyDeliveryOutcomes`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedOutcomes {
    pub applied: u64,
}

impl HostRequest for ApplyDeliveryOutcomes {
    const SERVICE: &'static str = "events.applyDeliveryOutcomes";
    type Response = AppliedOutcomes;
}

// ---- control instance: execution instances and the archive ----

/// `instances.list`: the execution instances this (control) instance is configured to archive, in
/// configuration order. Empty on an instance with none.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInstances {}

/// One execution instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    pub name: String,
    /// Base URL of its public API.
    pub url: String,
}

/// The answer to [`ListInstances`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceList {
    pub instances: Vec<InstanceInfo>,
}

impl HostRequest for ListInstances {
    const SERVICE: &'static str = "instances.list";
    type Response = InstanceList;
}

/// `instances.request`: one HTTP request to an execution instance's public API, sent by the host with
/// the instance's API key and timeout. A failure to reach it is an error; any HTTP answer is a response.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestInstance {
    pub instance: String,
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: String,
    /// Path and query, starting with `/` (`/api/v1/archive/events?after=0.0&limit=500`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// The answer to [`RequestInstance`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceAnswer {
    pub status: u16,
    /// The JSON body (`null` when empty).
    pub body: serde_json::Value,
}

impl HostRequest for RequestInstance {
    const SERVICE: &'static str = "instances.request";
    type Response = InstanceAnswer;
}

/// `archive.cursor`: where the archive of `instance` stands (`None` before its first page).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetArchiveCursor {
    pub instance: String,
}

/// The answer to [`GetArchiveCursor`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveCursor {
    pub cursor: Option<String>,
}

impl HostRequest for GetArchiveCursor {
    const SERVICE: &'static str = "archive.cursor";
    type Response = ArchiveCursor;
}

/// `archive.store`: stores a page of `GET /api/v1/archive/events` read from `instance` after `after`
/// (the cursor [`GetArchiveCursor`] gave): events new to the archive are inserted, events already there
/// are left unchanged, and the cursor moves to `next_cursor`, all in one transaction. Refused when the
/// stored cursor is no longer `after` (another run moved it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreArchivePage {
    pub instance: String,
    pub after: Option<String>,
    /// The page's `events`, as the execution instance wrote them.
    pub events: Vec<serde_json::Value>,
    pub next_cursor: String,
    /// The page was the last one: the archive now holds everything the instance had finished.
    pub caught_up: bool,
}

/// The answer to [`StoreArchivePage`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredArchivePage {
    /// Events new to the archive.
    pub inserted: u64,
    /// Events archived from this instance so far.
    pub archived_total: i64,
}

impl HostRequest for StoreArchivePage {
    const SERVICE: &'static str = "archive.store";
    type Response = StoredArchivePage;
}

/// `archive.recordError`: archiving `instance` failed; shown in `/admin/workflows` and `/metrics`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordArchiveError {
    pub instance: String,
    pub error: String,
}

/// The answer to [`RecordArchiveError`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordedArchiveError {}

impl HostRequest for RecordArchiveError {
    const SERVICE: &'static str = "archive.recordError";
    type Response = RecordedArchiveError;
}
