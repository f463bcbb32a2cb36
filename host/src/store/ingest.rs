//! Accepting events: many submissions in one transaction (the group commit), idempotency keys checked
//! and recorded in the same transaction as the events they guard.

use std::collections::HashMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use mc_plugin_api::services::Queue;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
};

use super::{Store, StoreError};
use crate::db::entities::event::{self, EventStatus};
use crate::db::entities::idempotency_key;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// Rows per INSERT statement: far below SQLite's and PostgreSQL's bound-parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

/// A validated event, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    /// "email" or "sms".
    pub channel: String,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    pub external_id: Option<String>,
    pub language: Option<String>,
    pub ctx: serde_json::Value,
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
        let _turn = self.write_turn().await;
        let events: usize = submissions.iter().map(|s| s.events.len()).sum();
        if events > 0
            && events <= ROWS_PER_STATEMENT
            && submissions.iter().all(|s| s.idempotency.is_none())
        {
            return self.submit_in_one_statement(instance_id, submissions).await;
        }
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let outcomes = self.submit_in(&txn, instance_id, submissions).await?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(outcomes)
    }

    /// The common case of [`Store::submit`]: no idempotency key and one INSERT's worth of rows. A single
    /// statement is atomic and, committed on its own, as durable as a transaction; it saves the BEGIN and
    /// COMMIT round trips to the database (on SQLite, to its connection thread), which every request of
    /// the group waits for.
    async fn submit_in_one_statement(
        &self,
        instance_id: u8,
        submissions: &[Submission],
    ) -> Result<Vec<SubmissionOutcome>, StoreError> {
        let now = Utc::now();
        let rows = submissions.iter().flat_map(|submission| {
            submission
                .events
                .iter()
                .map(|e| active_event(instance_id, submission.queue, e, now))
        });
        let mut keys = event::Entity::insert_many(rows)
            .exec_with_returning_keys(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        // Keys of one statement are allocated in row order, so ascending order is row order.
        keys.sort_unstable();
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
        let mut rows = Vec::new();
        for (submission, plan) in submissions.iter().zip(&plans) {
            if matches!(plan, Plan::Insert) {
                rows.extend(
                    submission
                        .events
                        .iter()
                        .map(|e| active_event(instance_id, submission.queue, e, now)),
                );
            }
        }
        let mut row_keys = Vec::with_capacity(rows.len());
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<event::ActiveModel> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
            let mut keys = event::Entity::insert_many(chunk)
                .exec_with_returning_keys(txn)
                .await
                .map_err(|e| self.error(e))?;
            // Keys of one statement are allocated in row order, so ascending order is row order.
            keys.sort_unstable();
            row_keys.extend(keys);
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

    /// Removes idempotency keys past their time; returns how many.
    pub async fn purge_expired_idempotency_keys(&self) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::ExpiresAt.lte(Utc::now()))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(result.rows_affected)
    }
}

/// The public ids recorded with a key (public, not row keys: another instance sharing the database may
/// be the one that replays them).
fn stored_public_ids(row: &idempotency_key::Model) -> Vec<i64> {
    row.event_ids
        .as_array()
        .map(|ids| ids.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default()
}

fn active_event(
    instance_id: u8,
    queue: Queue,
    event: &NewEvent,
    now: DateTime<Utc>,
) -> event::ActiveModel {
    event::ActiveModel {
        queue: Set(queue.as_str().to_owned()),
        status: Set(EventStatus::Pending.as_str().to_owned()),
        event_type: Set(event.event_type.clone()),
        channel: Set(event.channel.clone()),
        email: Set(event.email.clone()),
        mobile_phone: Set(event.mobile_phone.clone()),
        external_id: Set(event.external_id.clone()),
        language: Set(event.language.clone()),
        ctx: Set(event.ctx.clone()),
        scheduled_at: Set(event.scheduled_at),
        expires_at: Set(event.expires_at),
        created_at: Set(now),
        updated_at: Set(now),
        instance_id: Set(i32::from(instance_id)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::entities::event::split_public_id;
    use crate::store::testing::{PgTestDb, sqlite_store};

    fn event(n: u32) -> NewEvent {
        NewEvent {
            event_type: "ORDER".to_owned(),
            channel: "email".to_owned(),
            email: Some(format!("u{n}@example.com")),
            mobile_phone: None,
            external_id: Some("'; DROP TABLE events; --".to_owned()),
            language: None,
            ctx: serde_json::json!({ "n": n, "html": "<script>x</script>" }),
            scheduled_at: None,
            expires_at: None,
        }
    }

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
