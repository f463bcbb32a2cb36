//! Delivery-log entries are claimed by the delivery engine the way events are claimed by workflows:
//! a lease (so a crashed sender's entries are retried by another instance), a priority (real-time before
//! batch), and the time of the first attempt (for the retry period).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, text_null, timestamp_with_time_zone_null};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000003_delivery_claims"
    }
}

#[derive(DeriveIden)]
enum DeliveryLogs {
    Table,
    Id,
    Status,
    NextAttemptAt,
    ClaimedBy,
    ClaimExpiresAt,
    Priority,
    FirstAttemptAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            text_null(DeliveryLogs::ClaimedBy),
            timestamp_with_time_zone_null(DeliveryLogs::ClaimExpiresAt),
            // 0 for real-time events, 1 for batch: real-time deliveries are sent first.
            integer(DeliveryLogs::Priority).default(0).to_owned(),
            timestamp_with_time_zone_null(DeliveryLogs::FirstAttemptAt),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeliveryLogs::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_delivery_logs_due")
                    .table(DeliveryLogs::Table)
                    .col(DeliveryLogs::Status)
                    .col(DeliveryLogs::Priority)
                    .col(DeliveryLogs::NextAttemptAt)
                    .col(DeliveryLogs::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            DeliveryLogs::FirstAttemptAt,
            DeliveryLogs::Priority,
            DeliveryLogs::ClaimExpiresAt,
            DeliveryLogs::ClaimedBy,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeliveryLogs::Table)
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
