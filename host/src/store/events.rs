//! Queries on the `events` table.

use mc_plugin_api::services::Queue;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::{Store, StoreError};
use crate::db::entities::event::{self, CHANNEL_EMAIL, EventStatus};

impl Store {
    /// How many events are in `queue` (both when `None`) with `status` (any when `None`); the `/stats`
    /// endpoint and the `events.count` plugin service. An unknown status simply counts zero.
    pub async fn count_events(
        &self,
        queue: Option<Queue>,
        status: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut query = event::Entity::find();
        if let Some(queue) = queue {
            query = query.filter(event::Column::Queue.eq(queue.as_str()));
        }
        if let Some(status) = status {
            query = query.filter(event::Column::Status.eq(status));
        }
        query.count(&self.db).await.map_err(|err| self.error(err))
    }

    /// Inserts one pending email event of `event_type` with an empty `ctx` and returns its row key.
    /// For tests and benchmarks that need events without going through the HTTP intake.
    pub async fn insert_test_event(
        &self,
        queue: Queue,
        event_type: &str,
    ) -> Result<i64, StoreError> {
        let now = chrono::Utc::now();
        let row = event::ActiveModel {
            queue: Set(queue.as_str().to_owned()),
            status: Set(EventStatus::Pending.as_str().to_owned()),
            event_type: Set(event_type.to_owned()),
            channel: Set(CHANNEL_EMAIL.to_owned()),
            ctx: Set(serde_json::Value::Object(serde_json::Map::new())),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let inserted = event::Entity::insert(row)
            .exec(&self.db)
            .await
            .map_err(|err| self.error(err))?;
        Ok(inserted.last_insert_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::store::testing::{PgTestDb, sqlite_store};
    use sea_orm::{ActiveModelTrait, QueryOrder, sea_query::Expr};

    const HOSTILE: &str = "'; DROP TABLE events; --";

    /// The same checks on every backend: inserts, counts, and hostile strings that must be stored as
    /// data (bound parameters), never spliced into SQL.
    async fn exercise(store: &Store) {
        assert_eq!(store.count_events(None, None).await.expect("count"), 0);

        let mut realtime = Vec::new();
        for n in 0..3 {
            realtime.push(
                store
                    .insert_test_event(Queue::Realtime, &format!("order-{n}"))
                    .await
                    .expect("insert realtime"),
            );
        }
        let batch = store
            .insert_test_event(Queue::Batch, "newsletter")
            .await
            .expect("insert batch");
        let hostile = store
            .insert_test_event(Queue::Batch, HOSTILE)
            .await
            .expect("insert hostile");
        assert!(
            realtime.windows(2).all(|pair| pair[0] < pair[1]) && realtime[2] < batch,
            "row keys grow: {realtime:?} {batch}"
        );

        // One realtime event is sent.
        event::Entity::update_many()
            .col_expr(
                event::Column::Status,
                Expr::value(EventStatus::Sent.as_str()),
            )
            .filter(event::Column::Id.eq(realtime[0]))
            .exec(store.connection())
            .await
            .expect("mark sent");

        let count = |queue, status| async move {
            store
                .count_events(queue, status)
                .await
                .expect("count events")
        };
        assert_eq!(count(None, None).await, 5);
        assert_eq!(count(Some(Queue::Realtime), None).await, 3);
        assert_eq!(count(Some(Queue::Batch), None).await, 2);
        assert_eq!(count(Some(Queue::Realtime), Some("pending")).await, 2);
        assert_eq!(count(Some(Queue::Realtime), Some("sent")).await, 1);
        assert_eq!(count(Some(Queue::Batch), Some("pending")).await, 2);
        assert_eq!(count(Some(Queue::Batch), Some("sent")).await, 0);
        assert_eq!(count(None, Some("pending")).await, 4);
        assert_eq!(count(None, Some("no_such_status")).await, 0);
        assert_eq!(count(None, Some(HOSTILE)).await, 0);

        // The hostile event type came back intact, and the table is still there.
        let row = event::Entity::find_by_id(hostile)
            .one(store.connection())
            .await
            .expect("find")
            .expect("row exists");
        assert_eq!(row.event_type, HOSTILE);
        assert_eq!(row.queue, "batch");
        assert_eq!(row.status, "pending");
        assert_eq!(row.channel, "email");
        assert_eq!(row.ctx, serde_json::json!({}));
        assert_eq!(row.email, None);
        assert_eq!(count(None, None).await, 5);

        // Every column round-trips through the entity, hostile and non-ASCII text included.
        let scheduled = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00.123456Z")
            .expect("time")
            .to_utc();
        let ctx = serde_json::json!({
            "firstName": "Zoë \"Bobby\" O'Brien",
            "note": HOSTILE,
            "items": [1, 2.5, null, {"nested": true}],
        });
        let full = event::ActiveModel {
            queue: Set(Queue::Realtime.as_str().to_owned()),
            event_type: Set("password-reset".to_owned()),
            channel: Set("sms".to_owned()),
            email: Set(Some(format!("{HOSTILE}@example.com"))),
            mobile_phone: Set(Some("+33 6 12 34 56 78".to_owned())),
            external_id: Set(Some("ext\\'\"-1".to_owned())),
            language: Set(Some("fr-FR".to_owned())),
            ctx: Set(ctx.clone()),
            scheduled_at: Set(Some(scheduled)),
            expires_at: Set(Some(scheduled + chrono::Duration::hours(1))),
            created_at: Set(scheduled),
            updated_at: Set(scheduled),
            // `status` left unset: the column default makes it pending.
            ..Default::default()
        };
        let id = event::Entity::insert(full)
            .exec(store.connection())
            .await
            .expect("insert full event")
            .last_insert_id;
        let row = event::Entity::find_by_id(id)
            .one(store.connection())
            .await
            .expect("find")
            .expect("row exists");
        assert_eq!(row.status, "pending");
        assert_eq!(
            row.email.as_deref(),
            Some("'; DROP TABLE events; --@example.com")
        );
        assert_eq!(row.external_id.as_deref(), Some("ext\\'\"-1"));
        assert_eq!(row.ctx, ctx);
        assert_eq!(row.scheduled_at, Some(scheduled));
        assert_eq!(row.expires_at, Some(scheduled + chrono::Duration::hours(1)));
        assert_eq!(row.created_at, scheduled);

        // An update through the entity works too (the primary key and types line up).
        let mut changed: event::ActiveModel = row.into();
        changed.status = Set(EventStatus::NotTakenIntoAccount.as_str().to_owned());
        changed.update(store.connection()).await.expect("update");
        assert_eq!(count(None, Some("not_taken_into_account")).await, 1);

        let newest = event::Entity::find()
            .order_by_desc(event::Column::Id)
            .one(store.connection())
            .await
            .expect("newest")
            .expect("row");
        assert_eq!(newest.id, id);
    }

    #[tokio::test]
    async fn sqlite_insert_count_and_round_trip() {
        let (_dir, store) = sqlite_store().await;
        exercise(&store).await;
        store.ping().await.expect("ping");
    }

    #[tokio::test]
    async fn postgres_insert_count_and_round_trip() {
        let pg = PgTestDb::create().await;
        let conn = db::connect(pg.url(), 4, std::time::Duration::from_secs(5))
            .await
            .expect("connect");
        db::migrate(&conn).await.expect("migrate");
        db::migrate(&conn).await.expect("migrate again");
        let store = Store::new(conn);
        store.ping().await.expect("ping");
        exercise(&store).await;
        store.connection().clone().close().await.expect("close");
    }

    #[tokio::test]
    async fn sqlite_row_keys_are_not_reused_after_delete() {
        let (_dir, store) = sqlite_store().await;
        let first = store
            .insert_test_event(Queue::Realtime, "a")
            .await
            .expect("insert");
        event::Entity::delete_by_id(first)
            .exec(store.connection())
            .await
            .expect("delete");
        let second = store
            .insert_test_event(Queue::Realtime, "b")
            .await
            .expect("insert");
        assert!(second > first, "{second} reuses {first}");
    }
}
