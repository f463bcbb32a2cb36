//! An `Idempotency-Key` and the events its first request created (table `idempotency_keys`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub key: String,
    /// Hex SHA-256 of the first request's body; a repeat with another body is refused.
    #[sea_orm(column_type = "Text")]
    pub request_hash: String,
    #[sea_orm(column_type = "Text")]
    pub queue: String,
    /// JSON array of the public ids created.
    #[sea_orm(column_type = "JsonBinary")]
    pub event_ids: Json,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
