//! The delivery engine's claim reads due attempts in claim order: `status = 'pending'`, then priority
//! (real-time first), then id, skipping the ones not due yet or claimed by a live sender, up to a
//! round's size. The index of `m20261122_000003` put `next_attempt_at` before `id`, so a claim read every
//! pending entry, fetched each row for its claim, and sorted them all for the `LIMIT`: with a backlog
//! of thousands, each round's claim cost more than its sends (issue 20, BENCHMARKS.md). This index is
//! in claim order, so a claim reads index entries in order and stops at the round's size. On SQLite it
//! also holds the two columns the claim filters on (no row is read for a skipped entry).
//!
//! On PostgreSQL it does not: there, an `UPDATE` that changes no indexed column can be a heap-only
//! tuple update (HOT: no new index entries), and a claim changes only `claimed_by` and
//! `claim_expires_at`. For HOT the page needs room, so `events` and `delivery_logs` get a fill factor of
//! 80 (each row is updated three or four times on its way through the pipeline; the claims are the
//! updates that can be HOT). The fill factor applies to pages written from now on.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000701_delivery_claim_order"
    }
}

#[derive(DeriveIden)]
enum DeliveryLogs {
    Table,
    Id,
    Status,
    Priority,
    NextAttemptAt,
    ClaimExpiresAt,
}

const OLD_INDEX: &str = "idx_delivery_logs_due";
const NEW_INDEX: &str = "idx_delivery_logs_claim_order";
/// Percent of a PostgreSQL page filled by inserts; the rest is room for HOT updates.
const FILL_FACTOR: u8 = 80;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        let mut index = Index::create();
        index
            .name(NEW_INDEX)
            .table(DeliveryLogs::Table)
            .col(DeliveryLogs::Status)
            .col(DeliveryLogs::Priority)
            .col(DeliveryLogs::Id);
        if !postgres {
            index
                .col(DeliveryLogs::NextAttemptAt)
                .col(DeliveryLogs::ClaimExpiresAt);
        }
        manager.create_index(index.to_owned()).await?;
        if postgres {
            for table in ["events", "delivery_logs"] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!(
                        "ALTER TABLE {table} SET (fillfactor = {FILL_FACTOR})"
                    ))
                    .await?;
            }
        }
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_INDEX)
                    .table(DeliveryLogs::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            for table in ["events", "delivery_logs"] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!("ALTER TABLE {table} RESET (fillfactor)"))
                    .await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(DeliveryLogs::Table)
                    .col(DeliveryLogs::Status)
                    .col(DeliveryLogs::Priority)
                    .col(DeliveryLogs::NextAttemptAt)
                    .col(DeliveryLogs::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(NEW_INDEX)
                    .table(DeliveryLogs::Table)
                    .to_owned(),
            )
            .await
    }
}
