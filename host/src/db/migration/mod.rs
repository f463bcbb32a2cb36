//! Schema migrations, applied in order by [`crate::db::migrate`].
//!
//! One file per migration, named `mYYYYMMDD_NNNNNN_what`; the name is recorded in `seaql_migrations`
//! once applied, so an applied migration must never be edited or renamed: change the schema with a new
//! one. Migrations build their statements with sea-query (no SQL strings) so that the same migration
//! runs on SQLite and PostgreSQL, and they spell out their own table and column names instead of
//! borrowing the entities', so that a later change to an entity cannot rewrite history.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261122_000001_create_events;
mod m20261122_000002_delivery_schema;
mod m20261122_000003_delivery_claims;
mod m20261122_000004_archive_feed;
mod m20261122_000005_events_ingest_cost;
mod m20261202_0002_bounces;
mod m20261202_000301_monitoring_timeline;
mod m20261202_000401_webhooks;
mod m20261202_000501_console;
mod m20261203_000601_template_seeds_proofs;
mod m20261203_000602_archive_timeline;
mod m20261203_000701_delivery_claim_order;

/// Every migration of the host schema, oldest first.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_events::Migration),
            Box::new(m20261122_000002_delivery_schema::Migration),
            Box::new(m20261122_000003_delivery_claims::Migration),
            Box::new(m20261122_000004_archive_feed::Migration),
            Box::new(m20261122_000005_events_ingest_cost::Migration),
            Box::new(m20261202_0002_bounces::Migration),
            Box::new(m20261202_000301_monitoring_timeline::Migration),
            Box::new(m20261202_000401_webhooks::Migration),
            Box::new(m20261202_000501_console::Migration),
            Box::new(m20261203_000601_template_seeds_proofs::Migration),
            Box::new(m20261203_000602_archive_timeline::Migration),
            Box::new(m20261203_000701_delivery_claim_order::Migration),
        ]
    }
}
