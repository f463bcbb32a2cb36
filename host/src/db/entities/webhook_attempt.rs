//! One attempt to deliver a notification (table `webhook_attempts`): the history the API shows.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub notification_id: i64,
    pub attempted_at: DateTimeUtc,
    /// The receiver's status; `None` when no answer came (refused, timeout, destination not allowed).
    pub http_status: Option<i32>,
    pub duration_ms: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The first KiB of the answer's body (lossy UTF-8).
    #[sea_orm(column_type = "Text", nullable)]
    pub response: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
