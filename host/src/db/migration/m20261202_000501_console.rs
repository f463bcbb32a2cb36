//! The operator console (SPEC "Console") and the event search it and `GET /api/v1/events` offer.
//!
//! - `console_users`: users created through the console's first-run link (the configured
//!   `[[console.users]]` stay in the file). `password_hash` is an argon2id PHC string.
//! - `console_sessions`: one row per sign-in, keyed by the SHA-256 of the cookie's token (the token
//!   itself is never stored), with the session's CSRF token and its expiry. In the database so that a
//!   session survives a restart and is honoured by every instance sharing PostgreSQL behind a balancer.
//! - `console_first_run`: the one-time sign-in link of an installation without users, again only as a
//!   SHA-256, with its expiry and when it was used.
//! - Search indexes on `events`: `external_id`, `email`, `mobile_phone` (partial, `IS NOT NULL`, so an
//!   event without one costs no entry at ingest) and `event_type`. Time ranges need none: they are read
//!   in row-key order, which is creation order, under a page limit.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{text, timestamp_with_time_zone, timestamp_with_time_zone_null};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000501_console"
    }
}

#[derive(DeriveIden)]
enum ConsoleUsers {
    Table,
    Login,
    PasswordHash,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    IdHash,
    Login,
    Role,
    CsrfToken,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ConsoleFirstRun {
    Table,
    TokenHash,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    ExternalId,
    Email,
    MobilePhone,
    EventType,
    Id,
}

const SESSIONS_EXPIRY_INDEX: &str = "idx_console_sessions_expires_at";

/// (index, column, partial) of the event search.
fn event_indexes() -> [(&'static str, Events, bool); 4] {
    [
        ("idx_events_external_id", Events::ExternalId, true),
        ("idx_events_email", Events::Email, true),
        ("idx_events_mobile_phone", Events::MobilePhone, true),
        ("idx_events_type_id", Events::EventType, false),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleUsers::Table)
                    .col(text(ConsoleUsers::Login).primary_key())
                    .col(text(ConsoleUsers::PasswordHash))
                    .col(text(ConsoleUsers::Role))
                    .col(timestamp_with_time_zone(ConsoleUsers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSessions::Table)
                    .col(text(ConsoleSessions::IdHash).primary_key())
                    .col(text(ConsoleSessions::Login))
                    .col(text(ConsoleSessions::Role))
                    .col(text(ConsoleSessions::CsrfToken))
                    .col(timestamp_with_time_zone(ConsoleSessions::CreatedAt))
                    .col(timestamp_with_time_zone(ConsoleSessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SESSIONS_EXPIRY_INDEX)
                    .table(ConsoleSessions::Table)
                    .col(ConsoleSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleFirstRun::Table)
                    .col(text(ConsoleFirstRun::TokenHash).primary_key())
                    .col(timestamp_with_time_zone(ConsoleFirstRun::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ConsoleFirstRun::UsedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column, partial) in event_indexes() {
            let mut index = Index::create();
            index.name(name).table(Events::Table);
            if partial {
                index.col(column).and_where(Expr::col(column).is_not_null());
            } else {
                index.col(column).col(Events::Id);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _, _) in event_indexes() {
            manager
                .drop_index(Index::drop().name(name).table(Events::Table).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ConsoleFirstRun::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConsoleSessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ConsoleUsers::Table).to_owned())
            .await
    }
}
