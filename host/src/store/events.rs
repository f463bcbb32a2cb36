//! Queries on the `events` table.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mc_plugin_api::{Channel, EventStatus, Queue};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbBackend, EntityTrait, FromQueryResult, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};

use super::claims::unclaimed_events;
use super::{Store, StoreError, event_read};
use crate::db::entities::delivery_log;
use crate::db::entities::event;

/// Filters of `GET /api/v1/events`.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub status: Option<EventStatus>,
    pub event_type: Option<String>,
    pub queue: Option<Queue>,
    /// One event by public id (instance byte and row key).
    pub id: Option<i64>,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Only events whose row key is greater (the page after).
    pub after_row_key: Option<i64>,
    pub limit: u64,
}

/// Counts and age of one queue, for `GET /api/v1/stats` and the queue gauges.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    pub by_status: BTreeMap<&'static str, u64>,
    /// Creation time of the oldest `pending` event.
    pub oldest_pending: Option<DateTime<Utc>>,
}

impl QueueStats {
    /// Events waiting to be processed.
    pub fn depth(&self) -> u64 {
        self.by_status
            .get(EventStatus::Pending.as_str())
            .copied()
            .unwrap_or(0)
    }
}

/// A change a workflow makes to a claimed event.
#[derive(Clone, Debug)]
pub struct EventUpdate {
    pub row_key: i64,
    pub status: EventStatus,
    pub template: Option<(String, i32)>,
}

/// What one claim took: the events to hand to the workflow, and those that cannot be handed to it.
#[derive(Clone, Debug, Default)]
pub struct Claim {
    pub events: Vec<event::Model>,
    pub unreadable: Vec<Unreadable>,
}

/// A claimed event that cannot be processed, and why.
#[derive(Clone, Debug)]
pub struct Unreadable {
    /// The row (`ctx` `null` when it is what cannot be read).
    pub event: event::Model,
    pub reason: String,
}

#[derive(FromQueryResult)]
struct StatusCount {
    queue: String,
    status: String,
    count: i64,
}

#[derive(FromQueryResult)]
struct OldestPending {
    queue: String,
    oldest: Option<DateTime<Utc>>,
}

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
        let _turn = self.write_turn("insert_test_event").await;
        let now = chrono::Utc::now();
        let row = event::ActiveModel {
            queue: Set(queue.as_str().to_owned()),
            status: Set(EventStatus::Pending.as_str().to_owned()),
            event_type: Set(event_type.to_owned()),
            channel: Set(Channel::Email.as_str().to_owned()),
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

    /// One event by public id, with its delivery-log entries in attempt order. `None` when there is no
    /// such row, or the row belongs to another instance than the id's top byte says. A `ctx` that cannot
    /// be read comes back `null` (see `event_read`).
    pub async fn get_event(
        &self,
        public_id: i64,
    ) -> Result<Option<(event::Model, Vec<delivery_log::Model>)>, StoreError> {
        let (instance, row_key) = event::split_public_id(public_id);
        let select = event_read::select().filter(event::Column::Id.eq(row_key));
        let Some(found) = event_read::all(select, &self.db)
            .await
            .map_err(|e| self.error(e))?
            .pop()
            .map(|read| read.event)
            .filter(|e| e.instance_id == i32::from(instance))
        else {
            return Ok(None);
        };
        let deliveries = delivery_log::Entity::find()
            .filter(delivery_log::Column::EventId.eq(row_key))
            .order_by_asc(delivery_log::Column::Attempt)
            .order_by_asc(delivery_log::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(Some((found, deliveries)))
    }

    /// A page of events in row-key order (a `ctx` that cannot be read comes back `null`).
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<event::Model>, StoreError> {
        let mut query = event_read::select().order_by_asc(event::Column::Id);
        if let Some(status) = filter.status {
            query = query.filter(event::Column::Status.eq(status.as_str()));
        }
        if let Some(event_type) = &filter.event_type {
            query = query.filter(event::Column::EventType.eq(event_type.as_str()));
        }
        if let Some(queue) = filter.queue {
            query = query.filter(event::Column::Queue.eq(queue.as_str()));
        }
        if let Some(after) = filter.after_row_key {
            query = query.filter(event::Column::Id.gt(after));
        }
        if let Some(id) = filter.id {
            let (instance, row_key) = event::split_public_id(id);
            query = query
                .filter(event::Column::Id.eq(row_key))
                .filter(event::Column::InstanceId.eq(i32::from(instance)));
        }
        for (column, value) in [
            (event::Column::ExternalId, &filter.external_id),
            (event::Column::Email, &filter.email),
            (event::Column::MobilePhone, &filter.mobile_phone),
        ] {
            if let Some(value) = value {
                query = query.filter(column.eq(value.as_str()));
            }
        }
        if let Some(from) = filter.from {
            query = query.filter(event::Column::CreatedAt.gte(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(event::Column::CreatedAt.lt(to));
        }
        Ok(event_read::all(query.limit(filter.limit), &self.db)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(|read| read.event)
            .collect())
    }

    /// Counts by status and the oldest pending event, per queue (every queue and status present).
    pub async fn queue_stats(&self) -> Result<BTreeMap<Queue, QueueStats>, StoreError> {
        let mut stats: BTreeMap<Queue, QueueStats> = [Queue::Realtime, Queue::Batch]
            .into_iter()
            .map(|q| {
                let by_status = EventStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
                (
                    q,
                    QueueStats {
                        by_status,
                        oldest_pending: None,
                    },
                )
            })
            .collect();
        let counts = event::Entity::find()
            .select_only()
            .column(event::Column::Queue)
            .column(event::Column::Status)
            .column_as(event::Column::Id.count(), "count")
            .group_by(event::Column::Queue)
            .group_by(event::Column::Status)
            .into_model::<StatusCount>()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        for row in counts {
            let (Some(queue), Some(status)) =
                (queue_named(&row.queue), EventStatus::from_name(&row.status))
            else {
                continue;
            };
            if let Some(entry) = stats.get_mut(&queue) {
                entry
                    .by_status
                    .insert(status.as_str(), u64::try_from(row.count).unwrap_or(0));
            }
        }
        let oldest = event::Entity::find()
            .select_only()
            .column(event::Column::Queue)
            .column_as(event::Column::CreatedAt.min(), "oldest")
            .filter(event::Column::Status.eq(EventStatus::Pending.as_str()))
            .group_by(event::Column::Queue)
            .into_model::<OldestPending>()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        for row in oldest {
            if let Some(entry) = queue_named(&row.queue).and_then(|q| stats.get_mut(&q)) {
                entry.oldest_pending = row.oldest;
            }
        }
        Ok(stats)
    }

    /// Claims up to `limit` due, pending events of `queue` for `claimer`, for `lease`.
    ///
    /// One statement: `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING *`. On PostgreSQL the inner
    /// select takes row locks with `FOR UPDATE SKIP LOCKED`, so several execution instances claiming at
    /// once each get different events without waiting on each other; SQLite has a single writer, so the
    /// statement is atomic there as it is. A claim whose lease has lapsed (its instance died) is claimable
    /// again. Returned in row-key order, the events whose `ctx` cannot be read apart from the others (see
    /// `event_read`): claimed like them, for the caller to set apart ([`Store::set_apart_events`]).
    pub async fn claim_events(
        &self,
        queue: Queue,
        limit: u64,
        claimer: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let now = Utc::now();
        let lease_end = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut candidates = Query::select();
        candidates
            .column(event::Column::Id)
            .from(event::Entity)
            .and_where(event::Column::Queue.eq(queue.as_str()))
            .and_where(event::Column::Status.eq(EventStatus::Pending.as_str()))
            .cond_where(
                Condition::any()
                    .add(event::Column::ScheduledAt.is_null())
                    .add(event::Column::ScheduledAt.lte(now)),
            )
            .cond_where(
                Condition::any()
                    .add(event::Column::ClaimExpiresAt.is_null())
                    .add(event::Column::ClaimExpiresAt.lt(now)),
            )
            .order_by(event::Column::Id, Order::Asc)
            .limit(limit);
        if self.db.get_database_backend() == DbBackend::Postgres {
            candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let mut update = event::Entity::update_many()
            .col_expr(event::Column::ClaimedBy, Expr::value(claimer))
            .col_expr(event::Column::ClaimExpiresAt, Expr::value(lease_end))
            .col_expr(event::Column::UpdatedAt, Expr::value(now))
            .filter(Expr::col(event::Column::Id).in_subquery(candidates))
            .into_query();
        update.returning(Query::returning().exprs(event_read::returning()));
        // On an SQLite file, on the synchronous writer: the turn is held for SQLite's work only, not
        // for sqlx's hand-offs of every returned row.
        let read = match self
            .rows_on_writer("claim_events", &update, event_read::from_sqlite_row)
            .await
        {
            Some(read) => read?,
            None => {
                let rows = self.rows_on_pool("claim_events", &update).await?;
                event_read::from_rows(&rows).map_err(|e| self.error(e))?
            }
        };
        let mut claim = Claim::default();
        for read in read {
            match read.unreadable {
                None => claim.events.push(read.event),
                Some(reason) => claim.unreadable.push(Unreadable {
                    event: read.event,
                    reason,
                }),
            }
        }
        claim.events.sort_by_key(|e| e.id);
        claim.unreadable.sort_by_key(|u| u.event.id);
        Ok(claim)
    }

    /// Hands back the events still claimed under any of `claimers` (workflow runs that ended without
    /// settling them), so they are claimable at once. Returns how many were released.
    pub async fn release_event_claims(&self, claimers: &[String]) -> Result<u64, StoreError> {
        let _turn = self.write_turn("release_event_claims").await;
        let released = unclaimed_events()
            .filter(event::Column::ClaimedBy.is_in(claimers.iter().map(String::as_str)))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        Ok(released)
    }

    /// Applies workflow decisions to claimed events and releases their claims; only events still claimed
    /// by `claimer` are changed (a lapsed claim taken over by another instance is not). Returns how many
    /// rows changed.
    pub async fn update_claimed_events(
        &self,
        claimer: &str,
        updates: &[EventUpdate],
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn("update_claimed_events").await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut changed = 0;
        for update in updates {
            let mut query = unclaimed_events()
                .col_expr(event::Column::Status, Expr::value(update.status.as_str()))
                .col_expr(event::Column::UpdatedAt, Expr::value(now));
            if update.status.is_final() {
                query = query.col_expr(event::Column::FinishedAt, Expr::value(now));
            }
            if let Some((name, version)) = &update.template {
                query = query
                    .col_expr(event::Column::TemplateName, Expr::value(name.as_str()))
                    .col_expr(event::Column::TemplateVersion, Expr::value(*version))
                    .col_expr(event::Column::LinkedAt, Expr::value(now));
            }
            changed += query
                .filter(event::Column::Id.eq(update.row_key))
                .filter(event::Column::ClaimedBy.eq(claimer))
                .exec(&txn)
                .await
                .map_err(|e| self.error(e))?
                .rows_affected;
        }
        let finished: Vec<i64> = updates
            .iter()
            .filter(|u| u.status.is_final())
            .map(|u| u.row_key)
            .collect();
        let notified = self.enter_archive_feed(&txn, finished).await?;
        txn.commit().await.map_err(|e| self.error(e))?;
        if notified > 0 {
            self.webhooks_written();
        }
        Ok(changed)
    }
}

/// The queue stored as `name` (a column value from an older or newer version may be none).
pub fn queue_named(name: &str) -> Option<Queue> {
    name.parse().ok()
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

#[cfg(test)]
mod claim_tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use mc_plugin_api::{EventStatus, Queue};

    use super::EventUpdate;
    use crate::db;
    use crate::store::testing::{finalise_all, new_event, pg_pair, push, sqlite_store};
    use crate::store::{Store, Submission};

    /// Several claimers per instance, two instances, each on its own pool, claiming until the queue is
    /// empty: every event is claimed exactly once.
    async fn claims_are_exclusive(first: Store, second: Store) {
        const EVENTS: usize = 1_200;
        push(&first, Queue::Realtime, EVENTS).await;
        // Both pools connected, and every claimer starting at once: an instance whose first connection
        // opened late would otherwise find the queue already drained by the other.
        for store in [&first, &second] {
            store.count_events(None, None).await.expect("connect");
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(6));
        let mut tasks = Vec::new();
        for (instance, store) in [("A", first.clone()), ("B", second.clone())] {
            for worker in 0..3 {
                let store = store.clone();
                let claimer = format!("{instance}/{worker}");
                let start = std::sync::Arc::clone(&start);
                tasks.push(tokio::spawn(async move {
                    start.wait().await;
                    finalise_all(&store, &claimer, 20).await
                }));
            }
        }
        let mut all = Vec::new();
        let mut per_instance = [0usize; 2];
        for (index, task) in tasks.into_iter().enumerate() {
            let ids = task.await.expect("claimer task");
            per_instance[index / 3] += ids.len();
            all.extend(ids);
        }
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(
            all.len(),
            EVENTS,
            "events claimed in all (duplicates included)"
        );
        assert_eq!(distinct.len(), EVENTS, "an event was claimed twice");
        assert!(
            per_instance.iter().all(|n| *n > 0),
            "both instances should have claimed work: {per_instance:?}"
        );
        assert_eq!(
            first
                .count_events(Some(Queue::Realtime), Some("not_taken_into_account"))
                .await
                .unwrap(),
            EVENTS as u64
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_postgres_instances_never_claim_the_same_event() {
        let (_pg, first, second) = pg_pair().await;
        claims_are_exclusive(first, second).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_sqlite_pools_never_claim_the_same_event() {
        let (dir, first) = sqlite_store().await;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display());
        let second = Store::new(db::connect(&url, 4, Duration::from_secs(5)).await.unwrap());
        claims_are_exclusive(first, second).await;
    }

    /// A claim whose holder died is taken over once its lease lapses, and the late holder can no longer
    /// change the event.
    async fn lapsed_claims_are_taken_over(store: Store) {
        push(&store, Queue::Batch, 5).await;
        let dead = store
            .claim_events(Queue::Batch, 10, "dead", Duration::from_millis(800))
            .await
            .unwrap()
            .events;
        assert_eq!(dead.len(), 5);
        let early = store
            .claim_events(Queue::Batch, 10, "alive", Duration::from_secs(60))
            .await
            .unwrap()
            .events;
        assert!(
            early.is_empty(),
            "claimed while the lease still ran: {early:?}"
        );
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let taken = store
            .claim_events(Queue::Batch, 10, "alive", Duration::from_secs(60))
            .await
            .unwrap()
            .events;
        assert_eq!(taken.len(), 5);
        let updates: Vec<EventUpdate> = taken
            .iter()
            .map(|e| EventUpdate {
                row_key: e.id,
                status: EventStatus::PendingDelivery,
                template: Some(("welcome".to_owned(), 3)),
            })
            .collect();
        assert_eq!(
            store.update_claimed_events("dead", &updates).await.unwrap(),
            0
        );
        assert_eq!(
            store
                .update_claimed_events("alive", &updates)
                .await
                .unwrap(),
            5
        );
        let (event, _) = store
            .get_event(taken[0].public_id())
            .await
            .unwrap()
            .expect("event");
        assert_eq!(event.status, "pending_delivery");
        assert_eq!(event.template_name.as_deref(), Some("welcome"));
        assert_eq!(event.claimed_by, None, "the update releases the claim");
    }

    #[tokio::test]
    async fn postgres_lapsed_claims_are_taken_over() {
        let (_pg, store, _) = pg_pair().await;
        lapsed_claims_are_taken_over(store).await;
    }

    #[tokio::test]
    async fn sqlite_lapsed_claims_are_taken_over() {
        let (_dir, store) = sqlite_store().await;
        lapsed_claims_are_taken_over(store).await;
    }

    #[tokio::test]
    async fn scheduled_events_wait_for_their_time() {
        let (_dir, store) = sqlite_store().await;
        let mut later = new_event(1);
        later.scheduled_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
        let mut due = new_event(2);
        due.scheduled_at = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
        store
            .submit(
                1,
                &[Submission {
                    queue: Queue::Realtime,
                    events: vec![later, due],
                    idempotency: None,
                }],
            )
            .await
            .unwrap();
        let claimed = store
            .claim_events(Queue::Realtime, 10, "me", Duration::from_secs(60))
            .await
            .unwrap()
            .events;
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].ctx["n"], 2);
    }
}
