//! One delivery attempt of an event (table `delivery_logs`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_logs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The event's row key.
    pub event_id: i64,
    /// 1 for the first attempt.
    pub attempt: i32,
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub address: Option<String>,
    /// pending, sent, failed, ignored.
    #[sea_orm(column_type = "Text")]
    pub status: String,
    /// The SMTP Message-ID or the gateway's message id.
    #[sea_orm(column_type = "Text", nullable)]
    pub message_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub template_name: Option<String>,
    pub template_version: Option<i32>,
    /// This entry decides the event's final status.
    pub is_final: bool,
    /// updateEventsStatus has copied it onto the event.
    pub copied_to_event: bool,
    /// When a failed, retryable attempt is tried again.
    pub next_attempt_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The engine (instance/process) sending this entry, while it holds the lease.
    #[sea_orm(column_type = "Text", nullable)]
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<DateTimeUtc>,
    /// 0 real-time, 1 batch: lower is sent first.
    pub priority: i32,
    /// When the event's first attempt was made; the retry period counts from it.
    pub first_attempt_at: Option<DateTimeUtc>,
    /// When the relay / gateway accepted this attempt (it turned `sent`); monitoring's delivery and
    /// processing times end here.
    pub accepted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::event::Entity",
        from = "Column::EventId",
        to = "super::event::Column::Id",
        on_delete = "Cascade"
    )]
    Event,
}

impl Related<super::event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Event.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
