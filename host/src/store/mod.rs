//! The store: every query the host and its plugins make, behind one type.
//!
//! Other modules never build queries themselves; they call [`Store`] methods, so that the SQL of the
//! application lives in one place, runs on both backends, and is tested there. One file per concern
//! (`events.rs`, later templates and delivery logs).

mod archive;
mod bounces;
mod claims;
mod console;
mod deliveries;
mod event_read;
mod event_row;
mod events;
mod handover;
mod ingest;
mod monitoring;
mod quarantine;
mod reports;
mod secrets;
mod set_apart;
mod sqlite_ingest;
mod sqlite_rows;
mod sqlite_writer;
mod template_proofs;
mod templates;
#[cfg(test)]
pub(crate) mod testing;
mod time_sql;
mod webhooks;
mod write_turn;

use sea_orm::{DatabaseConnection, DbErr, RuntimeErr};

pub use archive::{ArchiveFilter, ArchiveStoreError, FeedCursor, FeedEntry, ReportRow, StoredPage};
pub use bounces::{BounceKind, BounceOutcome, BounceReport, BounceTarget};
pub use console::ConsoleSessionRow;
pub use deliveries::AttemptResult;
pub use events::{Claim, EventFilter, EventUpdate, QueueStats, Unreadable, queue_named};
pub use ingest::{
    EventRows, IdempotencyClaim, NewEvent, Submission, SubmissionOutcome, one_statement_fits,
};
pub use monitoring::MinuteTotals;
pub use quarantine::{
    NewQuarantine, QuarantineCursor, QuarantineFilter, QuarantineReason, quarantine_key,
};
pub use reports::{
    GroupKey, IncomingGroup, MAX_GROUPS, OtherStatuses, OutcomeGroup, QueueMoves, ReportScope,
};
pub use sqlite_ingest::SqliteIngest;
pub use webhooks::{
    ClaimedNotification, EndpointChange, EndpointPut, Finished, HistoryEntry, HistoryFilter,
    NewAttempt, NextState, PendingByEndpoint, RecordedAttempt, decode_events, encode_events,
};

use crate::db;
pub use write_turn::TurnObserver;
use write_turn::{WriteGate, WriteTurn};

/// Handle to the database; cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// On SQLite, the writes of this process take turns here (see `write_turn`). `None` on PostgreSQL,
    /// whose writers run concurrently.
    write_gate: Option<std::sync::Arc<WriteGate>>,
    /// On an SQLite file, once the server opened it: the synchronous writer of accepted outcome groups
    /// (see `sqlite_writer`), shared by every clone.
    sqlite_writer: std::sync::Arc<std::sync::OnceLock<sqlite_writer::SqliteWriter>>,
    /// The text of the INSERT of new events, by row count (see `ingest.rs`).
    insert_sql: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<usize, String>>>,
    /// Notified when webhook notifications are written, so `webhookDelivery` runs at once rather than
    /// at its next interval (see `webhooks::outbox`).
    webhook_wake: std::sync::Arc<tokio::sync::Notify>,
}

/// Errors of store operations, split by what the caller should do about them.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// No connection could be obtained or it broke: the database is down or unreachable. Callers answer
    /// 503 / "not ready" and retry later; the request itself was not at fault.
    #[error("database `{target}` is unavailable: {source}")]
    Unavailable {
        /// Which database (never the password).
        target: String,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// The database answered with an error (constraint, lock timeout, bad data).
    #[error("database error: {0}")]
    Database(#[source] DbErr),
}

impl Store {
    /// Wraps a pool made by [`db::connect`] (and migrated by [`db::migrate`]).
    pub fn new(db: DatabaseConnection) -> Self {
        let write_gate = (db.get_database_backend() == sea_orm::DbBackend::Sqlite)
            .then(|| std::sync::Arc::new(WriteGate::default()));
        Self {
            db,
            write_gate,
            sqlite_writer: Default::default(),
            insert_sql: Default::default(),
            webhook_wake: Default::default(),
        }
    }

    /// The same store on another pool of the same database (made by [`db::connect`]), sharing this one's
    /// write turn. The group-commit writer has one of its own (see `ingest::group_commit`).
    pub fn with_connection(&self, db: DatabaseConnection) -> Self {
        Self {
            db,
            write_gate: self.write_gate.clone(),
            sqlite_writer: self.sqlite_writer.clone(),
            insert_sql: self.insert_sql.clone(),
            webhook_wake: self.webhook_wake.clone(),
        }
    }

    /// Waits for this process's turn to write (SQLite only; see `write_turn`). Every public method that
    /// writes holds it for its whole transaction, named by `operation`; none of them calls another while
    /// holding it.
    async fn write_turn(&self, operation: &'static str) -> Option<WriteTurn<'_>> {
        match &self.write_gate {
            Some(gate) => Some(gate.take(operation).await),
            None => None,
        }
    }

    /// Tells `observer` of every write turn when it ends (SQLite only; PostgreSQL has no turns).
    pub fn observe_write_turns(&self, observer: TurnObserver) {
        if let Some(gate) = &self.write_gate {
            gate.observe(observer);
        }
    }

    /// Whether the database is SQLite (one writer at a time) rather than PostgreSQL.
    pub fn is_sqlite(&self) -> bool {
        self.write_gate.is_some()
    }

    /// The pool, for what the store does not cover yet (transactions spanning several calls, the
    /// migration at startup).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Checks that a connection can be obtained and answers; the readiness probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(|err| self.error(err))
    }

    /// Classifies a driver error: lost or unobtainable connections are [`StoreError::Unavailable`], the
    /// rest [`StoreError::Database`].
    fn error(&self, err: DbErr) -> StoreError {
        if is_unavailable(&err) {
            db::liveness::connection_lost();
            StoreError::Unavailable {
                target: db::describe(&self.db),
                source: err,
            }
        } else {
            StoreError::Database(err)
        }
    }
}

/// Whether `err` means "no working connection" rather than "the statement failed".
fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as SqlxError;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(err)) | DbErr::Query(RuntimeErr::SqlxError(err)) => {
            match &**err {
                SqlxError::Io(_)
                | SqlxError::Tls(_)
                | SqlxError::PoolTimedOut
                | SqlxError::PoolClosed
                | SqlxError::WorkerCrashed => true,
                SqlxError::Database(db) => db.code().is_some_and(|code| lost_server(&code)),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a server's SQLSTATE says that the server went away or refuses connections, rather than that
/// the statement was wrong: class `08` (connection exception), `57P01`–`57P03` (the server is shutting
/// down, crashed, or not accepting connections yet: what PostgreSQL answers the connections it terminates
/// on `pg_ctl stop` and those made during its recovery), `53300` (too many connections).
fn lost_server(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DatabaseTransaction, TransactionTrait};
    use std::time::Duration;

    async fn pragma(conn: &DatabaseTransaction, name: &str) -> String {
        testing::setting(conn, &format!("PRAGMA {name}")).await
    }

    #[tokio::test]
    async fn every_sqlite_connection_has_wal_busy_timeout_and_foreign_keys() {
        let (_dir, store) = testing::sqlite_store().await;
        // Two open transactions hold two distinct pooled connections.
        let first = store.connection().begin().await.expect("begin");
        let second = store.connection().begin().await.expect("begin");
        for conn in [&first, &second] {
            assert_eq!(pragma(conn, "journal_mode").await, "wal");
            assert_eq!(pragma(conn, "busy_timeout").await, "5000");
            assert_eq!(pragma(conn, "foreign_keys").await, "1");
            assert_eq!(
                pragma(conn, "synchronous").await,
                "2",
                "FULL, for durability"
            );
        }
        first.rollback().await.expect("rollback");
        second.rollback().await.expect("rollback");
    }

    #[tokio::test]
    async fn ping_of_unreachable_database_is_unavailable_not_a_query_error() {
        let db = db::connect("postgres://127.0.0.1:1/x", 1, Duration::from_millis(300))
            .await
            .expect("lazy pool");
        let store = Store::new(db);
        let err = store.ping().await.expect_err("nothing listens on port 1");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{message}");
        assert!(message.contains("127.0.0.1:1/x"), "{message}");

        let err = store
            .count_events(None, None)
            .await
            .expect_err("no database");
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    }

    #[test]
    fn a_server_going_away_is_unavailable_and_a_bad_statement_is_not() {
        // 57P01: what PostgreSQL answers the connections it terminates on `pg_ctl stop -m fast`.
        for code in ["57P01", "57P02", "57P03", "08006", "08003", "53300"] {
            assert!(lost_server(code), "{code}");
        }
        // Constraint violations, syntax errors, serialisation failures are the statement's fault.
        for code in ["23505", "42601", "40001", "57014"] {
            assert!(!lost_server(code), "{code}");
        }
    }
}
