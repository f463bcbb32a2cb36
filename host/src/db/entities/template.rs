//! A message template (table `templates`): its name, what it is for, and which version is published.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub name: String,
    /// The event type this template answers.
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    /// "email" or "sms".
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    /// The newest version written (each PUT makes one).
    pub latest_version: i32,
    /// The version events are linked to; none until published.
    pub published_version: Option<i32>,
    pub published_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
