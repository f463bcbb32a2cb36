//! The group-commit writer's own SQLite connection, driven synchronously on the writer's thread.
//!
//! Through sqlx every commit crossed three threads: the writer handed the statement to sqlx's SQLite
//! thread, that thread handed the result back, and the writer answered the requests. On this 2-core
//! machine each hand-off waited for a CPU, and the writer was woken for every request to convert its
//! rows (BENCHMARKS.md, session 4). Here the writer thread runs the transaction itself on a rusqlite
//! connection (the same SQLite library sqlx links, `libsqlite3-sys`), and a request wakes it only when
//! it is idle (BENCHMARKS.md, session 5).
//!
//! The commit does not wait for the disk inside the write turn: it is made with `synchronous = NORMAL`,
//! which in WAL mode writes the transaction's frames to the log without syncing it, and once the turn
//! is given back the writer syncs the log file itself, before any request of the group is answered. The
//! 201 still follows the event reaching the disk; what changes is that the other writers (the
//! pipeline's claims and outcomes) go on during the fsync instead of queueing behind it, which was most
//! of an ingest turn (BENCHMARKS.md, session 13). The log cannot be replaced in between: SQLite starts
//! it again only after a checkpoint copied every frame into the database file and synced that, and
//! never removes it while a connection (this one) is open.
//!
//! Only groups without idempotency keys come this way: keyed groups, and the retry of a group that
//! failed, go through [`Store::submit`] as before. The rows written are the rows sea-orm writes (the
//! INSERT text is the store's, values encoded as sqlx encodes them), which the tests check.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{ErrorCode, TransactionBehavior, params_from_iter};
use sea_orm::DbErr;

use super::event_row::{EVENT_ROW, SqliteCell};
use super::{Store, StoreError, Submission, SubmissionOutcome, WriteGate};
use crate::db;
use crate::db::entities::event;

/// A connection for storing groups of new events on an SQLite file; see the module docs.
pub struct SqliteIngest {
    conn: rusqlite::Connection,
    /// The store's write turn, shared with every other writer of this process.
    gate: Arc<WriteGate>,
    /// The one-row INSERT of a new event, as the store builds it.
    insert: String,
    /// The database's write-ahead log (`<file>-wal`), synced after each commit.
    log: PathBuf,
    /// The database, for error messages.
    target: String,
}

impl Store {
    /// A synchronous ingest connection to the SQLite file of `url`, or `None` when the store is not on
    /// an SQLite file (PostgreSQL, or an in-memory database that only the pool's connections can see).
    pub fn sqlite_ingest(&self, url: &str) -> Result<Option<SqliteIngest>, StoreError> {
        let (Some(gate), Some(path)) = (&self.write_gate, db::sqlite_file(url)) else {
            return Ok(None);
        };
        let target = db::describe(&self.db);
        let conn = open(path).map_err(|e| classify(&target, e))?;
        // The writer syncs the log itself, after the write turn (see the module docs).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| classify(&target, e))?;
        let log = PathBuf::from(format!("{}-wal", conn.path().unwrap_or_default()));
        Ok(Some(SqliteIngest {
            conn,
            gate: Arc::clone(gate),
            insert: self.insert_sql(1),
            log,
            target,
        }))
    }
}

/// Opens the file with the settings of the pool's connections (`db::connect`): WAL, a durable commit
/// (`synchronous = FULL`, SQLite's default, said explicitly: a 201 promises the event is on disk), the
/// same busy timeout, foreign keys and no automatic checkpoint.
pub(super) fn open(path: PathBuf) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(db::SQLITE_BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // As the pool's: checkpoints run in the background (`db::checkpoint`), not in a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

impl SqliteIngest {
    /// Stores every submission in one transaction, accepted at `now`, and answers each with its ids, in
    /// order, once they are on disk. Called on the group-commit writer's thread, never on a runtime's:
    /// it waits for the write turn and then for the fsync of the log. On an error before the commit
    /// nothing is stored; if the log cannot be synced, the events are stored (and will be processed) but
    /// not promised: the error answers the group, whose clients may send them again.
    pub fn insert(
        &mut self,
        instance_id: u8,
        submissions: &[Submission],
        now: DateTime<Utc>,
    ) -> Result<Vec<SubmissionOutcome>, StoreError> {
        if submissions.iter().any(|s| s.idempotency.is_some()) {
            return Err(StoreError::Database(DbErr::Custom(
                "a submission with an idempotency key must go through Store::submit".to_owned(),
            )));
        }
        let outcomes = self.commit(instance_id, submissions, now)?;
        // The turn is free again: the other writers go on while the log reaches the disk.
        std::fs::File::open(&self.log)
            .and_then(|log| log.sync_data())
            .map_err(|e| StoreError::Unavailable {
                target: self.target.clone(),
                source: DbErr::Custom(format!(
                    "cannot sync the write-ahead log `{}`: {e}",
                    self.log.display()
                )),
            })?;
        Ok(outcomes)
    }

    /// The transaction of [`Self::insert`], in the write turn; its commit is not synced.
    fn commit(
        &mut self,
        instance_id: u8,
        submissions: &[Submission],
        now: DateTime<Utc>,
    ) -> Result<Vec<SubmissionOutcome>, StoreError> {
        let _turn = self.gate.take_blocking("ingest");
        let target = &self.target;
        let failed = |e| classify(target, e);
        let txn = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let mut outcomes = Vec::with_capacity(submissions.len());
        {
            let mut statement = txn.prepare_cached(&self.insert).map_err(failed)?;
            let now = timestamp(now);
            let instance = i32::from(instance_id);
            for submission in submissions {
                let mut ids = Vec::with_capacity(submission.events.len());
                for event in &submission.events {
                    // The values of the store's one row definition, in its order, on the stack.
                    let cells = EVENT_ROW.map(|(_, source)| SqliteCell {
                        cell: source(submission.queue, event),
                        accepted: &now,
                        instance_id: instance,
                    });
                    let key = statement.insert(params_from_iter(&cells)).map_err(failed)?;
                    ids.push(event::public_id(instance, key));
                }
                outcomes.push(SubmissionOutcome::Created(ids));
            }
        }
        txn.commit().map_err(failed)?;
        Ok(outcomes)
    }
}

/// A timestamp as sqlx writes a `DateTime<Utc>` to SQLite (RFC 3339, `+00:00`, as many fraction digits
/// as needed), so that the rows of both paths compare and decode alike.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A file that cannot be opened, read or written means the database is unavailable; anything else is
/// the statement's failure.
pub(super) fn classify(target: &str, error: rusqlite::Error) -> StoreError {
    let unavailable = matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::NotADatabase)
    );
    let source = DbErr::Custom(format!("SQLite: {error}"));
    if unavailable {
        StoreError::Unavailable {
            target: target.to_owned(),
            source,
        }
    } else {
        StoreError::Database(source)
    }
}

#[cfg(test)]
mod tests {
    use mc_plugin_api::Queue;
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};

    use super::*;
    use crate::db::entities::event::split_public_id;
    use crate::store::testing::{refuse_events_to, sqlite_store, verbatim_event};
    use crate::store::{IdempotencyClaim, NewEvent};

    /// Every column set, and a `ctx` with odd spacing (stored as sent).
    fn event(n: u32) -> NewEvent {
        NewEvent {
            language: Some("fr".to_owned()),
            ctx: serde_json::value::RawValue::from_string(format!(r#"{{"n": {n},  "a":[1]}}"#))
                .unwrap(),
            scheduled_at: Some(
                DateTime::parse_from_rfc3339("2026-11-22T10:00:00.123456789Z")
                    .unwrap()
                    .to_utc(),
            ),
            expires_at: Some(
                DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                    .unwrap()
                    .to_utc(),
            ),
            ..verbatim_event(n)
        }
    }

    fn plain(queue: Queue, events: Vec<NewEvent>) -> Submission {
        Submission {
            queue,
            events,
            idempotency: None,
        }
    }

    /// The file's url, as the server is configured with.
    fn url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display())
    }

    /// Every column as SQLite holds it, as text (`typeof` included), for comparing rows byte for byte.
    async fn stored_text(store: &Store, key: i64) -> Vec<String> {
        let columns = [
            "queue",
            "status",
            "event_type",
            "channel",
            "email",
            "mobile_phone",
            "external_id",
            "language",
            "ctx",
            "scheduled_at",
            "expires_at",
            "instance_id",
            "claimed_by",
            "created_at",
        ];
        let select = columns
            .iter()
            .map(|c| format!("typeof({c}) || ':' || coalesce(CAST({c} AS TEXT), '')"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = store
            .connection()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("SELECT {select} FROM events WHERE id = ?"),
                [key.into()],
            ))
            .await
            .unwrap()
            .expect("row");
        (0..columns.len())
            .map(|i| row.try_get_by_index::<String>(i).unwrap())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_synced_after_the_turn_is_the_one_sqlite_writes_the_commit_to() {
        let (dir, store) = sqlite_store().await;
        let mut ingest = store.sqlite_ingest(&url(&dir)).unwrap().expect("a file");
        let wal = dir.path().join("mc.db-wal");
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let ingest = tokio::task::spawn_blocking(move || {
            ingest
                .insert(9, &[plain(Queue::Batch, vec![event(1)])], Utc::now())
                .unwrap();
            ingest
        })
        .await
        .unwrap();
        assert_eq!(
            ingest.log.canonicalize().unwrap(),
            wal.canonicalize().unwrap()
        );
        assert!(
            std::fs::metadata(&wal).unwrap().len() > before,
            "the commit went to the log that was synced"
        );
        assert_eq!(
            ingest
                .conn
                .pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0))
                .unwrap(),
            1,
            "NORMAL: the commit itself does not sync"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_are_the_rows_sea_orm_writes() {
        let (dir, store) = sqlite_store().await;
        let mut ingest = store.sqlite_ingest(&url(&dir)).unwrap().expect("a file");
        let by_sea_orm = store
            .submit(9, &[plain(Queue::Batch, vec![event(1)])])
            .await
            .unwrap();
        let now = Utc::now();
        let by_rusqlite = tokio::task::spawn_blocking(move || {
            ingest.insert(9, &[plain(Queue::Batch, vec![event(1)])], now)
        })
        .await
        .unwrap()
        .unwrap();
        let [SubmissionOutcome::Created(a)] = &by_sea_orm[..] else {
            panic!("{by_sea_orm:?}")
        };
        let [SubmissionOutcome::Created(b)] = &by_rusqlite[..] else {
            panic!("{by_rusqlite:?}")
        };
        assert_eq!(split_public_id(b[0]).0, 9, "instance id in the top byte");
        let (a_key, b_key) = (split_public_id(a[0]).1, split_public_id(b[0]).1);
        let mut a = stored_text(&store, a_key).await;
        let mut b = stored_text(&store, b_key).await;
        // Accepted at different times, written alike.
        let (a_created, b_created) = (a.pop().unwrap(), b.pop().unwrap());
        assert_eq!(a, b);
        assert_eq!(b_created, format!("text:{}", timestamp(now)));
        let a_created = a_created.strip_prefix("text:").expect("text");
        assert!(a_created.ends_with("+00:00"), "{a_created}");
        DateTime::parse_from_rfc3339(a_created).expect("RFC 3339");
        // The entity reads it back, with the timestamps of the group.
        let model = event::Entity::find_by_id(b_key)
            .one(store.connection())
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(model.created_at, now);
        assert_eq!(model.updated_at, now);
        assert_eq!(model.ctx["n"], 1);
        assert_eq!(model.scheduled_at, event(1).scheduled_at);
        assert_eq!(
            model.external_id.as_deref(),
            Some("'; DROP TABLE events; --")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_gets_its_ids_in_order_and_fails_whole() {
        let (dir, store) = sqlite_store().await;
        let mut ingest = store.sqlite_ingest(&url(&dir)).unwrap().expect("a file");
        let group = vec![
            plain(Queue::Realtime, vec![event(1)]),
            plain(Queue::Batch, (2..6).map(event).collect()),
            plain(Queue::Realtime, vec![event(6)]),
        ];
        // A trigger refuses the sixth event: the whole group is refused and none of it stored.
        let trigger = refuse_events_to(&store, "u6@example.com").await;
        let (mut ingest, refused) = {
            let group = group.clone();
            tokio::task::spawn_blocking(move || {
                let refused = ingest.insert(2, &group, Utc::now());
                (ingest, refused)
            })
            .await
            .unwrap()
        };
        let error = refused.expect_err("refused by the trigger");
        assert!(matches!(error, StoreError::Database(_)), "{error:?}");
        assert!(error.to_string().contains("refused by the test"), "{error}");
        assert_eq!(store.count_events(None, None).await.unwrap(), 0);

        store
            .connection()
            .execute_unprepared(&format!("DROP TRIGGER {trigger}"))
            .await
            .unwrap();
        let outcomes = tokio::task::spawn_blocking(move || ingest.insert(2, &group, Utc::now()))
            .await
            .unwrap()
            .unwrap();
        let mut answered = Vec::new();
        for (outcome, n) in outcomes.iter().zip([1, 4, 1]) {
            let SubmissionOutcome::Created(ids) = outcome else {
                panic!("{outcome:?}")
            };
            assert_eq!(ids.len(), n);
            answered.extend(ids.iter().copied());
        }
        assert_eq!(store.count_events(None, None).await.unwrap(), 6);
        for (n, id) in (1..=6).zip(answered) {
            let (stored, _) = store.get_event(id).await.unwrap().expect("stored");
            assert_eq!(stored.email, Some(format!("u{n}@example.com")), "id {id}");
            assert_eq!(
                stored.queue,
                if n == 1 || n == 6 {
                    "realtime"
                } else {
                    "batch"
                }
            );
        }
    }

    #[tokio::test]
    async fn keyed_submissions_are_refused_and_memory_databases_have_none() {
        let (dir, store) = sqlite_store().await;
        let mut ingest = store.sqlite_ingest(&url(&dir)).unwrap().expect("a file");
        let keyed = Submission {
            queue: Queue::Realtime,
            events: vec![event(1)],
            idempotency: Some(IdempotencyClaim {
                key: "k".to_owned(),
                request_hash: "h".to_owned(),
            }),
        };
        let refused = ingest.insert(1, &[keyed], Utc::now());
        assert!(
            matches!(refused, Err(StoreError::Database(_))),
            "{refused:?}"
        );
        assert_eq!(store.count_events(None, None).await.unwrap(), 0);

        let memory = Store::new(
            db::connect("sqlite::memory:", 1, std::time::Duration::from_secs(5))
                .await
                .unwrap(),
        );
        assert!(memory.sqlite_ingest("sqlite::memory:").unwrap().is_none());
    }
}
