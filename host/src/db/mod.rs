//! Database connection, schema migrations and entities.
//!
//! The host owns the process's connection pools (the durable one and the pipeline's, [`Commits`]):
//! plugins reach the database through the host's store service, never with a pool of their own (see the
//! plugin contract in `SPEC.md`). Two backends are supported: SQLite (the default, a single file under
//! `data/`) and PostgreSQL (for scale).

pub mod checkpoint;
pub mod entities;
pub mod liveness;
pub mod migration;
pub mod statements;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::ConnectOptions as _;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    SqlxSqliteConnector, Statement, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::urls::{Scheme, lowercase_scheme};

/// How long an SQLite statement waits for another connection's write lock before failing with
/// "database is locked". SQLite allows one writer at a time; without a busy timeout concurrent writers
/// (HTTP intake, workflows) would fail instead of queueing behind each other.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle for at least this long is pinged before it is handed out. Pinging on every
/// checkout (sqlx's default) costs a round trip per query; a server restart, a proxy or a firewall drops
/// connections that sat idle, which is what this catches.
/// Connections idle across a lost connection are pinged too ([`liveness`]).
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

/// Errors of connecting to, checking and migrating the database.
#[derive(thiserror::Error, Debug)]
pub enum DbError {
    /// The url names a backend this build does not support.
    #[error(
        "unsupported database url `{url}`: expected `sqlite:` (e.g. `sqlite://data/message-center.db?mode=rwc`) or `postgres://`"
    )]
    UnsupportedUrl {
        /// The url, password removed.
        url: String,
    },
    /// The url has a supported scheme but cannot be parsed.
    #[error("invalid database url `{url}`: {reason}")]
    InvalidUrl {
        /// The url, password removed.
        url: String,
        /// What the driver objected to.
        reason: String,
    },
    /// The directory that should hold the SQLite file could not be created.
    #[error("cannot create directory `{}` for the SQLite database `{url}`: {source}", path.display())]
    CreateDir {
        /// The url, password removed.
        url: String,
        /// The directory.
        path: PathBuf,
        /// Why it could not be created.
        #[source]
        source: std::io::Error,
    },
    /// The pool could not be set up. The pool connects lazily, so an unreachable server is reported by
    /// [`ping`] and by the first query ([`DbError::Unavailable`]), not here.
    #[error("cannot connect to the database `{url}`: {source}")]
    Connect {
        /// The url, password removed.
        url: String,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// No working connection could be obtained within the connect timeout: the server is down,
    /// unreachable, refuses the credentials, or the SQLite file cannot be opened.
    #[error("database `{target}` is unavailable: {source}")]
    Unavailable {
        /// Which database (backend, host, port, name or file; never the password).
        target: String,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// Applying the schema migrations failed; the server must not serve with a schema it does not know.
    #[error("migrating the database `{target}` failed: {source}")]
    Migrate {
        /// Which database (backend, host, port, name or file; never the password).
        target: String,
        /// The driver's or the migration's error.
        #[source]
        source: DbErr,
    },
}

/// When a commit on a pool's connections returns: what a power loss can take back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commits {
    /// Once the commit is on disk (SQLite `synchronous = FULL`, PostgreSQL's `synchronous_commit = on`):
    /// what an answer to a client promises, for events, templates, endpoints and the rest of the API.
    Durable,
    /// Once the commit is in the database's log, before the disk has it (SQLite `synchronous = NORMAL`
    /// in WAL mode, PostgreSQL `synchronous_commit = off`). A crash of this process or of the database
    /// server's process loses nothing; a power loss or an operating-system crash can take back the last
    /// such commits, those after the log was last synced (by any durable commit, SQLite's background
    /// checkpoint or PostgreSQL's WAL writer, within a second), always a suffix in commit order, never an
    /// earlier commit without the later ones. For the pipeline's own state, whose lost transitions are
    /// done again (README, "Delivery guarantees"); the fsync each commit saves was most of a write turn.
    Deferred,
}

/// Opens a connection pool for `url` (`sqlite:` or `postgres://` / `postgresql://`) without connecting,
/// with [`Commits::Durable`].
///
/// The pool is lazy so that the server starts, and reports "not ready", while the database is down or
/// the SQLite file cannot be opened; the first query (or [`ping`]) opens a connection, waiting at most
/// `connect_timeout` for one. For SQLite the parent directory of the file is created, and every pooled
/// connection uses WAL (readers do not block the writer), a busy timeout and foreign keys, and runs no
/// automatic checkpoint: whoever keeps the pool open runs [`checkpoint::run`] (the server does), and
/// closing the last connection checkpoints.
/// `synchronous` stays at SQLite's `FULL` default: the SPEC promises that an event is durable before the
/// answer, which `NORMAL` in WAL mode does not guarantee on power loss (see [`Commits`]).
pub async fn connect(
    url: &str,
    max_connections: u32,
    connect_timeout: Duration,
) -> Result<DatabaseConnection, DbError> {
    connect_with(url, max_connections, connect_timeout, Commits::Durable).await
}

/// [`connect`], with the commits of the pool's connections returning as `commits` says.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    connect_timeout: Duration,
    commits: Commits,
) -> Result<DatabaseConnection, DbError> {
    let shown = redact_url(url);
    let url = &*lowercase_scheme(url);
    match backend_of(url) {
        Some(DbBackend::Sqlite) => {
            connect_sqlite(url, &shown, max_connections, connect_timeout, commits).await
        }
        Some(DbBackend::Postgres) => {
            // Parsed here first because sea-orm's own parse error quotes the whole url, password
            // included; sqlx's says what is wrong without repeating it.
            PgConnectOptions::from_str(url).map_err(|err| DbError::InvalidUrl {
                url: shown.clone(),
                reason: err.to_string(),
            })?;
            let mut options = ConnectOptions::new(url);
            options
                .max_connections(max_connections.max(1))
                .connect_timeout(connect_timeout)
                .connect_lazy(true)
                .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
                // sqlx logs every statement at INFO through `log`, which floods the host's logs;
                // sea-orm's own tracing spans stay available at TRACE level.
                .sqlx_logging(false);
            options.map_sqlx_postgres_before_acquire(|conn, meta| {
                Box::pin(async move {
                    use sea_orm::sqlx::Connection as _;
                    if liveness::idle_across_a_loss(meta.idle_for) {
                        // A dead connection fails here and is discarded; the pool tries another.
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            });
            if commits == Commits::Deferred {
                options.map_sqlx_postgres_opts(|pg| pg.options([("synchronous_commit", "off")]));
            }
            Database::connect(options)
                .await
                .map_err(|source| DbError::Connect { url: shown, source })
        }
        _ => Err(DbError::UnsupportedUrl { url: shown }),
    }
}

/// The SQLite half of [`connect`]. The sqlx pool is built here rather than by sea-orm's connector because
/// that one opens a connection at once to read the SQLite version (its `sqlite-use-returning-for-3_35`
/// feature, which sea-orm-migration turns on), even when asked to be lazy.
async fn connect_sqlite(
    url: &str,
    shown: &str,
    max_connections: u32,
    connect_timeout: Duration,
    commits: Commits,
) -> Result<DatabaseConnection, DbError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|err| DbError::InvalidUrl {
            url: shown.to_owned(),
            reason: err.to_string(),
        })?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        // Checkpoints run in the background, off the write turn (`checkpoint`).
        .pragma("wal_autocheckpoint", "0")
        // Statements are logged at INFO through `log` otherwise, which floods the host's logs.
        .disable_statement_logging()
        .synchronous(match commits {
            Commits::Durable => SqliteSynchronous::Full,
            Commits::Deferred => SqliteSynchronous::Normal,
        });
    let mut pool = SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(connect_timeout)
        // A connection to a local file does not go stale; pinging it on every checkout is wasted work.
        .test_before_acquire(false);

    if is_in_memory_url(url) {
        // An in-memory database lives only as long as one of its connections: never let the pool close
        // idle or old connections, or the data would vanish.
        pool = pool.idle_timeout(None).max_lifetime(None);
    } else if let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| DbError::CreateDir {
                url: shown.to_owned(),
                path: dir.to_path_buf(),
                source,
            })?;
    }

    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(
        pool.connect_lazy_with(options),
    ))
}

/// Applies every pending migration. Idempotent: applied migrations are recorded in `seaql_migrations`
/// and skipped.
///
/// On PostgreSQL, several execution instances may start at once against one database: the migrations
/// run in one transaction that first takes a transaction-scoped advisory lock, so the instances apply
/// them one after the other (the later ones find nothing pending) instead of racing on `CREATE TABLE`.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbError> {
    let failed = |source| DbError::Migrate {
        target: describe(db),
        source,
    };
    if db.get_database_backend() != DbBackend::Postgres {
        return migration::Migrator::up(db, None).await.map_err(failed);
    }
    let txn = db.begin().await.map_err(failed)?;
    txn.execute_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"),
    ))
    .await
    .map_err(failed)?;
    migration::Migrator::up(&txn, None).await.map_err(failed)?;
    txn.commit().await.map_err(failed)
}

/// The advisory-lock key that serialises migrations on PostgreSQL ("MCMIGRAT" as an integer).
const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"MCMIGRAT");

/// Checks that a connection to the database can be obtained and answers; the readiness probe.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbError> {
    db.ping().await.map_err(|source| DbError::Unavailable {
        target: describe(db),
        source,
    })
}

/// Names the database behind `db` for error messages and logs: backend, user, host, port and database
/// name, or the SQLite file; never the password (the pool's options are read back, not the url).
pub fn describe(db: &DatabaseConnection) -> String {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let opts = db.get_postgres_connection_pool().connect_options();
            let host = match opts.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => format!("{}:{}", opts.get_host(), opts.get_port()),
            };
            format!(
                "postgres://{}@{}/{}",
                opts.get_username(),
                host,
                opts.get_database().unwrap_or_default()
            )
        }
        DbBackend::Sqlite => {
            let opts = db.get_sqlite_connection_pool().connect_options();
            format!("sqlite://{}", opts.get_filename().display())
        }
        other => format!("{other:?}"),
    }
}

/// The backend a url selects, decided from its scheme alone (by [`Scheme::of`], as configuration
/// validation decides it) so that a malformed url gets our error message rather than a driver panic.
fn backend_of(url: &str) -> Option<DbBackend> {
    match Scheme::of(url)? {
        Scheme::Sqlite => Some(DbBackend::Sqlite),
        Scheme::Postgres => Some(DbBackend::Postgres),
        Scheme::Http | Scheme::Https => None,
    }
}

/// The file of an SQLite `url`, as the pool opens it; `None` for an in-memory database, a url that does
/// not parse (connecting reports that) or another backend.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if backend_of(url) != Some(DbBackend::Sqlite) || is_in_memory_url(url) {
        return None;
    }
    let options = SqliteConnectOptions::from_str(&lowercase_scheme(url)).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// Whether a `sqlite:` url names an in-memory database (`sqlite::memory:`, `?mode=memory`), parsed the
/// way sqlx parses it (sqlx keeps the flag private).
pub fn is_in_memory_url(url: &str) -> bool {
    let url = lowercase_scheme(url);
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(&url);
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:"
        || params
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case("mode=memory"))
}

/// `url` without its secrets, for logs and error messages: kept under this name for the callers that
/// reach it through the database module; the one implementation is [`crate::urls::redact`].
pub use crate::urls::redact as redact_url;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::PgTestDb;
    use std::time::Instant;

    #[tokio::test]
    async fn malformed_postgres_url_is_refused_without_its_password() {
        let err = connect(
            "postgres://mc:s3cret@db.example:notaport/mc",
            1,
            Duration::from_secs(1),
        )
        .await
        .expect_err("the port is not a number");
        let message = err.to_string();
        assert!(matches!(err, DbError::InvalidUrl { .. }), "{message}");
        assert!(
            message.contains("postgres://mc:***@db.example:notaport/mc"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn in_memory_sqlite_urls_are_recognised() {
        assert!(is_in_memory_url("sqlite::memory:"));
        assert!(is_in_memory_url("sqlite://:memory:"));
        assert!(is_in_memory_url("sqlite://?mode=memory&cache=shared"));
        assert!(!is_in_memory_url(
            "sqlite://data/message-center.db?mode=rwc"
        ));
        assert!(!is_in_memory_url("sqlite:///var/lib/mc/memory.db"));
        // Schemes are case-insensitive, here as in `connect` and the configuration.
        assert!(is_in_memory_url("SQLite::memory:"));
        assert!(!is_in_memory_url("SQLITE://data/mc.db"));
        assert_eq!(
            sqlite_file("SQLite://data/mc.db?mode=rwc"),
            Some(PathBuf::from("data/mc.db"))
        );
        assert_eq!(sqlite_file("Sqlite::memory:"), None);
    }

    #[tokio::test]
    async fn unsupported_scheme_is_refused_with_the_url() {
        let err = connect("mysql://root:pw@localhost/mc", 1, Duration::from_secs(1))
            .await
            .expect_err("mysql is not compiled in");
        let message = err.to_string();
        assert!(matches!(err, DbError::UnsupportedUrl { .. }), "{message}");
        assert!(
            message.contains("mysql://root:***@localhost/mc"),
            "{message}"
        );
        assert!(!message.contains("pw"), "{message}");
    }

    #[tokio::test]
    async fn sqlite_creates_parent_directory_and_migrates_idempotently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("nested/deeper/mc.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());

        let db = connect(&url, 4, Duration::from_secs(5))
            .await
            .expect("connect");
        assert!(file.parent().expect("parent").is_dir());
        ping(&db).await.expect("ping");
        migrate(&db).await.expect("first migration");
        migrate(&db).await.expect("second migration is a no-op");
        assert!(file.is_file());
        assert!(
            describe(&db).ends_with("nested/deeper/mc.db"),
            "{}",
            describe(&db)
        );
        db.close().await.expect("close");

        // A new pool on the same file finds the schema already there.
        let db = connect(&url, 2, Duration::from_secs(5))
            .await
            .expect("reconnect");
        migrate(&db).await.expect("migration after restart");
        db.close().await.expect("close");
    }

    #[tokio::test]
    async fn sqlite_in_memory_works() {
        let db = connect("sqlite::memory:", 2, Duration::from_secs(5))
            .await
            .expect("connect");
        migrate(&db).await.expect("migrate");
        migrate(&db).await.expect("migrate again");
    }

    #[tokio::test]
    async fn postgres_migrates_idempotently() {
        let pg = PgTestDb::create().await;
        let db = connect(pg.url(), 4, Duration::from_secs(5))
            .await
            .expect("connect");
        ping(&db).await.expect("ping");
        migrate(&db).await.expect("first migration");
        migrate(&db).await.expect("second migration is a no-op");
        assert!(describe(&db).contains(pg.name()), "{}", describe(&db));
        db.close().await.expect("close");
    }

    /// The names of the indexes on `events`.
    async fn event_indexes(db: &DatabaseConnection) -> Vec<String> {
        let sql = match db.get_database_backend() {
            DbBackend::Postgres => "SELECT indexname FROM pg_indexes WHERE tablename = 'events'",
            _ => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'",
        };
        db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("list indexes")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("index name"))
            .collect()
    }

    /// The `ctx` of the one event in `events`, as the database holds its text.
    async fn stored_ctx(db: &DatabaseConnection) -> String {
        db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(ctx AS TEXT) FROM events",
        ))
        .await
        .expect("read ctx")
        .expect("the event is there")
        .try_get_by_index::<String>(0)
        .expect("ctx text")
    }

    /// Migration 000005 on a database that already holds events: the claim index is gone, the queue
    /// index stays, and on PostgreSQL `ctx` becomes `json` with the stored objects unchanged (that new
    /// events keep their text is tested with the ingest store).
    async fn ingest_cost_migration_keeps_events(db: &DatabaseConnection) {
        migration::Migrator::up(db, Some(4))
            .await
            .expect("migrations up to 000004");
        let backend = db.get_database_backend();
        assert!(
            event_indexes(db)
                .await
                .contains(&"idx_events_claim".to_owned())
        );
        db.execute_raw(Statement::from_string(
            backend,
            "INSERT INTO events (queue, event_type, ctx, created_at, updated_at) VALUES \
             ('realtime', 'ORDER', '{\"b\": 1, \"a\": [\"x\"]}', '2026-11-22T10:00:00Z', '2026-11-22T10:00:00Z')",
        ))
        .await
        .expect("an event stored before the migration");

        migrate(db).await.expect("migration 000005");
        let indexes = event_indexes(db).await;
        assert!(
            !indexes.contains(&"idx_events_claim".to_owned()),
            "{indexes:?}"
        );
        assert!(
            indexes.contains(&"idx_events_queue_status_id".to_owned()),
            "{indexes:?}"
        );
        let value: serde_json::Value =
            serde_json::from_str(&stored_ctx(db).await).expect("ctx is JSON");
        assert_eq!(value, serde_json::json!({ "a": ["x"], "b": 1 }));

        if backend == DbBackend::Postgres {
            let column_type = db
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT data_type FROM information_schema.columns \
                     WHERE table_name = 'events' AND column_name = 'ctx'",
                ))
                .await
                .expect("column type")
                .expect("ctx column")
                .try_get_by_index::<String>(0)
                .expect("type name");
            assert_eq!(column_type, "json");
        }
    }

    #[tokio::test]
    async fn sqlite_ingest_cost_migration_keeps_events() {
        let db = connect("sqlite::memory:", 1, Duration::from_secs(5))
            .await
            .expect("connect");
        ingest_cost_migration_keeps_events(&db).await;
    }

    #[tokio::test]
    async fn postgres_ingest_cost_migration_keeps_events() {
        let pg = PgTestDb::create().await;
        let db = connect(pg.url(), 2, Duration::from_secs(5))
            .await
            .expect("connect");
        ingest_cost_migration_keeps_events(&db).await;
        db.close().await.expect("close");
    }

    /// Execution instances starting together on one fresh database: every one of them migrates
    /// successfully (the advisory lock makes them take turns).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_instances_starting_together_all_migrate() {
        let pg = PgTestDb::create().await;
        let mut instances = Vec::new();
        for _ in 0..4 {
            let url = pg.url().to_owned();
            instances.push(tokio::spawn(async move {
                let db = connect(&url, 2, Duration::from_secs(5))
                    .await
                    .expect("connect");
                let result = migrate(&db).await;
                db.close().await.expect("close");
                result
            }));
        }
        for instance in instances {
            instance
                .await
                .expect("task")
                .expect("every instance migrates");
        }
    }

    #[tokio::test]
    async fn lazy_connect_to_unreachable_postgres_then_ping_fails_clearly() {
        let timeout = Duration::from_millis(500);
        let started = Instant::now();
        let db = connect("postgres://mc:s3cret@127.0.0.1:1/x", 2, timeout)
            .await
            .expect("a lazy pool is created without connecting");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "connect waited {:?}",
            started.elapsed()
        );

        let started = Instant::now();
        let err = ping(&db).await.expect_err("nothing listens on port 1");
        assert!(
            started.elapsed() < timeout + Duration::from_secs(2),
            "ping waited {:?}",
            started.elapsed()
        );
        let message = err.to_string();
        assert!(matches!(err, DbError::Unavailable { .. }), "{message}");
        assert!(message.contains("127.0.0.1:1/x"), "{message}");
        assert!(message.contains("unavailable"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[tokio::test]
    async fn lazy_connect_to_unopenable_sqlite_then_ping_fails_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        // `mode=rw` does not create the file, so opening it fails, but only when a connection is needed.
        let url = format!(
            "sqlite://{}?mode=rw",
            dir.path().join("missing.db").display()
        );
        let db = connect(&url, 1, Duration::from_secs(2))
            .await
            .expect("lazy pool");
        let err = ping(&db).await.expect_err("file does not exist");
        let message = err.to_string();
        assert!(matches!(err, DbError::Unavailable { .. }), "{message}");
        assert!(message.contains("missing.db"), "{message}");
    }

    /// The setting a connection of a `commits` pool on `url` commits with: SQLite's `synchronous` (2 is
    /// FULL, 1 NORMAL) or PostgreSQL's `synchronous_commit`.
    async fn commit_setting(url: &str, commits: Commits) -> String {
        let db = connect_with(url, 2, Duration::from_secs(5), commits)
            .await
            .expect("connect");
        let sql = match db.get_database_backend() {
            DbBackend::Sqlite => "PRAGMA synchronous",
            _ => "SHOW synchronous_commit",
        };
        crate::store::testing::setting(&db, sql).await
    }

    #[tokio::test]
    async fn deferred_commits_are_asked_of_each_backend_and_durable_ones_stay_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        assert_eq!(commit_setting(&sqlite, Commits::Durable).await, "2");
        assert_eq!(commit_setting(&sqlite, Commits::Deferred).await, "1");
        let pg = PgTestDb::create().await;
        assert_eq!(commit_setting(pg.url(), Commits::Durable).await, "on");
        assert_eq!(commit_setting(pg.url(), Commits::Deferred).await, "off");
    }
}
