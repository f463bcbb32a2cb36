//! The `events` table: the real-time and batch queues (SPEC "Event statuses", "Event ids").

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_pk_auto, json_binary, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

/// Creates `events` and the index the queue workflows claim from.
pub struct Migration;

impl MigrationName for Migration {
    /// Spelled out rather than derived from the file name: it is the key recorded in
    /// `seaql_migrations`, and must not change if the file is ever moved.
    fn name(&self) -> &str {
        "m20261122_000001_create_events"
    }
}

/// Table and column names as of this migration.
#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    Queue,
    Status,
    EventType,
    Channel,
    Email,
    MobilePhone,
    ExternalId,
    Language,
    Ctx,
    ScheduledAt,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

/// Name of the index on (queue, status, id).
const QUEUE_STATUS_ID_INDEX: &str = "idx_events_queue_status_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    // The row key: the low 56 bits of the public event id (the top 8 bits are the
                    // instance id, SPEC "Event ids"). BIGSERIAL on PostgreSQL; on SQLite an INTEGER
                    // PRIMARY KEY with AUTOINCREMENT, so that the key of a purged event is never handed
                    // out again (the control instance archives by id).
                    .col(big_pk_auto(Events::Id))
                    // "realtime" or "batch" (`mc_plugin_api::Queue::as_str`).
                    .col(text(Events::Queue))
                    // The SPEC status names. No CHECK constraint: SQLite cannot alter one, and the set
                    // of statuses is the application's to validate.
                    .col(text(Events::Status).default("pending"))
                    .col(text(Events::EventType))
                    // "email" or "sms".
                    .col(text(Events::Channel).default("email"))
                    .col(text_null(Events::Email))
                    .col(text_null(Events::MobilePhone))
                    .col(text_null(Events::ExternalId))
                    .col(text_null(Events::Language))
                    // The personalisation data: jsonb on PostgreSQL, JSON text on SQLite.
                    .col(json_binary(Events::Ctx))
                    // Not before / not after; absent means "now" / "never".
                    .col(timestamp_with_time_zone_null(Events::ScheduledAt))
                    .col(timestamp_with_time_zone_null(Events::ExpiresAt))
                    // Set by the application, not by a database default: SQLite's CURRENT_TIMESTAMP
                    // has another text format than the RFC 3339 the driver writes, and mixing the two
                    // would break comparisons.
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(timestamp_with_time_zone(Events::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // The processing workflows claim the oldest pending events of one queue
        // (`WHERE queue = ? AND status = 'pending' ORDER BY id`), and the stats count by queue and status.
        manager
            .create_index(
                Index::create()
                    .name(QUEUE_STATUS_ID_INDEX)
                    .table(Events::Table)
                    .col(Events::Queue)
                    .col(Events::Status)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }

    /// Always in one transaction, also on SQLite (sea-orm-migration's default there is none): both
    /// backends have transactional DDL, and a crash between the table and its index must not leave a
    /// half-applied migration that the next start cannot redo.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
