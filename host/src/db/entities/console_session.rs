//! One console sign-in (table `console_sessions`), keyed by the SHA-256 of the cookie's token.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "console_sessions")]
pub struct Model {
    /// Hex SHA-256 of the session token; the token itself lives only in the browser's cookie.
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id_hash: String,
    #[sea_orm(column_type = "Text")]
    pub login: String,
    /// `viewer` or `operator`, as at sign-in.
    #[sea_orm(column_type = "Text")]
    pub role: String,
    /// The token every form of this session carries.
    #[sea_orm(column_type = "Text")]
    pub csrf_token: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

/// Hand-written so that logs never print the CSRF token.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("login", &self.login)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
