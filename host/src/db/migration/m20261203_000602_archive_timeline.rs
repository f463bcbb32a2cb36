//! The push → linked → accepted timeline in the control instance's archive, for the reports (docs
//! "Reports"): `archive_events.linked_at` (when the execution instance linked the event to a template)
//! and `archive_events.accepted_at` (when the relay / gateway accepted its final `sent` attempt), copied
//! from the feed's `linkedAt` and the final delivery's `acceptedAt`. Events archived before this
//! migration keep both NULL: they count in the reports' event totals, not in their averages.
//!
//! Also an index on `created_at` (the push), by which the reports count incoming events and the events
//! waiting in the queue.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000602_archive_timeline"
    }
}

#[derive(DeriveIden)]
enum ArchiveEvents {
    Table,
    LinkedAt,
    AcceptedAt,
    CreatedAt,
    EventId,
}

const CREATED_INDEX: &str = "idx_archive_events_created";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [ArchiveEvents::LinkedAt, ArchiveEvents::AcceptedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ArchiveEvents::Table)
                        .add_column(timestamp_with_time_zone_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(CREATED_INDEX)
                    .table(ArchiveEvents::Table)
                    .col(ArchiveEvents::CreatedAt)
                    .col(ArchiveEvents::EventId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(CREATED_INDEX)
                    .table(ArchiveEvents::Table)
                    .to_owned(),
            )
            .await?;
        for column in [ArchiveEvents::AcceptedAt, ArchiveEvents::LinkedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ArchiveEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
