//! The push → linked → accepted timeline the monitoring indicators need (SPEC "Monitoring").
//!
//! - `events.linked_at`: when the event was linked to a template version, written by the statement that
//!   links it. `created_at` is the push, so `linked_at - created_at` is the queue time.
//! - `delivery_logs.accepted_at`: when the relay / gateway accepted the attempt (it turned `sent`),
//!   written by the statement that records the attempt's outcome.
//! - Two partial indexes, so that the monitoring snapshot reads only the window: finished events by
//!   `finished_at` and accepted attempts by `accepted_at`. Both are partial (`IS NOT NULL`), so a new
//!   event costs no index entry at ingest (rows are inserted with both columns NULL).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000301_monitoring_timeline"
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    LinkedAt,
    FinishedAt,
    Queue,
    Status,
}

#[derive(DeriveIden)]
enum DeliveryLogs {
    Table,
    AcceptedAt,
    EventId,
}

const EVENTS_FINISHED_INDEX: &str = "idx_events_monitoring_finished";
const LOGS_ACCEPTED_INDEX: &str = "idx_delivery_logs_monitoring_accepted";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(timestamp_with_time_zone_null(Events::LinkedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeliveryLogs::Table)
                    .add_column(timestamp_with_time_zone_null(DeliveryLogs::AcceptedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(EVENTS_FINISHED_INDEX)
                    .table(Events::Table)
                    .col(Events::FinishedAt)
                    .col(Events::Queue)
                    .col(Events::Status)
                    .and_where(Expr::col(Events::FinishedAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(LOGS_ACCEPTED_INDEX)
                    .table(DeliveryLogs::Table)
                    .col(DeliveryLogs::AcceptedAt)
                    .col(DeliveryLogs::EventId)
                    .and_where(Expr::col(DeliveryLogs::AcceptedAt).is_not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            (LOGS_ACCEPTED_INDEX, DeliveryLogs::Table.into_iden()),
            (EVENTS_FINISHED_INDEX, Events::Table.into_iden()),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(DeliveryLogs::Table)
                    .drop_column(DeliveryLogs::AcceptedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::LinkedAt)
                    .to_owned(),
            )
            .await
    }
}
