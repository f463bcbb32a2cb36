//! Bounces and the quarantine API.
//!
//! - `quarantine.reason` becomes a category (`delivery_failure`, `hard_bounce`, `soft_bounce`,
//!   `complaint`, `manual`; `crate::store::QuarantineReason`) and the free text it held moves to the new
//!   `quarantine.diagnostic`. Rows written before this migration were all SMTP refusals at send time:
//!   they become `delivery_failure` with their text as diagnostic. A whole domain is quarantined by a
//!   row whose `address` is `@<domain>`.
//! - `host_secrets` keeps secrets the host generates once and every instance sharing the database must
//!   agree on: the key that signs bounce tokens (`bounce_signing_key`) when `[bounces] signing_key` is
//!   not configured.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{text, text_null, timestamp_with_time_zone};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_0002_bounces"
    }
}

#[derive(DeriveIden)]
enum Quarantine {
    Table,
    Reason,
    Diagnostic,
    CreatedAt,
}

#[derive(DeriveIden)]
enum HostSecrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

const QUARANTINE_CREATED_INDEX: &str = "idx_quarantine_created_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Quarantine::Table)
                    .add_column(text_null(Quarantine::Diagnostic))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Quarantine::Table)
                    .value(Quarantine::Diagnostic, Expr::col(Quarantine::Reason))
                    .value(Quarantine::Reason, "delivery_failure")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(QUARANTINE_CREATED_INDEX)
                    .table(Quarantine::Table)
                    .col(Quarantine::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HostSecrets::Table)
                    .col(text(HostSecrets::Name).primary_key())
                    .col(text(HostSecrets::Value))
                    .col(timestamp_with_time_zone(HostSecrets::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(HostSecrets::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(QUARANTINE_CREATED_INDEX)
                    .table(Quarantine::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Quarantine::Table)
                    .value(
                        Quarantine::Reason,
                        Expr::col(Quarantine::Diagnostic).if_null(Expr::col(Quarantine::Reason)),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Quarantine::Table)
                    .drop_column(Quarantine::Diagnostic)
                    .to_owned(),
            )
            .await
    }
}
