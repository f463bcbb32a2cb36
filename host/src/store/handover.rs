//! Handing claimed events to delivery: each linked to its template version and set `pending_delivery`,
//! its claim released, and its first attempt queued, in one transaction.
//!
//! On an SQLite file the transaction runs on the synchronous writer (`sqlite_writer`): through sqlx it
//! held the write turn across a dozen thread hand-offs (`BEGIN`, each template's `UPDATE … RETURNING`
//! row by row, the `INSERT`s, `COMMIT`), the largest share of the turn in the pipeline bench's batch
//! drain after the outcome groups (BENCHMARKS.md, session 15). Both paths run the same statements,
//! built once here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query, UpdateStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QueryTrait, TransactionTrait,
};

use super::claims::unclaimed_events;
use super::deliveries::address_on;
use super::sqlite_writer::for_writer;
use super::{Store, StoreError};
use crate::db::entities::{delivery_log, event};
use mc_plugin_api::{DeliveryStatus, EventStatus, Queue};

/// First attempts per `INSERT` (SQLite's default limit is 32,766 parameters; an attempt binds 15).
const INSERT_CHUNK: usize = 500;

/// What a linked event's first attempt is made of: the `RETURNING` list of the link.
#[derive(Debug, FromQueryResult)]
struct Linked {
    id: i64,
    queue: String,
    channel: String,
    email: Option<String>,
    mobile_phone: Option<String>,
    template_name: Option<String>,
    template_version: Option<i32>,
}

/// [`Linked`]'s columns, in its fields' order.
const LINKED: [event::Column; 7] = [
    event::Column::Id,
    event::Column::Queue,
    event::Column::Channel,
    event::Column::Email,
    event::Column::MobilePhone,
    event::Column::TemplateName,
    event::Column::TemplateVersion,
];

impl Linked {
    /// A row of the synchronous writer, in [`LINKED`]'s order.
    fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Linked> {
        Ok(Linked {
            id: row.get(0)?,
            queue: row.get(1)?,
            channel: row.get(2)?,
            email: row.get(3)?,
            mobile_phone: row.get(4)?,
            template_name: row.get(5)?,
            template_version: row.get(6)?,
        })
    }

    /// Its first attempt, due `now`; batch events after real-time ones.
    fn first_attempt(&self, now: DateTime<Utc>) -> delivery_log::ActiveModel {
        let address = address_on(
            &self.channel,
            self.email.as_deref(),
            self.mobile_phone.as_deref(),
        );
        delivery_log::ActiveModel {
            event_id: Set(self.id),
            attempt: Set(1),
            channel: Set(self.channel.clone()),
            address: Set(address),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            template_name: Set(self.template_name.clone()),
            template_version: Set(self.template_version),
            is_final: Set(false),
            copied_to_event: Set(false),
            next_attempt_at: Set(Some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            priority: Set(i32::from(self.queue == Queue::Batch.as_str())),
            first_attempt_at: Set(Some(now)),
            ..Default::default()
        }
    }
}

impl Store {
    /// Links claimed events to their template versions, sets them `pending_delivery`, releases their
    /// claims and queues a first attempt for each, in one transaction. Events no longer claimed by
    /// `claimer` are skipped. Returns how many were handed over.
    pub async fn enqueue_deliveries(
        &self,
        claimer: &str,
        items: &[(i64, String, i32)],
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        let links = links(claimer, items, now);
        if self.has_sqlite_writer() {
            let statements = match links
                .iter()
                .map(for_writer)
                .collect::<rusqlite::Result<Vec<_>>>()
            {
                Ok(statements) => statements,
                Err(e) => return Err(self.writer_error(e)),
            };
            let done = self
                .on_sqlite_writer("enqueue_deliveries", move |txn| {
                    let mut linked = Vec::new();
                    for (sql, values) in statements {
                        let mut prepared = txn.prepare_cached(&sql)?;
                        let rows = prepared.query_map(
                            rusqlite::params_from_iter(values),
                            Linked::from_sqlite_row,
                        )?;
                        for row in rows {
                            linked.push(row?);
                        }
                    }
                    for chunk in linked.chunks(INSERT_CHUNK) {
                        let attempts = chunk.iter().map(|l| l.first_attempt(now));
                        let insert = delivery_log::Entity::insert_many(attempts).into_query();
                        let (sql, values) = for_writer(&insert)?;
                        txn.prepare_cached(&sql)?
                            .execute(rusqlite::params_from_iter(values))?;
                    }
                    Ok(linked.len() as u64)
                })
                .await;
            if let Some(done) = done {
                return done;
            }
        }
        let _turn = self.write_turn("enqueue_deliveries").await;
        let backend = self.db.get_database_backend();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut linked = Vec::new();
        for link in &links {
            for row in txn
                .query_all_raw(backend.build(link))
                .await
                .map_err(|e| self.error(e))?
            {
                linked.push(Linked::from_query_result(&row, "").map_err(|e| self.error(e))?);
            }
        }
        for chunk in linked.chunks(INSERT_CHUNK) {
            delivery_log::Entity::insert_many(chunk.iter().map(|l| l.first_attempt(now)))
                .exec_without_returning(&txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(linked.len() as u64)
    }
}

/// One `UPDATE … RETURNING` per template version: its events (still claimed by `claimer`) linked,
/// `pending_delivery` and released.
fn links(claimer: &str, items: &[(i64, String, i32)], now: DateTime<Utc>) -> Vec<UpdateStatement> {
    let mut by_template: BTreeMap<(&str, i32), Vec<i64>> = BTreeMap::new();
    for (row_key, name, version) in items {
        by_template
            .entry((name.as_str(), *version))
            .or_default()
            .push(*row_key);
    }
    by_template
        .into_iter()
        .map(|((name, version), keys)| {
            let mut link = unclaimed_events()
                .col_expr(
                    event::Column::Status,
                    Expr::value(EventStatus::PendingDelivery.as_str()),
                )
                .col_expr(event::Column::TemplateName, Expr::value(name))
                .col_expr(event::Column::TemplateVersion, Expr::value(version))
                .col_expr(event::Column::LinkedAt, Expr::value(now))
                .col_expr(event::Column::UpdatedAt, Expr::value(now))
                .filter(event::Column::Id.is_in(keys))
                .filter(event::Column::ClaimedBy.eq(claimer))
                .into_query();
            link.returning(Query::returning().columns(LINKED));
            link
        })
        .collect()
}
