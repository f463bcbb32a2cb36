//! Setting apart claimed events that cannot be processed, so that they stop holding back the others.
//!
//! An event whose `ctx` cannot be read (see `event_read`), or that names a channel this host does not
//! know, would fail every workflow run that claims it, and with it the other events of the run. Instead
//! it is made final, `delivery_failed` (SPEC "Event statuses": a hard failure), with one delivery-log
//! entry saying why: attempt `0` (no message was attempted), `failed`, final, the reason in its `error`,
//! already copied to the event (so `updateEventsStatus` leaves it alone). It enters the archive feed like
//! any finished event, and `GET /api/v1/events/{id}` shows it with that entry.

use chrono::{DateTime, Utc};
use mc_plugin_api::{DeliveryStatus, EventStatus, Queue};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::deliveries::address_of;
use super::{Store, StoreError, Unreadable};
use crate::db::entities::{delivery_log, event};

/// The attempt number of the entry that records why an event was set apart: no attempt was made.
pub const SET_APART_ATTEMPT: i32 = 0;

impl Store {
    /// Makes the claimed events `items` `delivery_failed` with their reasons (see the module docs), in one
    /// transaction; events no longer claimed by `claimer` are left alone. Returns the row keys set apart.
    pub async fn set_apart_events(
        &self,
        claimer: &str,
        items: &[Unreadable],
    ) -> Result<Vec<i64>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let _turn = self.write_turn().await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut set_apart = Vec::with_capacity(items.len());
        for item in items {
            let changed = event::Entity::update_many()
                .col_expr(
                    event::Column::Status,
                    Expr::value(EventStatus::DeliveryFailed.as_str()),
                )
                .col_expr(
                    event::Column::ClaimedBy,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    event::Column::ClaimExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(event::Column::UpdatedAt, Expr::value(now))
                .col_expr(event::Column::FinishedAt, Expr::value(now))
                .filter(event::Column::Id.eq(item.event.id))
                .filter(event::Column::ClaimedBy.eq(claimer))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected;
            if changed == 0 {
                continue;
            }
            delivery_log::Entity::insert(entry(&item.event, &item.reason, now))
                .exec_without_returning(&txn)
                .await
                .map_err(|e| self.error(e))?;
            set_apart.push(item.event.id);
        }
        self.enter_archive_feed(&txn, set_apart.clone()).await?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(set_apart)
    }
}

/// The delivery-log entry that records why `event` was set apart.
fn entry(event: &event::Model, reason: &str, now: DateTime<Utc>) -> delivery_log::ActiveModel {
    delivery_log::ActiveModel {
        event_id: Set(event.id),
        attempt: Set(SET_APART_ATTEMPT),
        channel: Set(event.channel.clone()),
        address: Set(address_of(event)),
        status: Set(DeliveryStatus::Failed.as_str().to_owned()),
        error: Set(Some(format!("not processed: {reason}"))),
        is_final: Set(true),
        copied_to_event: Set(true),
        next_attempt_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        priority: Set(i32::from(event.queue == Queue::Batch.as_str())),
        first_attempt_at: Set(None),
        ..Default::default()
    }
}
