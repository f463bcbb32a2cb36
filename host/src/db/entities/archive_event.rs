//! A finished event of an execution instance, as the control instance archived it (table
//! `archive_events`); keyed by (instance, public id) so that reading a page twice changes nothing.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "archive_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub instance_name: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: i64,
    #[sea_orm(column_type = "Text")]
    pub queue: String,
    #[sea_orm(column_type = "Text")]
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
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
    #[sea_orm(column_type = "JsonBinary")]
    pub ctx: Json,
    #[sea_orm(column_type = "Text", nullable)]
    pub template_name: Option<String>,
    pub template_version: Option<i32>,
    /// The event's delivery-log entries, as a JSON array.
    #[sea_orm(column_type = "JsonBinary")]
    pub delivery_logs: Json,
    /// The push, on the execution instance.
    pub created_at: DateTimeUtc,
    /// When the execution instance linked it to a template (`None` if never, or archived before
    /// migration `m20261203_000602_archive_timeline`).
    pub linked_at: Option<DateTimeUtc>,
    /// When the relay / gateway accepted its final `sent` attempt (`None` if not sent).
    pub accepted_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub archived_at: DateTimeUtc,
    /// `YYYY-MM-DD` (UTC) of `finished_at`, what the report groups by.
    #[sea_orm(column_type = "Text")]
    pub finished_day: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
