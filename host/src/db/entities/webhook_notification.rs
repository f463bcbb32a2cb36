//! One notification of one event to one endpoint: the webhooks outbox (table `webhook_notifications`).
//! Written in the transaction that makes the event final, so none is lost across a crash.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_notifications")]
pub struct Model {
    /// Also the `webhook-id` header (as `msg_<id>`), the same on every attempt.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub endpoint_id: i64,
    /// The event's row key.
    pub event_id: i64,
    /// A `WebhookEventType` name.
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    /// A `NotificationStatus` name.
    #[sea_orm(column_type = "Text")]
    pub status: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due (`None` once final).
    pub next_attempt_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<DateTimeUtc>,
    /// The request body, fixed at the first attempt so that every attempt sends the same bytes.
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    pub created_at: DateTimeUtc,
    /// When it became `delivered` or `failed`.
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
