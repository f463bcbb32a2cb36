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

use super::claims::unclaimed_events;
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
        let _turn = self.write_turn("set_apart_events").await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut set_apart = Vec::with_capacity(items.len());
        for item in items {
            let changed = unclaimed_events()
                .col_expr(
                    event::Column::Status,
                    Expr::value(EventStatus::DeliveryFailed.as_str()),
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
        let notified = self.enter_archive_feed(&txn, set_apart.clone()).await?;
        txn.commit().await.map_err(|e| self.error(e))?;
        if notified > 0 {
            self.webhooks_written();
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mc_plugin_api::{EventStatus, Queue};
    use sea_orm::{ConnectionTrait, Statement};

    use crate::store::testing::{pg_pair, push, sqlite_store};
    use crate::store::{FeedCursor, Store};

    /// The store's first ten events, as the listing serves them.
    async fn first_ten_events(store: &Store) -> Vec<crate::db::entities::event::Model> {
        store
            .list_events(&crate::store::EventFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// One event's `ctx` made unreadable behind the store's back: the claim still takes the others, the
    /// event is set apart with its reason, and every read of it works.
    async fn an_unreadable_ctx_is_set_apart(store: Store) {
        push(&store, Queue::Realtime, 3).await;
        let deep = format!("{}1{}", "{\"a\":".repeat(8_000), "}".repeat(8_000));
        let backend = store.connection().get_database_backend();
        let page = first_ten_events(&store).await;
        let poison_key = page[1].id;
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "UPDATE events SET ctx = CAST($1 AS json) WHERE id = $2"
            }
            _ => "UPDATE events SET ctx = $1 WHERE id = $2",
        };
        store
            .connection()
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [deep.into(), poison_key.into()],
            ))
            .await
            .expect("poison the event");

        let claim = store
            .claim_events(Queue::Realtime, 10, "run#1", Duration::from_secs(60))
            .await
            .expect("one unreadable ctx does not fail the claim");
        assert_eq!(claim.events.len(), 2);
        assert_eq!(claim.unreadable.len(), 1);
        let poison = &claim.unreadable[0];
        assert_eq!(poison.event.id, poison_key);
        assert_eq!(poison.event.ctx, serde_json::Value::Null);
        assert!(poison.reason.contains("100 levels"), "{}", poison.reason);

        // Only the claimer sets it apart.
        assert!(
            store
                .set_apart_events("someone-else", &claim.unreadable)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .set_apart_events("run#1", &claim.unreadable)
                .await
                .unwrap(),
            vec![poison_key]
        );

        let public_id = poison.event.public_id();
        let (event, deliveries) = store.get_event(public_id).await.unwrap().expect("event");
        assert_eq!(event.status, EventStatus::DeliveryFailed.as_str());
        assert_eq!(event.claimed_by, None);
        assert!(event.finished_at.is_some() && event.archive_seq.is_some());
        assert_eq!(deliveries.len(), 1);
        let entry = &deliveries[0];
        assert_eq!(
            (entry.attempt, entry.status.as_str(), entry.is_final),
            (0, "failed", true)
        );
        assert!(entry.copied_to_event, "updateEventsStatus leaves it alone");
        assert!(
            entry.error.as_deref().unwrap_or_default().contains("`ctx`"),
            "{entry:?}"
        );
        // The listing and the archive feed serve it (ctx null) instead of failing on it.
        let page = first_ten_events(&store).await;
        assert_eq!(page.len(), 3);
        assert_eq!(page[1].ctx, serde_json::Value::Null);
        let page = store
            .archive_feed_page(FeedCursor::default(), 10)
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].0.id, poison_key);
        // Nothing of it is claimed again.
        let claim = store
            .claim_events(Queue::Realtime, 10, "run#2", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(claim.events.is_empty() && claim.unreadable.is_empty());
    }

    #[tokio::test]
    async fn sqlite_an_unreadable_ctx_is_set_apart() {
        let (_dir, store) = sqlite_store().await;
        an_unreadable_ctx_is_set_apart(store).await;
    }

    #[tokio::test]
    async fn sqlite_writer_an_unreadable_ctx_is_set_apart() {
        let (_dir, store) = crate::store::testing::sqlite_store_with_writer().await;
        an_unreadable_ctx_is_set_apart(store).await;
    }

    #[tokio::test]
    async fn postgres_an_unreadable_ctx_is_set_apart() {
        let (_pg, store, _) = pg_pair().await;
        an_unreadable_ctx_is_set_apart(store).await;
    }
}
