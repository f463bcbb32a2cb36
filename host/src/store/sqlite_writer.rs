//! A synchronous SQLite connection for the pipeline's most frequent write: a group of attempts the relay
//! accepted, with nothing else to record (`Store::record_attempts`, the engine's outcome groups).
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
//! turns are in `mc_db_write_turns_total`, as `record_attempts`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use rusqlite::types::Value;

use super::deliveries::AttemptResult;
use super::sqlite_ingest::{classify, open, timestamp};
use super::{Store, StoreError, WriteGate};
use crate::db;
use mc_plugin_api::DeliveryStatus;

/// Prepared statements kept: one per group size, up to twice the engine's largest group.
const STATEMENTS_CACHED: usize = 64;

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
        let writer = self.sqlite_writer.get()?;
        let (sql, values) = sent_update(claimer, sent, Utc::now());
        let (conn, gate, target) = (
            Arc::clone(&writer.conn),
            Arc::clone(&writer.gate),
            writer.target.clone(),
        );
        let done = tokio::task::spawn_blocking(move || {
            let _turn = gate.take_blocking("record_attempts");
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let failed = |e| classify(&target, e);
            let txn = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            txn.prepare_cached(&sql)
                .and_then(|mut statement| statement.execute(rusqlite::params_from_iter(values)))
                .map_err(failed)?;
            txn.commit().map_err(failed)
        })
        .await;
        Some(done.unwrap_or_else(|e| {
            Err(StoreError::Database(sea_orm::DbErr::Custom(format!(
                "the SQLite writer's task failed: {e}"
            ))))
        }))
    }
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

    use crate::db::entities::delivery_log;
    use crate::store::testing::{plain_email_event, sqlite_store};
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
