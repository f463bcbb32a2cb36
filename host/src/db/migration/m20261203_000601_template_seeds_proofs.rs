//! Seed addresses and proofs of templates (issue 18): a template is tried on its seeds before it is
//! published.
//!
//! - `template_seeds`: per template name, the seed addresses an operator renders and sends proofs to:
//!   a label (unique per template), the address (email or mobile phone, as the template's channel) and
//!   the `ctx` to render with (JSON text). `position` keeps the order the list was written in. Seeds are
//!   keyed by name, not by a foreign key, so that they survive a template deleted and created again.
//! - `template_proofs`: every proof sent, with its outcome. A proof is deliberately **not** an event and
//!   **not** a `delivery_log` row: statistics, monitoring indicators, webhooks, the archive feed and
//!   the bounce matching all read `events` / `delivery_log`, so a proof is excluded from every one of
//!   them by construction rather than by a filter each of them would have to remember.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_pk_auto, integer, text, text_null, timestamp_with_time_zone};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000601_template_seeds_proofs"
    }
}

#[derive(DeriveIden)]
enum TemplateSeeds {
    Table,
    Id,
    TemplateName,
    Position,
    Label,
    Address,
    Ctx,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TemplateProofs {
    Table,
    Id,
    TemplateName,
    Version,
    Channel,
    SeedLabel,
    Address,
    Status,
    MessageId,
    Error,
    SentBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TemplateSeeds::Table)
                    .col(big_pk_auto(TemplateSeeds::Id))
                    .col(text(TemplateSeeds::TemplateName))
                    .col(integer(TemplateSeeds::Position))
                    .col(text(TemplateSeeds::Label))
                    .col(text(TemplateSeeds::Address))
                    .col(text(TemplateSeeds::Ctx))
                    .col(timestamp_with_time_zone(TemplateSeeds::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_template_seeds_label")
                    .table(TemplateSeeds::Table)
                    .col(TemplateSeeds::TemplateName)
                    .col(TemplateSeeds::Label)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TemplateProofs::Table)
                    .col(big_pk_auto(TemplateProofs::Id))
                    .col(text(TemplateProofs::TemplateName))
                    .col(integer(TemplateProofs::Version))
                    .col(text(TemplateProofs::Channel))
                    .col(text(TemplateProofs::SeedLabel))
                    .col(text(TemplateProofs::Address))
                    .col(text(TemplateProofs::Status))
                    .col(text_null(TemplateProofs::MessageId))
                    .col(text_null(TemplateProofs::Error))
                    .col(text_null(TemplateProofs::SentBy))
                    .col(timestamp_with_time_zone(TemplateProofs::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_template_proofs_template")
                    .table(TemplateProofs::Table)
                    .col(TemplateProofs::TemplateName)
                    .col(TemplateProofs::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TemplateProofs::Table.into_iden(),
            TemplateSeeds::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
