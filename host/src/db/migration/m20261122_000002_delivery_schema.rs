//! Everything the workflows share besides the events themselves: the event's claim and template link,
//! idempotency keys, templates and their versions, delivery logs, quarantined addresses, and the control
//! instance's archive with its cursors.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, boolean, integer, integer_null, json_binary, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000002_delivery_schema"
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    Queue,
    Status,
    InstanceId,
    ClaimedBy,
    ClaimExpiresAt,
    TemplateName,
    TemplateVersion,
    FinishedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Key,
    RequestHash,
    Queue,
    EventIds,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    Name,
    EventType,
    Channel,
    LatestVersion,
    PublishedVersion,
    PublishedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TemplateVersions {
    Table,
    Id,
    TemplateName,
    Version,
    EventType,
    Channel,
    FromAddress,
    Subject,
    TextBody,
    HtmlBody,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DeliveryLogs {
    Table,
    Id,
    EventId,
    Attempt,
    Channel,
    Address,
    Status,
    MessageId,
    Error,
    TemplateName,
    TemplateVersion,
    IsFinal,
    CopiedToEvent,
    NextAttemptAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Quarantine {
    Table,
    Address,
    Channel,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ArchiveEvents {
    Table,
    InstanceName,
    EventId,
    Queue,
    Status,
    EventType,
    Channel,
    Email,
    MobilePhone,
    ExternalId,
    Language,
    Ctx,
    TemplateName,
    TemplateVersion,
    DeliveryLogs,
    CreatedAt,
    FinishedAt,
    ArchivedAt,
}

#[derive(DeriveIden)]
enum ArchiveCursors {
    Table,
    InstanceName,
    Cursor,
    ArchivedEvents,
    LastSuccessAt,
    LastError,
    LastErrorAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // events: one ALTER per column (SQLite adds one column per statement).
        let columns = [
            // The top byte of the public id (SPEC "Event ids"): the instance that accepted the event.
            integer(Events::InstanceId).default(0).to_owned(),
            // Claim lease: which execution instance holds the event and until when. A claim whose lease
            // has expired (its instance crashed) is taken over by the next claimer.
            text_null(Events::ClaimedBy),
            timestamp_with_time_zone_null(Events::ClaimExpiresAt),
            // The template version the event was linked to.
            text_null(Events::TemplateName),
            integer_null(Events::TemplateVersion),
            // When the event reached a final status (archiving reads in this order).
            timestamp_with_time_zone_null(Events::FinishedAt),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Claims look for due, unclaimed events of one queue in id order.
        manager
            .create_index(
                Index::create()
                    .name("idx_events_claim")
                    .table(Events::Table)
                    .col(Events::Queue)
                    .col(Events::Status)
                    .col(Events::ClaimExpiresAt)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_finished")
                    .table(Events::Table)
                    .col(Events::FinishedAt)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(text(IdempotencyKeys::Key).primary_key())
                    // SHA-256 of the request body: the same key with another body is refused.
                    .col(text(IdempotencyKeys::RequestHash))
                    .col(text(IdempotencyKeys::Queue))
                    // JSON array of the public ids the first request created.
                    .col(json_binary(IdempotencyKeys::EventIds))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_expires")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Templates::Table)
                    .col(text(Templates::Name).primary_key())
                    .col(text(Templates::EventType))
                    .col(text(Templates::Channel))
                    .col(integer(Templates::LatestVersion))
                    // The version events of (event_type, channel) are linked to; none until published.
                    .col(integer_null(Templates::PublishedVersion))
                    .col(timestamp_with_time_zone_null(Templates::PublishedAt))
                    .col(timestamp_with_time_zone(Templates::CreatedAt))
                    .col(timestamp_with_time_zone(Templates::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_templates_type_channel")
                    .table(Templates::Table)
                    .col(Templates::EventType)
                    .col(Templates::Channel)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TemplateVersions::Table)
                    .col(big_pk_auto(TemplateVersions::Id))
                    .col(text(TemplateVersions::TemplateName))
                    .col(integer(TemplateVersions::Version))
                    .col(text(TemplateVersions::EventType))
                    .col(text(TemplateVersions::Channel))
                    .col(text_null(TemplateVersions::FromAddress))
                    .col(text_null(TemplateVersions::Subject))
                    .col(text_null(TemplateVersions::TextBody))
                    .col(text_null(TemplateVersions::HtmlBody))
                    .col(timestamp_with_time_zone(TemplateVersions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_template_versions_name_version")
                    .table(TemplateVersions::Table)
                    .col(TemplateVersions::TemplateName)
                    .col(TemplateVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeliveryLogs::Table)
                    .col(big_pk_auto(DeliveryLogs::Id))
                    // The event's row key.
                    .col(big_integer(DeliveryLogs::EventId))
                    .col(integer(DeliveryLogs::Attempt))
                    .col(text(DeliveryLogs::Channel))
                    .col(text_null(DeliveryLogs::Address))
                    // pending, sent, failed, ignored
                    .col(text(DeliveryLogs::Status))
                    .col(text_null(DeliveryLogs::MessageId))
                    .col(text_null(DeliveryLogs::Error))
                    .col(text_null(DeliveryLogs::TemplateName))
                    .col(integer_null(DeliveryLogs::TemplateVersion))
                    // A final entry decides the event's status; updateEventsStatus copies it once.
                    .col(boolean(DeliveryLogs::IsFinal).default(false))
                    .col(boolean(DeliveryLogs::CopiedToEvent).default(false))
                    .col(timestamp_with_time_zone_null(DeliveryLogs::NextAttemptAt))
                    .col(timestamp_with_time_zone(DeliveryLogs::CreatedAt))
                    .col(timestamp_with_time_zone(DeliveryLogs::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_logs_event")
                            .from(DeliveryLogs::Table, DeliveryLogs::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_delivery_logs_event")
                    .table(DeliveryLogs::Table)
                    .col(DeliveryLogs::EventId)
                    .col(DeliveryLogs::Attempt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_delivery_logs_uncopied")
                    .table(DeliveryLogs::Table)
                    .col(DeliveryLogs::IsFinal)
                    .col(DeliveryLogs::CopiedToEvent)
                    .col(DeliveryLogs::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Quarantine::Table)
                    .col(text(Quarantine::Address).primary_key())
                    .col(text(Quarantine::Channel))
                    .col(text(Quarantine::Reason))
                    .col(timestamp_with_time_zone(Quarantine::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ArchiveEvents::Table)
                    .col(text(ArchiveEvents::InstanceName))
                    // The public id, unique across the execution instances one control instance archives.
                    .col(big_integer(ArchiveEvents::EventId))
                    .col(text(ArchiveEvents::Queue))
                    .col(text(ArchiveEvents::Status))
                    .col(text(ArchiveEvents::EventType))
                    .col(text(ArchiveEvents::Channel))
                    .col(text_null(ArchiveEvents::Email))
                    .col(text_null(ArchiveEvents::MobilePhone))
                    .col(text_null(ArchiveEvents::ExternalId))
                    .col(text_null(ArchiveEvents::Language))
                    .col(json_binary(ArchiveEvents::Ctx))
                    .col(text_null(ArchiveEvents::TemplateName))
                    .col(integer_null(ArchiveEvents::TemplateVersion))
                    .col(json_binary(ArchiveEvents::DeliveryLogs))
                    .col(timestamp_with_time_zone(ArchiveEvents::CreatedAt))
                    .col(timestamp_with_time_zone_null(ArchiveEvents::FinishedAt))
                    .col(timestamp_with_time_zone(ArchiveEvents::ArchivedAt))
                    .primary_key(
                        Index::create()
                            .col(ArchiveEvents::InstanceName)
                            .col(ArchiveEvents::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ArchiveCursors::Table)
                    .col(text(ArchiveCursors::InstanceName).primary_key())
                    .col(text_null(ArchiveCursors::Cursor))
                    .col(big_integer(ArchiveCursors::ArchivedEvents).default(0))
                    .col(timestamp_with_time_zone_null(ArchiveCursors::LastSuccessAt))
                    .col(text_null(ArchiveCursors::LastError))
                    .col(timestamp_with_time_zone_null(ArchiveCursors::LastErrorAt))
                    .col(timestamp_with_time_zone(ArchiveCursors::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ArchiveCursors::Table.into_iden(),
            ArchiveEvents::Table.into_iden(),
            Quarantine::Table.into_iden(),
            DeliveryLogs::Table.into_iden(),
            TemplateVersions::Table.into_iden(),
            Templates::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [
            Events::FinishedAt.into_iden(),
            Events::TemplateVersion.into_iden(),
            Events::TemplateName.into_iden(),
            Events::ClaimExpiresAt.into_iden(),
            Events::ClaimedBy.into_iden(),
            Events::InstanceId.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
