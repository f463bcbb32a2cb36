//! A synchronous SQLite connection for the pipeline's frequent writes: a group of attempts the relay
//! accepted, with nothing else to record (`Store::record_attempts`, the engine's outcome groups), and the
//! claims and hand-overs: events claimed (`Store::claim_events`), linked and handed to delivery
//! (`handover`), attempts claimed (`Store::claim_due_deliveries`), each through [`Store::rows_on_writer`]
//! or [`Store::on_sqlite_writer`] with the statement sea-query builds for the pool.
//!
//! On SQLite the write turn is the pipeline's serial resource (`write_turn`), and through sqlx a turn
//! of `BEGIN`, one `UPDATE` and `COMMIT` crosses threads six times (each statement to sqlx's SQLite
//! thread and back), each hand-off waiting for a CPU on this 2-core machine: the pipeline bench measured
//! such turns holding the write turn 2.8 ms for 24 outcomes on average, the largest share of the turns'
//! time (BENCHMARKS.md, session 12). Here one blocking-pool thread takes the turn and runs the whole
//! transaction on a rusqlite connection (the SQLite library sqlx links), as the group-commit ingest
//! writer does (`sqlite_ingest`). The row written is the row the sea-orm path writes, which the tests
//! compare.
//!
//! Its commits are `synchronous = NORMAL`, as the pipeline pool's (`db::Commits::Deferred`): in WAL mode
//! such a commit survives a crash of the process, and only a power loss or an operating-system crash
//! can lose it, until the WAL is next synced, by a durable commit, the ingest writer's log sync or the
//! next background checkpoint (`db::checkpoint`, every 250 ms). What it loses is the record of
//! messages the relay accepted: their entries are still claimed, released when the instance starts
//! again, and sent again, duplicates within at-least-once (README, "Delivery guarantees"). The fsync it
//! saves was most of such a turn: the bench measured 1.4 ms per turn with it, 0.6 ms without.
//!
//! Statements run here are not in `mc_db_statements_total` (they do not go through the pool); their
//! turns are in `mc_db_write_turns_total`, under their operations' names.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use rusqlite::types::Value;

use super::deliveries::AttemptResult;
use super::sqlite_ingest::{classify, open, timestamp};
use super::{Store, StoreError, WriteGate};
use crate::db;
use mc_plugin_api::DeliveryStatus;
use sea_orm::sea_query::{SqliteQueryBuilder, Value as QueryValue, Values};

/// Prepared statements kept: one text per outcome group size (up to the engine's largest group), per
/// link size (a run's events of one template version) and per `INSERT` size of first attempts; a text
/// pushed out is prepared again.
const STATEMENTS_CACHED: usize = 256;

/// The connection and the store's write turn.
pub struct SqliteWriter {
    conn: Arc<Mutex<rusqlite::Connection>>,
    gate: Arc<WriteGate>,
    /// The database, for error messages.
    target: String,
}

impl Store {
    /// Opens the synchronous writer on the SQLite file of `url`, shared by every clone of this store.
    /// `false` (and nothing opened) when the store is not on an SQLite file; the pool then writes
    /// everything, as before.
    pub fn open_sqlite_writer(&self, url: &str) -> Result<bool, StoreError> {
        let (Some(gate), Some(path)) = (&self.write_gate, db::sqlite_file(url)) else {
            return Ok(false);
        };
        let target = db::describe(&self.db);
        let conn = open(path).map_err(|e| classify(&target, e))?;
        // One statement text per group size (at most the engine's largest group).
        conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
        // What this connection writes can be written again: a lost outcome leaves its entry claimed,
        // and the entry is sent again when the claim is released (see the module docs).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| classify(&target, e))?;
        let _ = self.sqlite_writer.set(SqliteWriter {
            conn: Arc::new(Mutex::new(conn)),
            gate: Arc::clone(gate),
            target,
        });
        Ok(true)
    }

    /// Records `sent`, attempts accepted and final with nothing else to do, on the synchronous writer:
    /// `None` when there is none (the caller records through the pool). Each entry still claimed by
    /// `claimer` turns `sent` with its Message-ID, as `record_attempts` does through the pool; an entry
    /// another sender took over is left alone.
    pub(super) async fn record_sent_synchronously(
        &self,
        claimer: &str,
        sent: &[&AttemptResult],
    ) -> Option<Result<(), StoreError>> {
        self.sqlite_writer.get()?;
        let (sql, values) = sent_update(claimer, sent, Utc::now());
        self.on_sqlite_writer("record_attempts", move |txn| {
            txn.prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(values))?;
            Ok(())
        })
        .await
    }

    /// Whether the synchronous writer is open (an SQLite file, once the server opened it).
    pub(super) fn has_sqlite_writer(&self) -> bool {
        self.sqlite_writer.get().is_some()
    }

    /// A failure of the synchronous writer's, classified as the writer's own are.
    pub(super) fn writer_error(&self, error: rusqlite::Error) -> StoreError {
        let target = self
            .sqlite_writer
            .get()
            .map_or("SQLite", |w| w.target.as_str());
        classify(target, error)
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the synchronous writer, on a blocking-pool
    /// thread that holds the write turn (as `operation`) from before `BEGIN` to after `COMMIT`, and
    /// commits it when `work` succeeds (nothing is written when it fails). `None` when the store has no
    /// such writer: the caller goes through the pool.
    pub(super) async fn on_sqlite_writer<T, F>(
        &self,
        operation: &'static str,
        work: F,
    ) -> Option<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let writer = self.sqlite_writer.get()?;
        let (conn, gate, target) = (
            Arc::clone(&writer.conn),
            Arc::clone(&writer.gate),
            writer.target.clone(),
        );
        let done = tokio::task::spawn_blocking(move || {
            let _turn = gate.take_blocking(operation);
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let failed = |e| classify(&target, e);
            let txn = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            let value = work(&txn).map_err(failed)?;
            txn.commit().map_err(failed)?;
            Ok(value)
        })
        .await;
        Some(done.unwrap_or_else(|e| {
            Err(StoreError::Database(sea_orm::DbErr::Custom(format!(
                "the SQLite writer's task failed: {e}"
            ))))
        }))
    }
}

/// A statement sea-query built, as the synchronous writer runs it: the text sea-orm would send to SQLite
/// (the same query, so both paths read and write the same rows) and its values in rusqlite's terms.
pub(super) fn for_writer(
    statement: &impl sea_orm::sea_query::QueryStatementWriter,
) -> rusqlite::Result<(String, Vec<Value>)> {
    let (sql, Values(values)) = statement.build(SqliteQueryBuilder);
    let values = values
        .into_iter()
        .map(to_sqlite)
        .collect::<Result<_, _>>()
        .map_err(|kind| {
            rusqlite::Error::ToSqlConversionFailure(
                format!("a {kind} value has no SQLite form on the synchronous writer").into(),
            )
        })?;
    Ok((sql, values))
}

impl Store {
    /// Runs one statement that returns rows (an `UPDATE … RETURNING`) in its own transaction on the
    /// synchronous writer, reading each row with `read`; `None` without a writer (see
    /// [`Store::on_sqlite_writer`]).
    pub(super) async fn rows_on_writer<T: Send + 'static>(
        &self,
        operation: &'static str,
        statement: &impl sea_orm::sea_query::QueryStatementWriter,
        read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Result<Vec<T>, StoreError>> {
        self.sqlite_writer.get()?;
        let (sql, values) = match for_writer(statement) {
            Ok(built) => built,
            Err(e) => return Some(Err(self.writer_error(e))),
        };
        self.on_sqlite_writer(operation, move |txn| {
            let mut prepared = txn.prepare_cached(&sql)?;
            let rows = prepared.query_map(rusqlite::params_from_iter(values), read)?;
            rows.collect()
        })
        .await
    }
}

impl Store {
    /// The other path of [`Store::rows_on_writer`]: the same statement through the pool, holding the
    /// write turn (on SQLite) as `operation`; the rows for the caller to read.
    pub(super) async fn rows_on_pool(
        &self,
        operation: &'static str,
        statement: &impl sea_orm::StatementBuilder,
    ) -> Result<Vec<sea_orm::QueryResult>, StoreError> {
        use sea_orm::ConnectionTrait;
        let _turn = self.write_turn(operation).await;
        let backend = self.db.get_database_backend();
        self.db
            .query_all_raw(backend.build(statement))
            .await
            .map_err(|e| self.error(e))
    }
}

/// A value as sqlx stores it in SQLite: booleans as 0 and 1, timestamps as RFC 3339 text, JSON as text.
/// The kinds the store's queries never bind are refused by name.
fn to_sqlite(value: QueryValue) -> Result<Value, &'static str> {
    let integer = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    Ok(match value {
        QueryValue::Bool(v) => integer(v.map(i64::from)),
        QueryValue::TinyInt(v) => integer(v.map(i64::from)),
        QueryValue::SmallInt(v) => integer(v.map(i64::from)),
        QueryValue::Int(v) => integer(v.map(i64::from)),
        QueryValue::BigInt(v) => integer(v),
        QueryValue::TinyUnsigned(v) => integer(v.map(i64::from)),
        QueryValue::SmallUnsigned(v) => integer(v.map(i64::from)),
        QueryValue::Unsigned(v) => integer(v.map(i64::from)),
        QueryValue::BigUnsigned(v) => match v {
            None => Value::Null,
            Some(v) => Value::Integer(i64::try_from(v).map_err(|_| "u64 above i64::MAX")?),
        },
        QueryValue::String(v) => v.map_or(Value::Null, Value::Text),
        QueryValue::Json(v) => v.map_or(Value::Null, |json| Value::Text(json.to_string())),
        QueryValue::ChronoDateTimeUtc(v) => v.map_or(Value::Null, |at| Value::Text(timestamp(at))),
        QueryValue::Float(_) | QueryValue::Double(_) => return Err("floating-point"),
        QueryValue::Bytes(_) => return Err("bytes"),
        _ => return Err("date, time or enum"),
    })
}

/// The `UPDATE` of a group of plain accepted attempts and its values: each entry's Message-ID in a
/// `CASE`, the claim released, `accepted_at` and `updated_at` now.
fn sent_update(claimer: &str, sent: &[&AttemptResult], now: DateTime<Utc>) -> (String, Vec<Value>) {
    let mut sql = String::from(
        "UPDATE \"delivery_logs\" SET \"claimed_by\" = NULL, \"claim_expires_at\" = NULL, \
         \"accepted_at\" = ?1, \"status\" = ?2, \"is_final\" = 1, \"error\" = NULL, \
         \"updated_at\" = ?1, \"message_id\" = CASE \"id\"",
    );
    let mut values = vec![
        Value::Text(timestamp(now)),
        Value::Text(DeliveryStatus::Sent.as_str().to_owned()),
        Value::Text(claimer.to_owned()),
    ];
    // Every parameter numbered, in the order of `values`.
    for result in sent {
        let n = values.len();
        sql.push_str(&format!(" WHEN ?{} THEN ?{}", n + 1, n + 2));
        values.push(Value::Integer(result.log_id));
        values.push(result.message_id.clone().map_or(Value::Null, Value::Text));
    }
    sql.push_str(" ELSE \"message_id\" END WHERE \"claimed_by\" = ?3 AND \"id\" IN (");
    for i in 0..sent.len() {
        // The entry's id, already a parameter of its WHEN.
        let id = 4 + 2 * i;
        sql.push_str(&if i == 0 {
            format!("?{id}")
        } else {
            format!(", ?{id}")
        });
    }
    sql.push(')');
    (sql, values)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mc_plugin_api::{DeliveryStatus, Queue};
    use sea_orm::{ConnectionTrait, EntityTrait, Statement};

    use crate::db::entities::{delivery_log, event};
    use crate::store::testing::{plain_email_event, sqlite_store, sqlite_store_with_writer};
    use crate::store::{AttemptResult, Store, Submission};

    const CLAIMER: &str = "inst/pid-1";

    /// `n` events linked and their first attempts claimed by [`CLAIMER`].
    async fn claimed_attempts(store: &Store, n: usize) -> Vec<delivery_log::Model> {
        let event = plain_email_event();
        let submission = Submission {
            queue: Queue::Realtime,
            events: vec![event; n],
            idempotency: None,
        };
        store.submit(1, &[submission]).await.unwrap();
        let lease = Duration::from_secs(600);
        let claim = store
            .claim_events(Queue::Realtime, n as u64, CLAIMER, lease)
            .await
            .unwrap();
        let items: Vec<(i64, String, i32)> = claim
            .events
            .iter()
            .map(|e| (e.id, "t".to_owned(), 1))
            .collect();
        store.enqueue_deliveries(CLAIMER, &items).await.unwrap();
        store
            .claim_due_deliveries(CLAIMER, n as u64, lease)
            .await
            .unwrap()
    }

    fn sent(entry: &delivery_log::Model) -> AttemptResult {
        AttemptResult {
            log_id: entry.id,
            status: DeliveryStatus::Sent,
            is_final: true,
            message_id: Some(format!("<mc.{}.1.x@example.com>", entry.event_id)),
            error: None,
            retry_at: None,
            quarantine: None,
            expire_event: false,
        }
    }

    /// The rows as sea-orm reads them, and the raw text of their timestamps.
    async fn rows(store: &Store) -> Vec<(delivery_log::Model, Option<String>)> {
        let models = delivery_log::Entity::find()
            .all(store.connection())
            .await
            .unwrap();
        let mut out = Vec::new();
        for model in models {
            let raw = store
                .connection()
                .query_one_raw(Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!(
                        "SELECT accepted_at FROM delivery_logs WHERE id = {}",
                        model.id
                    ),
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<Option<String>>("", "accepted_at")
                .unwrap();
            out.push((model, raw));
        }
        out
    }

    /// Each row's columns that do not depend on when it was written, and which of its timestamps are
    /// set, with the raw text of one (sea-orm's and the writer's timestamps must read alike).
    async fn event_rows(store: &Store) -> Vec<String> {
        let mut out = Vec::new();
        for e in event::Entity::find().all(store.connection()).await.unwrap() {
            out.push(format!(
                "{} {} {} {:?} {:?} {:?} {:?} linked:{} claim:{}",
                e.id,
                e.queue,
                e.status,
                e.claimed_by,
                e.template_name,
                e.template_version,
                e.ctx,
                e.linked_at.is_some(),
                e.claim_expires_at.is_some(),
            ));
        }
        out
    }

    async fn delivery_rows(store: &Store) -> Vec<String> {
        let mut out = Vec::new();
        for d in delivery_log::Entity::find()
            .all(store.connection())
            .await
            .unwrap()
        {
            out.push(format!(
                "{} {} {} {} {:?} {} {:?} {:?} {} {} {} {:?} claim:{} next:{} first:{}",
                d.id,
                d.event_id,
                d.attempt,
                d.channel,
                d.address,
                d.status,
                d.template_name,
                d.template_version,
                d.is_final,
                d.copied_to_event,
                d.priority,
                d.claimed_by,
                d.claim_expires_at.is_some(),
                d.next_attempt_at.is_some(),
                d.first_attempt_at.is_some(),
            ));
        }
        out
    }

    /// The raw text of a timestamp column of the first row of `table`.
    async fn raw_time(store: &Store, table: &str, column: &str) -> String {
        store
            .connection()
            .query_one_raw(Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                format!("SELECT {column} FROM {table} ORDER BY id LIMIT 1"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<String>("", column)
            .unwrap()
    }

    /// Events claimed, handed over (one of them no longer ours: skipped) and their attempts claimed, on
    /// the synchronous writer and through the pool: the same answers and the same rows.
    #[tokio::test]
    async fn claims_and_handovers_on_the_writer_are_the_pools() {
        let (_pool_dir, through_pool) = sqlite_store().await;
        let (_dir, synchronous) = sqlite_store_with_writer().await;
        let mut answers = Vec::new();
        for store in [&through_pool, &synchronous] {
            let mut email = plain_email_event();
            let mut sms = plain_email_event();
            sms.channel = mc_plugin_api::Channel::Sms;
            sms.mobile_phone = Some("+33600000000".to_owned());
            email.ctx =
                serde_json::value::RawValue::from_string(r#"{"n":1,"s":"é"}"#.to_owned()).unwrap();
            for (queue, events) in [
                (Queue::Batch, vec![email.clone(), sms.clone()]),
                (Queue::Realtime, vec![email, sms.clone(), sms]),
            ] {
                let submission = Submission {
                    queue,
                    events,
                    idempotency: None,
                };
                store.submit(1, &[submission]).await.unwrap();
            }
            let lease = Duration::from_secs(600);
            let mut claimed = Vec::new();
            for queue in [Queue::Realtime, Queue::Batch] {
                let claim = store.claim_events(queue, 10, CLAIMER, lease).await.unwrap();
                assert!(claim.unreadable.is_empty());
                claimed.extend(claim.events);
            }
            assert_eq!(claimed.len(), 5);
            // Another run took the last one over: not handed over.
            store
                .connection()
                .execute_raw(Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!(
                        "UPDATE events SET claimed_by = 'other' WHERE id = {}",
                        claimed[4].id
                    ),
                ))
                .await
                .unwrap();
            let items: Vec<(i64, String, i32)> = claimed
                .iter()
                .enumerate()
                .map(|(i, e)| (e.id, if i % 2 == 0 { "a" } else { "b" }.to_owned(), 3))
                .collect();
            let handed = store.enqueue_deliveries(CLAIMER, &items).await.unwrap();
            let due = store.claim_due_deliveries(CLAIMER, 3, lease).await.unwrap();
            let shape = |d: &delivery_log::Model| {
                (
                    d.id,
                    d.event_id,
                    d.priority,
                    d.claimed_by.clone(),
                    d.address.clone(),
                )
            };
            let claimed_shape: Vec<_> = claimed
                .iter()
                .map(|e| (e.id, e.queue.clone(), e.ctx.clone(), e.claimed_by.clone()))
                .collect();
            answers.push(format!(
                "{claimed_shape:?}
{handed}
{:?}",
                due.iter().map(shape).collect::<Vec<_>>()
            ));
            assert_eq!(handed, 4);
            assert_eq!(due.len(), 3);
            assert!(due.iter().all(|d| d.claim_expires_at.is_some()));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(
            event_rows(&through_pool).await,
            event_rows(&synchronous).await
        );
        assert_eq!(
            delivery_rows(&through_pool).await,
            delivery_rows(&synchronous).await
        );
        for (table, column) in [
            ("events", "linked_at"),
            ("events", "updated_at"),
            ("delivery_logs", "next_attempt_at"),
            ("delivery_logs", "claim_expires_at"),
        ] {
            let (a, b) = (
                raw_time(&through_pool, table, column).await,
                raw_time(&synchronous, table, column).await,
            );
            assert_eq!(a.get(10..11), b.get(10..11), "{table}.{column}: {a} / {b}");
            assert_eq!(a.get(19..20), b.get(19..20), "{table}.{column}: {a} / {b}");
            assert!(a.ends_with("+00:00") && b.ends_with("+00:00"), "{a} / {b}");
        }
    }

    #[tokio::test]
    async fn the_synchronous_writer_records_the_rows_the_pool_records() {
        let (_pool_dir, through_pool) = sqlite_store().await;
        let (dir, synchronous) = sqlite_store().await;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display());
        assert!(synchronous.open_sqlite_writer(&url).unwrap());
        for store in [&through_pool, &synchronous] {
            let claimed = claimed_attempts(store, 3).await;
            assert_eq!(claimed.len(), 3);
            // The third entry is no longer ours (another sender took it over): left alone.
            store
                .connection()
                .execute_raw(Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!(
                        "UPDATE delivery_logs SET claimed_by = 'other' WHERE id = {}",
                        claimed[2].id
                    ),
                ))
                .await
                .unwrap();
            let by_id = claimed.iter().map(|e| (e.id, e.clone())).collect();
            let results: Vec<AttemptResult> = claimed.iter().map(sent).collect();
            store
                .record_attempts(CLAIMER, &by_id, &results)
                .await
                .unwrap();
        }
        let (pool, sync) = (rows(&through_pool).await, rows(&synchronous).await);
        assert_eq!(pool.len(), 3);
        for ((a, a_raw), (b, b_raw)) in pool.iter().zip(&sync) {
            let shape = |m: &delivery_log::Model| {
                (
                    m.status.clone(),
                    m.is_final,
                    m.message_id.clone(),
                    m.error.clone(),
                    m.claimed_by.clone(),
                    m.claim_expires_at.is_some(),
                    m.accepted_at.is_some(),
                )
            };
            assert_eq!(shape(a), shape(b));
            // The same timestamp text: monitoring compares them as text.
            if let (Some(a_raw), Some(b_raw)) = (a_raw, b_raw) {
                assert_eq!(a_raw.get(10..11), b_raw.get(10..11), "{a_raw} / {b_raw}");
                assert_eq!(a_raw.get(19..20), b_raw.get(19..20), "{a_raw} / {b_raw}");
                assert!(a_raw.ends_with("+00:00") && b_raw.ends_with("+00:00"));
            } else {
                assert_eq!(a_raw.is_none(), b_raw.is_none());
            }
        }
        let (first, third) = (&sync[0].0, &sync[2].0);
        assert_eq!(first.status, DeliveryStatus::Sent.as_str());
        assert_eq!(
            first.message_id.as_deref(),
            Some(format!("<mc.{}.1.x@example.com>", first.event_id).as_str())
        );
        assert!(first.claimed_by.is_none() && first.accepted_at.is_some());
        assert_eq!(third.status, DeliveryStatus::Pending.as_str());
        assert_eq!(third.claimed_by.as_deref(), Some("other"));
    }
}
