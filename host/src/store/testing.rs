//! Test fixtures: a migrated SQLite store in a temporary directory, and a throw-away PostgreSQL
//! database per test so that concurrent test runs on the shared server never see each other's rows.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use mc_plugin_api::services::Queue;

use super::{EventUpdate, NewEvent, Store, Submission};
use crate::db;
use crate::db::entities::event::EventStatus;

/// The maintenance database the per-test databases are created from; `MC_TEST_POSTGRES_URL` overrides
/// it. Tests that use it fail, not skip, when PostgreSQL is unreachable.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

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

fn maintenance_url() -> String {
    std::env::var("MC_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

async fn maintenance_connection(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await.unwrap_or_else(|err| {
        panic!(
            "PostgreSQL must be reachable at {} for this test: {err}",
            db::redact_url(url)
        )
    })
}

/// A uniquely named, empty PostgreSQL database, dropped (with its connections) when this value is
/// dropped, also when the test panics.
pub(crate) struct PgTestDb {
    name: String,
    url: String,
    maintenance_url: String,
}

impl PgTestDb {
    pub(crate) async fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        // Only [a-z0-9_]: the name is spliced into CREATE/DROP DATABASE, which take no parameters.
        let name = format!(
            "mc_test_{}_{nanos}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let maintenance_url = maintenance_url();
        let admin = maintenance_connection(&maintenance_url).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|err| panic!("CREATE DATABASE {name}: {err}"));
        admin.close().await.expect("close maintenance connection");
        let url = with_database(&maintenance_url, &name);
        Self {
            name,
            url,
            maintenance_url,
        }
    }

    /// The url of the test database.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The name of the test database.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgTestDb {
    /// Runs on its own thread and runtime: `Drop` cannot await, and the test's runtime may be the
    /// current-thread one that is blocked here.
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = self.maintenance_url.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let admin = maintenance_connection(&url).await;
                let result = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
                result
            })
        })
        .join();
        match dropped {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => eprintln!("could not drop test database {}: {err}", self.name),
            Err(_) => eprintln!("could not drop test database {}", self.name),
        }
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("postgres url has a scheme");
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
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
            .expect("claim");
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
