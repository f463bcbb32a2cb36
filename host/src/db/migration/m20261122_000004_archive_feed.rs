//! The archive feed of an execution instance and the day column of the control instance's archive.
//!
//! Every event gets an `archive_seq` when it becomes final: a number taken from the one row of
//! `archive_feed` inside the transaction that finalises it. That row is locked until the transaction
//! commits, so numbers are handed out in commit order, on PostgreSQL as on SQLite: a reader that sees
//! number `n` has already seen every smaller number, which is what lets the control instance read the feed
//! with a plain cursor and never skip an event finalised by a slow transaction. Rows finalised by one
//! transaction share a number; the cursor is `(archive_seq, id)`.
//!
//! `archive_feed` also keeps the acknowledged cursor (the control instance has read everything up to it)
//! that the purge of finished events waits for.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, text, timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000004_archive_feed"
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    ArchiveSeq,
    FinishedAt,
}

#[derive(DeriveIden)]
enum ArchiveFeed {
    Table,
    Id,
    LastSeq,
    AckedSeq,
    AckedEventId,
    AckedAt,
}

#[derive(DeriveIden)]
enum ArchiveEvents {
    Table,
    InstanceName,
    EventId,
    EventType,
    FinishedDay,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(big_integer_null(Events::ArchiveSeq))
                    .to_owned(),
            )
            .await?;
        // Partial: only finished events are in the feed, and an index entry per pending event would be
        // one more B-tree write on every ingested event. It also serves the purge, which makes the old
        // `idx_events_finished` (an entry per event, NULL until final) unnecessary.
        manager
            .create_index(
                Index::create()
                    .name("idx_events_archive_feed")
                    .table(Events::Table)
                    .col(Events::ArchiveSeq)
                    .col(Events::Id)
                    .and_where(Expr::col(Events::ArchiveSeq).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_finished")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ArchiveFeed::Table)
                    .col(integer(ArchiveFeed::Id).primary_key())
                    .col(big_integer(ArchiveFeed::LastSeq).default(0))
                    .col(big_integer(ArchiveFeed::AckedSeq).default(0))
                    .col(big_integer(ArchiveFeed::AckedEventId).default(0))
                    .col(timestamp_with_time_zone_null(ArchiveFeed::AckedAt))
                    .to_owned(),
            )
            .await?;
        // Events finished before this migration enter the feed first, at place 0, in id order.
        manager
            .exec_stmt(
                Query::update()
                    .table(Events::Table)
                    .value(Events::ArchiveSeq, 0)
                    .and_where(Expr::col(Events::FinishedAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ArchiveFeed::Table)
                    .columns([ArchiveFeed::Id])
                    .values_panic([1.into()])
                    .to_owned(),
            )
            .await?;

        // The control side: the UTC day an event became final, so the report groups by day the same way
        // on both backends (their date functions differ).
        manager
            .alter_table(
                Table::alter()
                    .table(ArchiveEvents::Table)
                    .add_column(text(ArchiveEvents::FinishedDay).default(""))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_archive_events_finished",
                vec![ArchiveEvents::FinishedAt, ArchiveEvents::EventId],
            ),
            (
                "idx_archive_events_report",
                vec![ArchiveEvents::FinishedDay, ArchiveEvents::EventType],
            ),
            (
                "idx_archive_events_instance",
                vec![ArchiveEvents::InstanceName, ArchiveEvents::FinishedAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(ArchiveEvents::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_archive_events_instance",
            "idx_archive_events_report",
            "idx_archive_events_finished",
        ] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(ArchiveEvents::Table)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ArchiveEvents::Table)
                    .drop_column(ArchiveEvents::FinishedDay)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ArchiveFeed::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_archive_feed")
                    .table(Events::Table)
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
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::ArchiveSeq)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
