//! Typed requests for the host's services. Each request names its service and its response type through
//! [`HostRequest`]; the host answers unknown services with an error naming them, so a plugin built against
//! a newer plugin-api fails clearly on an older host instead of misbehaving.

use serde::{Deserialize, Serialize};

use crate::host::HostRequest;
use crate::vocabulary::{
    Channel, DeliveryStatus, EventStatus, NotificationStatus, WebhookEventType, WebhookVerdict,
};

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
    /// Matching events.
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
    /// The queue it was submitted to.
    pub queue: Queue,
    /// Its current status.
    pub status: EventStatus,
    /// The client's event type, which selects the template.
    pub event_type: String,
    /// How its message travels.
    pub channel: Channel,
    /// Recipient address (email channel).
    pub email: Option<String>,
    /// Recipient number (sms channel).
    pub mobile_phone: Option<String>,
    /// The client's own id for the event.
    pub external_id: Option<String>,
    /// The recipient's language, when given.
    pub language: Option<String>,
    /// The personalisation data (`{}` when the client sent none).
    pub ctx: serde_json::Value,
    /// Not to be processed before this time.
    pub scheduled_at_millis: Option<i64>,
    /// Becomes `expired` if not delivered by this time.
    pub expires_at_millis: Option<i64>,
    /// When the event was accepted.
    pub created_at_millis: i64,
    /// The linked template, once processed.
    pub template_name: Option<String>,
    /// The linked template version, once processed.
    pub template_version: Option<i32>,
}

/// `events.claim`: takes up to `limit` due, pending events of `queue` for this instance, for
/// `lease_seconds`. Claims live in the database: another execution instance never gets the same event,
/// and an event whose claim lapses (its instance died) is claimed again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimEvents {
    /// The queue to claim from.
    pub queue: Queue,
    /// Most events to claim (1 to 10 000).
    pub limit: u32,
    /// How long the claim holds if the run dies (capped at an hour).
    pub lease_seconds: u32,
}

/// The answer to [`ClaimEvents`], oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedEvents {
    /// The claimed events.
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
    /// The event's public id.
    pub id: i64,
    /// Its new status.
    pub status: EventStatus,
    /// The template it is linked to (with `template_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// The template version it is linked to (with `template_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<i32>,
}

/// `events.update`: applies changes to events this instance has claimed and releases their claims.
/// Events no longer claimed by this instance (the lease lapsed and another took them) are left alone.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEvents {
    /// The changes, applied in one transaction.
    pub changes: Vec<EventChange>,
}

/// The answer to [`UpdateEvents`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedEvents {
    /// Events changed (fewer than asked when some claims lapsed).
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
    /// 1 for the first attempt, then one more per retry.
    pub attempt: i32,
    /// How the message travels.
    pub channel: Channel,
    /// The address it was sent to, when the event had one.
    pub address: Option<String>,
    /// What became of the attempt.
    pub status: DeliveryStatus,
    /// The SMTP server's or gateway's id for the message.
    pub message_id: Option<String>,
    /// Why it failed or was ignored.
    pub error: Option<String>,
    /// No further attempt follows.
    pub is_final: bool,
    /// When the attempt was queued.
    pub at_millis: i64,
}

/// `events.get`: one event by public id, with its delivery log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetEvent {
    /// The event's public id.
    pub id: i64,
}

/// The answer to [`GetEvent`]; `event` is `None` when there is no such event.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventWithDeliveries {
    /// The event.
    pub event: Option<EventRecord>,
    /// Its delivery attempts, oldest first.
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
    /// The template's name.
    pub name: String,
    /// The version number.
    pub version: i32,
    /// The event type it serves.
    pub event_type: String,
    /// The channel it serves.
    pub channel: Channel,
    /// The sender (email), when not the configured default.
    pub from: Option<String>,
    /// The subject (email).
    pub subject: Option<String>,
    /// The text body.
    pub text: Option<String>,
    /// The HTML body (email).
    pub html: Option<String>,
}

/// `templates.findPublished`: the newest published template for (event type, channel).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindPublishedTemplate {
    /// The event's type.
    pub event_type: String,
    /// The event's channel.
    pub channel: Channel,
}

/// The answer to [`FindPublishedTemplate`]; `None` means the event is not taken into account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedTemplate {
    /// The template, or `None`.
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
    /// The event's public id.
    pub event_id: i64,
    /// The template it is linked to.
    pub template_name: String,
    /// The template version it is linked to.
    pub template_version: i32,
}

/// `delivery.enqueue`: links each claimed event to its template version, sets it `pending_delivery`,
/// releases the claim and queues its first delivery attempt, in one transaction. Events no longer
/// claimed by this instance are skipped.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueueDeliveries {
    /// The events to hand over.
    pub deliveries: Vec<DeliveryRequest>,
}

/// The answer to [`EnqueueDeliveries`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueuedDeliveries {
    /// Events handed over (claims that lapsed are skipped).
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
    /// The entry's id.
    pub log_id: i64,
    /// Its event's public id.
    pub event_id: i64,
    /// `sent`, `failed` or `ignored`.
    pub status: DeliveryStatus,
}

/// `deliveries.finalUncopied`: the oldest final entries whose status is not on their event yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFinalDeliveries {
    /// Most entries to list (1 to 10 000).
    pub limit: u32,
}

/// The answer to [`ListFinalDeliveries`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalDeliveries {
    /// The entries, oldest first.
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
    /// The entry the outcome comes from (marked copied).
    pub log_id: i64,
    /// The event's public id.
    pub event_id: i64,
    /// `sent`, `ignored` or `delivery_failed` (see [`DeliveryStatus::event_status`]).
    pub event_status: EventStatus,
}

/// `events.applyDeliveryOutcomes`: sets each event's final status from its delivery entry and marks the
/// entry copied, in one transaction. An event that is no longer `pending_delivery` is left as it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyDeliveryOutcomes {
    /// The outcomes, applied in one transaction.
    pub outcomes: Vec<DeliveryOutcome>,
}

/// The answer to [`ApplyDeliveryOutcomes`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedOutcomes {
    /// Events changed.
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
    /// Its name in `[[execution_instances]]`.
    pub name: String,
    /// Base URL of its public API.
    pub url: String,
}

/// The answer to [`ListInstances`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceList {
    /// The instances.
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
    /// The execution instance, by name.
    pub instance: String,
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: String,
    /// Path and query, starting with `/` (`/api/v1/archive/events?after=0.0&limit=500`).
    pub path: String,
    /// A JSON body to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// The answer to [`RequestInstance`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceAnswer {
    /// The HTTP status.
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
    /// The execution instance, by name.
    pub instance: String,
}

/// The answer to [`GetArchiveCursor`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveCursor {
    /// The cursor after the last page stored.
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
    /// The execution instance the page comes from.
    pub instance: String,
    /// The cursor the page was read after.
    pub after: Option<String>,
    /// The page's `events`, as the execution instance wrote them.
    pub events: Vec<serde_json::Value>,
    /// The page's `nextCursor`.
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
    /// The execution instance.
    pub instance: String,
    /// What went wrong.
    pub error: String,
}

/// The answer to [`RecordArchiveError`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordedArchiveError {}

impl HostRequest for RecordArchiveError {
    const SERVICE: &'static str = "archive.recordError";
    type Response = RecordedArchiveError;
}

// Webhooks (added in plugin-api 0.2.0): the `webhookDelivery` workflow claims due notifications, asks the
// host to send them (the host owns the HTTP client, its pool and timeout, the destination check, the
// signature and the body), decides what each answer means, and has the host record the attempts. Sending
// and recording take many notifications per call, so a run costs a few round trips and transactions, not
// a few per notification. A host older than 0.2.0 answers these services as unknown.

/// `webhooks.claim`: takes up to `limit` due notifications of enabled endpoints for this run, for
/// `lease_seconds`, as [`ClaimEvents`] does for events (another instance never gets the same one; a
/// lapsed claim is claimed again).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimWebhooks {
    /// Most notifications to claim (1 to 10 000).
    pub limit: u32,
    /// How long the claim holds if the run dies (capped at an hour).
    pub lease_seconds: u32,
}

/// A claimed notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookNotificationRecord {
    /// The notification's id (what `webhooks.send` and `webhooks.record` take).
    pub id: i64,
    /// The endpoint's name.
    pub endpoint: String,
    /// What it tells.
    #[serde(rename = "type")]
    pub event_type: WebhookEventType,
    /// The public id of the event it is about.
    pub event_id: i64,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// The answer to [`ClaimWebhooks`], due first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedWebhooks {
    /// The claimed notifications.
    pub notifications: Vec<WebhookNotificationRecord>,
}

impl HostRequest for ClaimWebhooks {
    const SERVICE: &'static str = "webhooks.claim";
    type Response = ClaimedWebhooks;
}

/// `webhooks.send`: the host sends each of these claimed notifications once, all at the same time:
/// builds each body (fixed at the first attempt, all of the call's in one transaction), signs it
/// (Standard Webhooks), checks the destination after resolving it, POSTs it under
/// `[webhooks] request_timeout` and its endpoint's concurrency cap, and says what came back. It records
/// nothing: that is `webhooks.record`'s job, with the workflow's verdicts. It answers when the last
/// request is done, so a workflow that wants one slow endpoint not to hold back the others' records
/// sends each endpoint's notifications in their own call.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendWebhooks {
    /// Notifications this run claimed (at most 10 000).
    pub notification_ids: Vec<i64>,
}

/// What one attempt saw (part of the answer to [`SendWebhooks`], and of [`WebhookAttempt`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttemptResult {
    /// The receiver's HTTP status; `None` when it did not answer (refused destination, connection
    /// error, timeout), or when the host could not try (see `error`).
    pub http_status: Option<u16>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// Why there was no (complete) answer.
    pub error: Option<String>,
    /// The answer's `Retry-After`, in seconds, when it had one.
    pub retry_after_seconds: Option<u64>,
    /// The first KiB of the answer's body.
    pub response: Option<String>,
}

/// The answer to [`SendWebhooks`]: one result per notification, in the order asked. A notification
/// this run does not hold (any more), or whose event is gone, gets a result without a status whose
/// `error` says why.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentWebhooks {
    /// What each attempt saw.
    pub results: Vec<WebhookAttemptResult>,
}

impl HostRequest for SendWebhooks {
    const SERVICE: &'static str = "webhooks.send";
    type Response = SentWebhooks;
}

/// One attempt to record, with what the workflow made of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempt {
    /// The notification.
    pub notification_id: i64,
    /// What `webhooks.send` answered for it.
    pub result: WebhookAttemptResult,
    /// What it means.
    pub verdict: WebhookVerdict,
}

/// `webhooks.record`: stores these attempts and each notification's next state, all in one
/// transaction, and releases their claims. An attempt whose claim this run no longer holds is not
/// recorded (and says so).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordWebhookAttempts {
    /// The attempts (at most 10 000).
    pub attempts: Vec<WebhookAttempt>,
}

/// What became of one recorded attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedWebhookAttempt {
    /// Whether it was recorded (false: the claim was lost).
    pub recorded: bool,
    /// The notification's status now.
    pub status: Option<NotificationStatus>,
    /// When the next attempt is due, while it is `pending`.
    pub next_attempt_at_millis: Option<i64>,
}

/// The answer to [`RecordWebhookAttempts`], in the order asked.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedWebhookAttempts {
    /// One per attempt.
    pub recorded: Vec<RecordedWebhookAttempt>,
}

impl HostRequest for RecordWebhookAttempts {
    const SERVICE: &'static str = "webhooks.record";
    type Response = RecordedWebhookAttempts;
}
