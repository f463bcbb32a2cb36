//! The one definition of a new event's row: which columns the INSERT names, in which order, and where
//! each value comes from. Both writers of new events read it: the sea-query INSERT of [`super::EventRows`]
//! (PostgreSQL, and SQLite through sqlx) and the rusqlite binding of [`super::SqliteIngest`], so the two
//! cannot drift apart (`sqlite_ingest::tests::rows_are_the_rows_sea_orm_writes` checks the result).
//!
//! A cell borrows from the event; the writers convert it as they bind it, so this table costs no
//! allocation of its own on the ingest path.

use chrono::{DateTime, Utc};
use mc_plugin_api::{EventStatus, Queue};
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use sea_orm::Value;

use super::NewEvent;
use crate::db::entities::event;

/// One value of a new event's row, before a writer encodes it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Cell<'a> {
    Text(&'a str),
    OptionalText(Option<&'a str>),
    OptionalTime(Option<DateTime<Utc>>),
    /// The time the group was accepted (`created_at`, `updated_at`), the same for every row of a group:
    /// each writer encodes it once per group.
    Accepted,
    /// The accepting instance's id, the same for every row.
    Instance,
}

/// Where a column's value comes from: the event's queue and the event.
pub(super) type Source = for<'a> fn(Queue, &'a NewEvent) -> Cell<'a>;

/// The columns of a new event's row and their values, in INSERT order.
pub(super) const EVENT_ROW: [(event::Column, Source); 14] = [
    (event::Column::Queue, |queue, _| Cell::Text(queue.as_str())),
    (event::Column::Status, |_, _| {
        Cell::Text(EventStatus::Pending.as_str())
    }),
    (event::Column::EventType, |_, e| Cell::Text(&e.event_type)),
    (event::Column::Channel, |_, e| {
        Cell::Text(e.channel.as_str())
    }),
    (event::Column::Email, |_, e| {
        Cell::OptionalText(e.email.as_deref())
    }),
    (event::Column::MobilePhone, |_, e| {
        Cell::OptionalText(e.mobile_phone.as_deref())
    }),
    (event::Column::ExternalId, |_, e| {
        Cell::OptionalText(e.external_id.as_deref())
    }),
    (event::Column::Language, |_, e| {
        Cell::OptionalText(e.language.as_deref())
    }),
    // Bound as the text the client sent and stored as it is (see `Store::insert_sql`).
    (event::Column::Ctx, |_, e| Cell::Text(e.ctx.get())),
    (event::Column::ScheduledAt, |_, e| {
        Cell::OptionalTime(e.scheduled_at)
    }),
    (event::Column::ExpiresAt, |_, e| {
        Cell::OptionalTime(e.expires_at)
    }),
    (event::Column::CreatedAt, |_, _| Cell::Accepted),
    (event::Column::UpdatedAt, |_, _| Cell::Accepted),
    (event::Column::InstanceId, |_, _| Cell::Instance),
];

/// The columns the INSERT names, in [`EVENT_ROW`]'s order.
pub(super) fn columns() -> impl Iterator<Item = event::Column> {
    EVENT_ROW.iter().map(|(column, _)| *column)
}

impl Cell<'_> {
    /// The value sea-query binds, typed as sea-orm's entity would bind it.
    pub(super) fn value(self, accepted: DateTime<Utc>, instance_id: i32) -> Value {
        match self {
            Cell::Text(text) => text.into(),
            Cell::OptionalText(text) => text.into(),
            Cell::OptionalTime(at) => at.into(),
            Cell::Accepted => accepted.into(),
            Cell::Instance => instance_id.into(),
        }
    }
}

/// A cell bound by rusqlite, with the group's accepted time already in sqlx's text form
/// (`sqlite_ingest::timestamp`) and its instance id.
pub(super) struct SqliteCell<'a> {
    pub cell: Cell<'a>,
    pub accepted: &'a str,
    pub instance_id: i32,
}

impl ToSql for SqliteCell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.cell {
            Cell::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Cell::OptionalText(Some(text)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes()))
            }
            Cell::OptionalText(None) | Cell::OptionalTime(None) => {
                ToSqlOutput::Borrowed(ValueRef::Null)
            }
            Cell::OptionalTime(Some(at)) => super::sqlite_ingest::timestamp(at).into(),
            Cell::Accepted => ToSqlOutput::Borrowed(ValueRef::Text(self.accepted.as_bytes())),
            Cell::Instance => ToSqlOutput::from(self.instance_id),
        })
    }
}
