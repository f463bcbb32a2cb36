//! Accepting events: many submissions in one transaction (the group commit), idempotency keys checked
//! and recorded in the same transaction as the events they guard.

use std::collections::HashMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use mc_plugin_api::{Channel, Queue};
use sea_orm::sea_query::{ExprTrait, Query, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, Statement, TransactionTrait, Value,
};

use super::event_row::{self, EVENT_ROW};
use super::{Store, StoreError};
use crate::db::entities::event;
use crate::db::entities::idempotency_key;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// Rows per INSERT statement: far below SQLite's and PostgreSQL's bound-parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

/// A validated event, ready to store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_type: String,
    pub channel: Channel,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    pub external_id: Option<String>,
    pub language: Option<String>,
    /// The personalisation data, a JSON object, as the client sent it: it is stored as it is.
    pub ctx: Box<serde_json::value::RawValue>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The idempotency key of a request, with a digest of the request it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: String,
    pub request_hash: String,
}

/// One request's events: stored all together or not at all.
#[derive(Clone, Debug)]
pub struct Submission {
    pub queue: Queue,
    pub events: Vec<NewEvent>,
    pub idempotency: Option<IdempotencyClaim>,
}

/// What became of a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmissionOutcome {
    /// Stored now; the public ids, in the submission's order.
    Created(Vec<i64>),
    /// The key was seen before with the same request: the public ids of the first time.
    Replayed(Vec<i64>),
    /// The key was seen before with another request.
    KeyReused,
}

/// How a submission will be handled inside the transaction.
enum Plan {
    Insert,
    Replay(Vec<i64>),
    /// Same key as an earlier submission of this group: answer as that one is answered.
    SameAs {
        index: usize,
        same_request: bool,
    },
    KeyReused,
}

impl Store {
    /// Stores every submission in one transaction (the group commit: one fsync for all of them) and says
    /// what became of each. Either the whole group is committed or, on a database error, none of it.
    pub async fn submit(
        &self,
        instance_id: u8,
        submissions: &[Submission],
    ) -> Result<Vec<SubmissionOutcome>, StoreError> {
        let _turn = self.write_turn("submit").await;
        if fit_one_statement(submissions) {
            let mut rows = EventRows::default();
            let now = Utc::now();
            for submission in submissions {
                rows.push(instance_id, submission, now);
            }
            return self
                .submit_in_one_statement(instance_id, submissions, rows)
                .await;
        }
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let outcomes = self.submit_in(&txn, instance_id, submissions).await?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(outcomes)
    }

    /// [`Store::submit`] with the rows of `submissions` converted already, by [`EventRows::push`] in
    /// order: the group-commit writer converts each submission as it arrives, while the previous group's
    /// commit is in flight. Rows that do not fit one statement, or keyed submissions, go the way of
    /// [`Store::submit`].
    pub async fn submit_converted(
        &self,
        instance_id: u8,
        submissions: &[Submission],
        rows: EventRows,
    ) -> Result<Vec<SubmissionOutcome>, StoreError> {
        let events: usize = submissions.iter().map(|s| s.events.len()).sum();
        if !fit_one_statement(submissions) || rows.rows != events {
            return self.submit(instance_id, submissions).await;
        }
        let _turn = self.write_turn("submit_converted").await;
        self.submit_in_one_statement(instance_id, submissions, rows)
            .await
    }

    /// The common case of [`Store::submit`]: no idempotency key and one INSERT's worth of rows. A single
    /// statement is atomic and, committed on its own, as durable as a transaction; it saves the BEGIN and
    /// COMMIT round trips to the database (on SQLite, to its connection thread), which every request of
    /// the group waits for.
    async fn submit_in_one_statement(
        &self,
        instance_id: u8,
        submissions: &[Submission],
        rows: EventRows,
    ) -> Result<Vec<SubmissionOutcome>, StoreError> {
        let keys = self.insert_events(&self.db, rows).await?;
        let mut keys = keys.into_iter();
        Ok(submissions
            .iter()
            .map(|submission| {
                SubmissionOutcome::Created(
                    keys.by_ref()
                        .take(submission.events.len())
                        .map(|key| event::public_id(i32::from(instance_id), key))
                        .collect(),
                )
            })
            .collect())
    }

    async fn submit_in(
        &self,
        txn: &DatabaseTransaction,
        instance_id: u8,
        submissions: &[Submission],
    ) -> Result<Vec<SubmissionOutcome>, StoreError> {
        let now = Utc::now();
        let plans = self.plan(txn, submissions, now).await?;

        // One multi-row INSERT (per ROWS_PER_STATEMENT) for every event of every new submission.
        let mut row_keys = Vec::new();
        let mut rows = EventRows::default();
        for (submission, plan) in submissions.iter().zip(&plans) {
            if !matches!(plan, Plan::Insert) {
                continue;
            }
            for event in &submission.events {
                if rows.rows == ROWS_PER_STATEMENT {
                    row_keys.extend(self.insert_events(txn, std::mem::take(&mut rows)).await?);
                }
                rows.push_event(instance_id, submission.queue, event, now);
            }
        }
        if rows.rows > 0 {
            row_keys.extend(self.insert_events(txn, rows).await?);
        }

        // Hand the keys out in submission order, and record the new idempotency keys.
        let mut next = row_keys.into_iter();
        let mut outcomes: Vec<SubmissionOutcome> = Vec::with_capacity(submissions.len());
        let mut new_keys = Vec::new();
        for (index, (submission, plan)) in submissions.iter().zip(plans).enumerate() {
            let outcome = match plan {
                Plan::Insert => {
                    let ids: Vec<i64> = next
                        .by_ref()
                        .take(submission.events.len())
                        .map(|key| event::public_id(i32::from(instance_id), key))
                        .collect();
                    if let Some(claim) = &submission.idempotency {
                        new_keys.push(idempotency_key::ActiveModel {
                            key: Set(claim.key.clone()),
                            request_hash: Set(claim.request_hash.clone()),
                            queue: Set(submission.queue.as_str().to_owned()),
                            event_ids: Set(serde_json::json!(ids)),
                            created_at: Set(now),
                            expires_at: Set(now + ChronoDuration::hours(IDEMPOTENCY_TTL_HOURS)),
                        });
                    }
                    SubmissionOutcome::Created(ids)
                }
                Plan::Replay(ids) => SubmissionOutcome::Replayed(ids),
                Plan::KeyReused => SubmissionOutcome::KeyReused,
                Plan::SameAs {
                    index: first,
                    same_request,
                } => {
                    debug_assert!(first < index);
                    match (&outcomes[first], same_request) {
                        (SubmissionOutcome::Created(ids), true) => {
                            SubmissionOutcome::Replayed(ids.clone())
                        }
                        _ => SubmissionOutcome::KeyReused,
                    }
                }
            };
            outcomes.push(outcome);
        }
        if !new_keys.is_empty() {
            idempotency_key::Entity::insert_many(new_keys)
                .exec_without_returning(txn)
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(outcomes)
    }

    /// Decides, for each submission, whether to insert it or answer from an idempotency key.
    async fn plan(
        &self,
        txn: &DatabaseTransaction,
        submissions: &[Submission],
        now: DateTime<Utc>,
    ) -> Result<Vec<Plan>, StoreError> {
        let keys: Vec<&str> = submissions
            .iter()
            .filter_map(|s| s.idempotency.as_ref().map(|c| c.key.as_str()))
            .collect();
        let mut known: HashMap<String, idempotency_key::Model> = HashMap::new();
        if !keys.is_empty() {
            // An expired key no longer protects anything: forget it, so it can be used again.
            idempotency_key::Entity::delete_many()
                .filter(idempotency_key::Column::Key.is_in(keys.iter().copied()))
                .filter(idempotency_key::Column::ExpiresAt.lte(now))
                .exec(txn)
                .await
                .map_err(|e| self.error(e))?;
            for row in idempotency_key::Entity::find()
                .filter(idempotency_key::Column::Key.is_in(keys.iter().copied()))
                .all(txn)
                .await
                .map_err(|e| self.error(e))?
            {
                known.insert(row.key.clone(), row);
            }
        }
        let mut first_use: HashMap<&str, (usize, &str)> = HashMap::new();
        let mut plans = Vec::with_capacity(submissions.len());
        for (index, submission) in submissions.iter().enumerate() {
            let Some(claim) = &submission.idempotency else {
                plans.push(Plan::Insert);
                continue;
            };
            if let Some(row) = known.get(&claim.key) {
                plans.push(if row.request_hash == claim.request_hash {
                    Plan::Replay(stored_public_ids(row))
                } else {
                    Plan::KeyReused
                });
            } else if let Some((first, hash)) = first_use.get(claim.key.as_str()) {
                plans.push(Plan::SameAs {
                    index: *first,
                    same_request: *hash == claim.request_hash,
                });
            } else {
                first_use.insert(&claim.key, (index, &claim.request_hash));
                plans.push(Plan::Insert);
            }
        }
        Ok(plans)
    }

    /// The INSERT of `rows` new events (at most [`ROWS_PER_STATEMENT`]), answering their row keys on
    /// PostgreSQL (see [`Store::insert_events`] for SQLite). Built by sea-query once per row count and
    /// kept (at most [`ROWS_PER_STATEMENT`] texts, about 5 MB if every count occurs): a group's statement
    /// is then its values, converted ahead by [`EventRows`], and this text.
    pub(super) fn insert_sql(&self, rows: usize) -> String {
        let mut cache = self
            .insert_sql
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(rows)
            .or_insert_with(|| {
                let mut insert = Query::insert();
                insert
                    .into_table(event::Entity)
                    .columns(event_row::columns());
                for _ in 0..rows {
                    // Placeholders only: the statement is kept as text, its values come from EventRows.
                    insert.values_panic(event_row::columns().map(|column| {
                        let placeholder = SimpleExpr::from(0);
                        // `ctx` is bound as the text the client sent and stored as it is: SQLite keeps
                        // JSON as text, and PostgreSQL's `json` column checks the text without
                        // rebuilding it.
                        if matches!(column, event::Column::Ctx) && !self.is_sqlite() {
                            placeholder.cast_as("json")
                        } else {
                            placeholder
                        }
                    }));
                }
                if !self.is_sqlite() {
                    insert.returning_col(event::Column::Id);
                }
                self.db.get_database_backend().build(&insert).sql
            })
            .clone()
    }

    /// Inserts `rows` as new events in one statement and returns their row keys in row order.
    ///
    /// On SQLite the statement has no `RETURNING`: sqlx hands each returned row from SQLite's thread to
    /// ours as a message of its own, one wake-up per event. One statement's rows get consecutive keys
    /// there instead (SQLite gives each new row one more than the largest key so far, and this process is
    /// the only writer while it runs, by [`Store::write_turn`] and SQLite's write lock), so the keys are
    /// the `rows` up to the last one inserted.
    async fn insert_events(
        &self,
        conn: &impl ConnectionTrait,
        rows: EventRows,
    ) -> Result<Vec<i64>, StoreError> {
        let count = rows.rows;
        let backend = conn.get_database_backend();
        let statement =
            Statement::from_sql_and_values(backend, self.insert_sql(count), rows.values);
        if backend == DbBackend::Sqlite {
            let done = conn
                .execute_raw(statement)
                .await
                .map_err(|e| self.error(e))?;
            let last = done.last_insert_id() as i64;
            if done.rows_affected() != count as u64 || last < count as i64 {
                return Err(StoreError::Database(DbErr::Custom(format!(
                    "an INSERT of {count} events stored {} rows, the last with key {last}",
                    done.rows_affected()
                ))));
            }
            return Ok((last - count as i64 + 1..=last).collect());
        }
        let answered = conn
            .query_all_raw(statement)
            .await
            .map_err(|e| self.error(e))?;
        let mut keys = answered
            .iter()
            .map(|row| row.try_get_by_index::<i64>(0))
            .collect::<Result<Vec<i64>, _>>()
            .map_err(|e| self.error(e))?;
        // Keys of one statement are allocated in row order, so ascending order is row order.
        keys.sort_unstable();
        Ok(keys)
    }

    /// Removes idempotency keys past their time; returns how many.
    pub async fn purge_expired_idempotency_keys(&self) -> Result<u64, StoreError> {
        let _turn = self.write_turn("purge_expired_idempotency_keys").await;
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::ExpiresAt.lte(Utc::now()))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(result.rows_affected)
    }
}

/// Whether `submissions` can be stored by one autocommitted INSERT (see [`one_statement_fits`]).
fn fit_one_statement(submissions: &[Submission]) -> bool {
    let events: usize = submissions.iter().map(|s| s.events.len()).sum();
    one_statement_fits(events, submissions.iter().any(|s| s.idempotency.is_some()))
}

/// Whether a group of `events` rows can be stored by one autocommitted INSERT: some rows, no more than
/// one statement's worth, and no idempotency key (`keyed`) to check and record with them. The
/// group-commit writer asks it as a group grows, to know whether converting its rows ahead is worth it.
pub fn one_statement_fits(events: usize, keyed: bool) -> bool {
    events > 0 && events <= ROWS_PER_STATEMENT && !keyed
}

/// The public ids recorded with a key (public, not row keys: another instance sharing the database may
/// be the one that replays them).
fn stored_public_ids(row: &idempotency_key::Model) -> Vec<i64> {
    row.event_ids
        .as_array()
        .map(|ids| ids.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default()
}

/// New events converted into the values of their rows, in the order of [`EVENT_ROW`], ready for
/// [`Store::insert_events`].
#[derive(Default)]
pub struct EventRows {
    values: Vec<Value>,
    rows: usize,
}

impl EventRows {
    /// Appends the rows of `submission`'s events, accepted at `now`.
    pub fn push(&mut self, instance_id: u8, submission: &Submission, now: DateTime<Utc>) {
        for event in &submission.events {
            self.push_event(instance_id, submission.queue, event, now);
        }
    }

    fn push_event(&mut self, instance_id: u8, queue: Queue, event: &NewEvent, now: DateTime<Utc>) {
        let instance_id = i32::from(instance_id);
        self.values.extend(
            EVENT_ROW
                .iter()
                .map(|(_, source)| source(queue, event).value(now, instance_id)),
        );
        self.rows += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entities::event::split_public_id;
    use crate::store::testing::{PgTestDb, sqlite_store, verbatim_event as event};

    fn keyed(queue: Queue, events: Vec<NewEvent>, key: &str, hash: &str) -> Submission {
        Submission {
            queue,
            events,
            idempotency: Some(IdempotencyClaim {
                key: key.to_owned(),
                request_hash: hash.to_owned(),
            }),
        }
    }

    async fn exercise(store: &Store) {
        // One group: a plain event, a keyed batch, the same key and request again, the same key with
        // another request.
        let outcomes = store
            .submit(
                7,
                &[
                    Submission {
                        queue: Queue::Realtime,
                        events: vec![event(1)],
                        idempotency: None,
                    },
                    keyed(Queue::Batch, vec![event(2), event(3), event(4)], "k1", "h1"),
                    keyed(Queue::Batch, vec![event(2), event(3), event(4)], "k1", "h1"),
                    keyed(Queue::Batch, vec![event(9)], "k1", "other"),
                ],
            )
            .await
            .expect("submit");
        let SubmissionOutcome::Created(single) = &outcomes[0] else {
            panic!("{outcomes:?}")
        };
        let SubmissionOutcome::Created(batch) = &outcomes[1] else {
            panic!("{outcomes:?}")
        };
        assert_eq!(batch.len(), 3);
        assert!(
            batch.windows(2).all(|w| w[0] < w[1]),
            "ids in submission order"
        );
        assert_eq!(outcomes[2], SubmissionOutcome::Replayed(batch.clone()));
        assert_eq!(outcomes[3], SubmissionOutcome::KeyReused);
        for id in single.iter().chain(batch) {
            assert_eq!(split_public_id(*id).0, 7, "instance id in the top byte");
        }
        assert_eq!(store.count_events(None, None).await.unwrap(), 4);

        // A later group replays from the stored key, and the stored rows read back verbatim.
        let later = store
            .submit(7, &[keyed(Queue::Batch, vec![event(2)], "k1", "h1")])
            .await
            .unwrap();
        assert_eq!(later, vec![SubmissionOutcome::Replayed(batch.clone())]);
        assert_eq!(store.count_events(None, None).await.unwrap(), 4);
        let (stored, _) = store.get_event(batch[0]).await.unwrap().expect("stored");
        assert_eq!(
            stored.external_id.as_deref(),
            Some("'; DROP TABLE events; --")
        );
        assert_eq!(stored.ctx["html"], "<script>x</script>");
        assert_eq!(stored.queue, "batch");
        // An id with another instance byte is not this event.
        let foreign = crate::db::entities::event::public_id(8, split_public_id(batch[0]).1);
        assert!(store.get_event(foreign).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_keys_are_purged_and_free_again() {
        use sea_orm::sea_query::Expr;
        let (_dir, store) = sqlite_store().await;
        store
            .submit(1, &[keyed(Queue::Realtime, vec![event(1)], "old", "h")])
            .await
            .unwrap();
        assert_eq!(
            store.purge_expired_idempotency_keys().await.unwrap(),
            0,
            "not expired yet"
        );
        idempotency_key::Entity::update_many()
            .col_expr(
                idempotency_key::Column::ExpiresAt,
                Expr::value(Utc::now() - ChronoDuration::seconds(1)),
            )
            .exec(store.connection())
            .await
            .unwrap();
        assert_eq!(store.purge_expired_idempotency_keys().await.unwrap(), 1);
        let again = store
            .submit(1, &[keyed(Queue::Realtime, vec![event(2)], "old", "other")])
            .await
            .unwrap();
        assert!(
            matches!(again[0], SubmissionOutcome::Created(_)),
            "{again:?}"
        );
    }

    /// Groups without keys: within one statement's worth of rows (one autocommitted INSERT) and beyond
    /// it (a transaction of several): each submission gets its own ids, in order, all stored.
    async fn unkeyed_groups(store: &Store) {
        for sizes in [vec![1, 3, 2], vec![400, 150, 1]] {
            let submissions: Vec<Submission> = sizes
                .iter()
                .map(|n| Submission {
                    queue: Queue::Realtime,
                    events: (0..*n).map(|i| event(i as u32)).collect(),
                    idempotency: None,
                })
                .collect();
            let before = store.count_events(None, None).await.unwrap();
            let outcomes = store.submit(3, &submissions).await.expect("submit");
            let mut all = Vec::new();
            for (outcome, n) in outcomes.iter().zip(&sizes) {
                let SubmissionOutcome::Created(ids) = outcome else {
                    panic!("{outcome:?}")
                };
                assert_eq!(ids.len(), *n);
                all.extend(ids.iter().copied());
            }
            assert!(
                all.windows(2).all(|w| w[0] < w[1]),
                "ids in submission order"
            );
            let total: usize = sizes.iter().sum();
            assert_eq!(
                store.count_events(None, None).await.unwrap(),
                before + total as u64
            );
            let (last, _) = store
                .get_event(*all.last().unwrap())
                .await
                .unwrap()
                .expect("stored");
            assert_eq!(last.ctx["n"], sizes.last().copied().unwrap() as u64 - 1);
        }
    }

    /// Stores that write one database at once, one of them on the pool of another (as the group-commit
    /// writer is) and one on a pool of its own (as another process is): every id answered is the id of
    /// the event it was answered for. On SQLite the ids are computed from the last key an INSERT made.
    async fn ids_answer_for_their_own_events(stores: [Store; 3]) {
        let mut writers = Vec::new();
        for (w, store) in stores.into_iter().enumerate() {
            writers.push(tokio::spawn(async move {
                let mut answered = Vec::new();
                for round in 0..25u32 {
                    let submissions: Vec<Submission> = (0..1 + round % 4)
                        .map(|s| Submission {
                            queue: Queue::Realtime,
                            events: (0..1 + (round + s) % 7)
                                .map(|i| event(w as u32 * 100_000 + round * 100 + s * 10 + i))
                                .collect(),
                            idempotency: None,
                        })
                        .collect();
                    let outcomes = store.submit(2, &submissions).await.expect("submit");
                    for (submission, outcome) in submissions.iter().zip(outcomes) {
                        let SubmissionOutcome::Created(ids) = outcome else {
                            panic!("{outcome:?}")
                        };
                        assert_eq!(ids.len(), submission.events.len());
                        for (id, sent) in ids.into_iter().zip(&submission.events) {
                            answered.push((id, sent.email.clone()));
                        }
                    }
                }
                (store, answered)
            }));
        }
        let mut seen = std::collections::HashSet::new();
        for writer in writers {
            let (store, answered) = writer.await.expect("writer");
            for (id, email) in answered {
                assert!(seen.insert(id), "id {id} answered twice");
                let (stored, _) = store.get_event(id).await.unwrap().expect("stored");
                assert_eq!(stored.email, email, "id {id}");
            }
        }
    }

    /// A `ctx` is stored as the client sent it, spacing and key order included, on both paths (one
    /// autocommitted INSERT, and a transaction with an idempotency key). With `jsonb` PostgreSQL would
    /// have rewritten both.
    async fn ctx_is_stored_as_sent(store: &Store) {
        use sea_orm::QuerySelect;
        const SENT: &str = r#"{"z": 1,  "a": [2, 3], "html": "<b>"}"#;
        let mut sent = event(1);
        sent.ctx = serde_json::value::RawValue::from_string(SENT.to_owned()).expect("raw ctx");
        let keyed = IdempotencyClaim {
            key: "as-sent".to_owned(),
            request_hash: "h".to_owned(),
        };
        for idempotency in [None, Some(keyed)] {
            let outcomes = store
                .submit(
                    1,
                    &[Submission {
                        queue: Queue::Realtime,
                        events: vec![sent.clone()],
                        idempotency,
                    }],
                )
                .await
                .expect("submit");
            let SubmissionOutcome::Created(ids) = &outcomes[0] else {
                panic!("{outcomes:?}")
            };
            let (_, key) = split_public_id(ids[0]);
            let stored: Option<String> = event::Entity::find_by_id(key)
                .select_only()
                .column_as(
                    sea_orm::sea_query::Expr::col(event::Column::Ctx).cast_as("text"),
                    "ctx",
                )
                .into_tuple()
                .one(store.connection())
                .await
                .expect("read ctx");
            assert_eq!(stored.as_deref(), Some(SENT));
        }
    }

    #[tokio::test]
    async fn sqlite_ctx_is_stored_as_sent() {
        let (_dir, store) = sqlite_store().await;
        ctx_is_stored_as_sent(&store).await;
    }

    #[tokio::test]
    async fn postgres_ctx_is_stored_as_sent() {
        let (_pg, store, _) = crate::store::testing::pg_pair().await;
        ctx_is_stored_as_sent(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn sqlite_ids_answer_for_their_own_events_under_concurrent_writers() {
        let (dir, store) = sqlite_store().await;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display());
        let timeout = std::time::Duration::from_secs(5);
        let dedicated = store.with_connection(crate::db::connect(&url, 1, timeout).await.unwrap());
        let other = Store::new(crate::db::connect(&url, 2, timeout).await.unwrap());
        ids_answer_for_their_own_events([store, dedicated, other]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn postgres_ids_answer_for_their_own_events_under_concurrent_writers() {
        let (pg, one, two) = crate::store::testing::pg_pair().await;
        let timeout = std::time::Duration::from_secs(5);
        let dedicated =
            one.with_connection(crate::db::connect(pg.url(), 1, timeout).await.unwrap());
        ids_answer_for_their_own_events([one, dedicated, two]).await;
    }

    #[tokio::test]
    async fn sqlite_unkeyed_groups() {
        let (_dir, store) = sqlite_store().await;
        unkeyed_groups(&store).await;
    }

    #[tokio::test]
    async fn postgres_unkeyed_groups() {
        let (_pg, store, _) = crate::store::testing::pg_pair().await;
        unkeyed_groups(&store).await;
    }

    #[tokio::test]
    async fn sqlite_groups_keys_and_replays() {
        let (_dir, store) = sqlite_store().await;
        exercise(&store).await;
    }

    #[tokio::test]
    async fn postgres_groups_keys_and_replays() {
        let pg = PgTestDb::create().await;
        let conn = crate::db::connect(pg.url(), 2, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        crate::db::migrate(&conn).await.unwrap();
        exercise(&Store::new(conn)).await;
    }
}
