//! The one-time first-run sign-in link of a console without users (table `console_first_run`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "console_first_run")]
pub struct Model {
    /// Hex SHA-256 of the link's token.
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub token_hash: String,
    pub expires_at: DateTimeUtc,
    /// Set when the link created the first user; a used link is refused.
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
