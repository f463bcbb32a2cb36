//! An address (or, as `@<domain>`, a whole domain) that must not receive mail (table `quarantine`):
//! events to it are `ignored` without a send. Entries expire after `[quarantine] expire_after` when that
//! is set (counted from `created_at`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quarantine")]
pub struct Model {
    /// Lower case; `@example.com` for a whole domain.
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub address: String,
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    /// Why: one of `crate::store::QuarantineReason`.
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// What the relay, the bounce or the operator said.
    #[sea_orm(column_type = "Text", nullable)]
    pub diagnostic: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
