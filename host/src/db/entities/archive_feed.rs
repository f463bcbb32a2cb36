//! The archive feed counter and acknowledgement of an execution instance (table `archive_feed`, one row
//! with id 1; see the `archive_feed` migration for why numbers come from a locked row).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "archive_feed")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The last `archive_seq` handed out.
    pub last_seq: i64,
    /// The control instance has read every event up to `(acked_seq, acked_event_id)`.
    pub acked_seq: i64,
    /// Row key (not public id) of the last acknowledged event.
    pub acked_event_id: i64,
    pub acked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
