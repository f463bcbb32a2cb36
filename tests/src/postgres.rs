//! A PostgreSQL database of its own for one test or benchmark series, made with `psql` on the machine's
//! PostgreSQL, so that concurrent runs on the shared server never see each other's rows. The integration
//! tests, the host's store tests and the ingest benchmark all use it. Whoever uses it fails, never skips,
//! when PostgreSQL is unreachable.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The maintenance database used unless `MC_TEST_POSTGRES_URL` names another.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The machine's PostgreSQL maintenance database (`MC_TEST_POSTGRES_URL` overrides it).
pub fn postgres_maintenance_url() -> String {
    std::env::var("MC_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Which PostgreSQL failure messages name: the default URL, or only the variable that overrides it
/// (whose URL may hold a password).
fn described_server() -> String {
    match std::env::var_os("MC_TEST_POSTGRES_URL") {
        Some(_) => "the PostgreSQL of MC_TEST_POSTGRES_URL".to_owned(),
        None => format!("PostgreSQL at {DEFAULT_POSTGRES_URL}"),
    }
}

/// Runs one SQL command with `psql` on `url`; its output (unaligned, without headers, trimmed), or why
/// it failed.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .map_err(|e| format!("cannot run psql (PostgreSQL client) for `{sql}`: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "psql `{sql}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A uniquely named, empty database on the machine's PostgreSQL, dropped (with its connections) when
/// this value is dropped, also when the test panics.
pub struct PostgresDatabase {
    name: String,
    url: String,
    maintenance_url: String,
}

impl PostgresDatabase {
    /// A database named `mc_it_<pid>_<nanos>_<n>`.
    pub fn create() -> Self {
        Self::create_with_prefix("mc_it")
    }

    /// A database named `<prefix>_<pid>_<nanos>_<n>`; `prefix` is `[a-z0-9_]` only, as the name is
    /// spliced into `CREATE DATABASE`, which takes no parameters. The nanoseconds keep the name unique
    /// also against a process of another PID namespace on the same server.
    pub fn create_with_prefix(prefix: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        assert!(
            prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database prefix {prefix:?} is not [a-z0-9_]"
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "{prefix}_{}_{nanos}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let maintenance_url = postgres_maintenance_url();
        if let Err(e) = psql(&maintenance_url, &format!("CREATE DATABASE {name}")) {
            panic!(
                "{} must be reachable for this test: {e}",
                described_server()
            );
        }
        PostgresDatabase {
            url: with_database(&maintenance_url, &name),
            name,
            maintenance_url,
        }
    }

    /// The URL of the database (the maintenance URL's, with its name).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.maintenance_url, &sql) {
            eprintln!("could not drop the test database {}: {e}", self.name);
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

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_replaced_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "mc_x"),
            "postgres://u@h:5432/mc_x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "mc_x"),
            "postgres://u@h/mc_x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "mc_x"), "postgres://h/mc_x");
    }
}
