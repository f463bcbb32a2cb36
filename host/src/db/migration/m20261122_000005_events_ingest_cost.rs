//! Less work per ingested event: one index on `events` fewer, and `ctx` kept as text on PostgreSQL.
//!
//! - `idx_events_claim` (queue, status, claim_expires_at, id) goes. Neither backend's planner used it:
//!   the claim filters on (queue, status) and reads in id order, which `idx_events_queue_status_id`
//!   serves, and the lease test (`claim_expires_at IS NULL OR < now`) cannot use an index column after
//!   an OR anyway. It cost an index entry on every new event and an index update on every claim and
//!   release.
//! - `events.ctx` becomes `json` instead of `jsonb` on PostgreSQL. The server only stores and returns
//!   it, and renders templates from it: parsing every event into `jsonb` was about a seventh of the
//!   backend's CPU per ingested event (BENCHMARKS.md), and `json` keeps the object as the client sent it
//!   (key order, spacing), as SQLite does. SQLite's column is text either way; nothing changes there.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000005_events_ingest_cost"
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Queue,
    Status,
    ClaimExpiresAt,
    Id,
    Ctx,
}

const CLAIM_INDEX: &str = "idx_events_claim";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(CLAIM_INDEX)
                    .table(Events::Table)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .modify_column(ColumnDef::new(Events::Ctx).json().not_null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .modify_column(ColumnDef::new(Events::Ctx).json_binary().not_null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(CLAIM_INDEX)
                    .table(Events::Table)
                    .col(Events::Queue)
                    .col(Events::Status)
                    .col(Events::ClaimExpiresAt)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await
    }
}
