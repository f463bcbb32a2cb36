//! Webhooks (SPEC "Webhooks"): the endpoints applications register, the outbox of notifications written
//! in the transaction that makes an event final, and every attempt to deliver one.
//!
//! - `webhook_endpoints.events` holds the subscribed types as `,type,type,` so that the one statement that
//!   fills the outbox can match a type with `LIKE '%,<type>,%'` on both backends, without a join table.
//! - Notifications and attempts cascade from their event, so the retention purge (which deletes events)
//!   takes their history with them, and from their endpoint, so deleting an endpoint takes its outbox.
//! - `idx_webhook_notifications_due` serves the claim (`status = 'pending' AND next_attempt_at <= now`),
//!   `idx_webhook_notifications_endpoint` the history page, `idx_webhook_notifications_event` the cascade.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, integer_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000401_webhooks"
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    Name,
    Url,
    Events,
    Enabled,
    Secret,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookNotifications {
    Table,
    Id,
    EndpointId,
    EventId,
    EventType,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedBy,
    ClaimExpiresAt,
    Body,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    NotificationId,
    AttemptedAt,
    HttpStatus,
    DurationMs,
    Error,
    Response,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(big_pk_auto(WebhookEndpoints::Id))
                    .col(text(WebhookEndpoints::Name).unique_key())
                    .col(text(WebhookEndpoints::Url))
                    .col(text(WebhookEndpoints::Events))
                    .col(boolean(WebhookEndpoints::Enabled))
                    .col(text(WebhookEndpoints::Secret))
                    .col(text_null(WebhookEndpoints::DisabledReason))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookNotifications::Table)
                    .col(big_pk_auto(WebhookNotifications::Id))
                    .col(big_integer(WebhookNotifications::EndpointId))
                    .col(big_integer(WebhookNotifications::EventId))
                    .col(text(WebhookNotifications::EventType))
                    .col(text(WebhookNotifications::Status))
                    .col(integer(WebhookNotifications::Attempts).default(0))
                    .col(timestamp_with_time_zone_null(
                        WebhookNotifications::NextAttemptAt,
                    ))
                    .col(text_null(WebhookNotifications::ClaimedBy))
                    .col(timestamp_with_time_zone_null(
                        WebhookNotifications::ClaimExpiresAt,
                    ))
                    .col(text_null(WebhookNotifications::Body))
                    .col(timestamp_with_time_zone(WebhookNotifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookNotifications::FinishedAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_notifications_endpoint")
                            .from(
                                WebhookNotifications::Table,
                                WebhookNotifications::EndpointId,
                            )
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_notifications_event")
                            .from(WebhookNotifications::Table, WebhookNotifications::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_notifications_due")
                    .table(WebhookNotifications::Table)
                    .col(WebhookNotifications::Status)
                    .col(WebhookNotifications::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_notifications_endpoint")
                    .table(WebhookNotifications::Table)
                    .col(WebhookNotifications::EndpointId)
                    .col(WebhookNotifications::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_notifications_event")
                    .table(WebhookNotifications::Table)
                    .col(WebhookNotifications::EventId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(big_pk_auto(WebhookAttempts::Id))
                    .col(big_integer(WebhookAttempts::NotificationId))
                    .col(timestamp_with_time_zone(WebhookAttempts::AttemptedAt))
                    .col(integer_null(WebhookAttempts::HttpStatus))
                    .col(big_integer_null(WebhookAttempts::DurationMs))
                    .col(text_null(WebhookAttempts::Error))
                    .col(text_null(WebhookAttempts::Response))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_attempts_notification")
                            .from(WebhookAttempts::Table, WebhookAttempts::NotificationId)
                            .to(WebhookNotifications::Table, WebhookNotifications::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_attempts_notification")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::NotificationId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookNotifications::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
