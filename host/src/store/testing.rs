//! Test fixtures: a migrated SQLite store in a temporary directory, and a throw-away PostgreSQL
//! database per test so that concurrent test runs on the shared server never see each other's rows.

use std::time::Duration;

use sea_orm::ConnectionTrait;

use mc_plugin_api::services::Queue;
use message_center_tests::PostgresDatabase;

use super::{EventUpdate, NewEvent, Store, Submission};
use crate::db;
use crate::db::entities::event::EventStatus;

/// A store on a fresh, migrated SQLite file; keep the directory alive as long as the store.
pub(crate) async fn sqlite_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display());
    let conn = db::connect(&url, 4, Duration::from_secs(5))
        .await
        .expect("connect to SQLite");
    db::migrate(&conn).await.expect("migrate SQLite");
    (dir, Store::new(conn))
}

/// [`sqlite_store`] with the synchronous writer open, as the server opens it on an SQLite file.
pub(crate) async fn sqlite_store_with_writer() -> (tempfile::TempDir, Store) {
    let (dir, store) = sqlite_store().await;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display());
    assert!(store.open_sqlite_writer(&url).expect("open the writer"));
    (dir, store)
}

/// The one value `sql` answers on `conn` (a `PRAGMA` or a `SHOW`), as text.
pub(crate) async fn setting(conn: &impl ConnectionTrait, sql: &str) -> String {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<String>(0)
        .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
        .expect("the setting")
}

/// A new email event of type `T` to `a@example.com`, with an empty `ctx`.
pub(crate) fn plain_email_event() -> NewEvent {
    NewEvent {
        event_type: "T".to_owned(),
        channel: mc_plugin_api::Channel::Email,
        email: Some("a@example.com".to_owned()),
        mobile_phone: None,
        external_id: None,
        language: None,
        ctx: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
        scheduled_at: None,
        expires_at: None,
    }
}

/// A new email event to `u{n}@example.com`, with a `ctx` and an external id that must be stored verbatim
/// (markup, an SQL injection attempt).
pub(crate) fn verbatim_event(n: u32) -> NewEvent {
    NewEvent {
        event_type: "ORDER".to_owned(),
        channel: mc_plugin_api::Channel::Email,
        email: Some(format!("u{n}@example.com")),
        mobile_phone: None,
        external_id: Some("'; DROP TABLE events; --".to_owned()),
        language: None,
        ctx: serde_json::value::to_raw_value(
            &serde_json::json!({ "n": n, "html": "<script>x</script>" }),
        )
        .expect("a ctx"),
        scheduled_at: None,
        expires_at: None,
    }
}

/// Makes the SQLite database of `store` refuse (`RAISE(ABORT)`, "refused by the test") every new event
/// to `email`, to test what a failed write does; returns the trigger's name.
pub(crate) async fn refuse_events_to(store: &Store, email: &str) -> String {
    let name = format!(
        "refuse_{}",
        email.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    store
        .connection()
        .execute_unprepared(&format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON events WHEN NEW.email = '{email}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ))
        .await
        .expect("create the refusing trigger");
    name
}

/// A uniquely named, empty PostgreSQL database (the integration-test harness's, named `mc_test_...`),
/// dropped (with its connections) when this value is dropped, also when the test panics.
pub(crate) struct PgTestDb(PostgresDatabase);

impl PgTestDb {
    /// Creates the database with `psql` (a short blocking call, fine in a test).
    pub(crate) async fn create() -> Self {
        Self(PostgresDatabase::create_with_prefix("mc_test"))
    }

    /// The url of the test database.
    pub(crate) fn url(&self) -> &str {
        self.0.url()
    }

    /// The name of the test database.
    pub(crate) fn name(&self) -> &str {
        self.0.name()
    }
}

/// Event number `n` of a test: email channel, one of seven types, `ctx.n = n`.
pub(crate) fn new_event(n: usize) -> NewEvent {
    NewEvent {
        event_type: format!("T{}", n % 7),
        channel: mc_plugin_api::Channel::Email,
        email: Some(format!("user{n}@example.com")),
        mobile_phone: None,
        external_id: None,
        language: None,
        ctx: serde_json::value::to_raw_value(&serde_json::json!({ "n": n })).unwrap(),
        scheduled_at: None,
        expires_at: None,
    }
}

/// Stores `count` events into `queue` as instance 1, 500 per transaction.
pub(crate) async fn push(store: &Store, queue: Queue, count: usize) {
    let events: Vec<NewEvent> = (0..count).map(new_event).collect();
    for chunk in events.chunks(500) {
        store
            .submit(
                1,
                &[Submission {
                    queue,
                    events: chunk.to_vec(),
                    idempotency: None,
                }],
            )
            .await
            .expect("submit");
    }
}

/// Two stores, each with its own pool, on one fresh migrated PostgreSQL database: two execution
/// instances sharing a database.
pub(crate) async fn pg_pair() -> (PgTestDb, Store, Store) {
    let pg = PgTestDb::create().await;
    let one = db::connect(pg.url(), 4, Duration::from_secs(5))
        .await
        .expect("connect to PostgreSQL");
    db::migrate(&one).await.expect("migrate PostgreSQL");
    let two = db::connect(pg.url(), 4, Duration::from_secs(5))
        .await
        .expect("connect to PostgreSQL");
    (pg, Store::new(one), Store::new(two))
}

/// Claims real-time events as `claimer`, `per_claim` at a time, and makes each `not_taken_into_account`,
/// until none is left; returns the row keys it finalised. Fails if a claim it held was lost.
pub(crate) async fn finalise_all(store: &Store, claimer: &str, per_claim: u64) -> Vec<i64> {
    let mut mine = Vec::new();
    loop {
        let claimed = store
            .claim_events(Queue::Realtime, per_claim, claimer, Duration::from_secs(60))
            .await
            .expect("claim")
            .events;
        if claimed.is_empty() {
            return mine;
        }
        let updates: Vec<EventUpdate> = claimed
            .iter()
            .map(|e| EventUpdate {
                row_key: e.id,
                status: EventStatus::NotTakenIntoAccount,
                template: None,
            })
            .collect();
        let changed = store
            .update_claimed_events(claimer, &updates)
            .await
            .expect("update");
        assert_eq!(
            changed as usize,
            claimed.len(),
            "{claimer} lost a claim it held"
        );
        mine.extend(claimed.into_iter().map(|e| e.id));
    }
}
