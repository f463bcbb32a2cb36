//! Time arithmetic in SQL, in each dialect, for the aggregate queries that group by a time bucket and
//! sum durations (monitoring's minutes, the reports' hours and days). SQLite keeps timestamps as
//! RFC 3339 text, which `julianday` and `strftime` read; PostgreSQL has `timestamptz`. Also the one
//! planner hint those queries need on SQLite ([`not_for_index`]).

use sea_orm::DbBackend;

/// The SQL of the seconds from column `earlier` to column `later` (a float; NULL if either is).
pub fn seconds_between(backend: DbBackend, later: &str, earlier: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("EXTRACT(EPOCH FROM ({later} - {earlier}))::float8"),
        _ => format!("((julianday({later}) - julianday({earlier})) * 86400.0)"),
    }
}

/// The SQL of a column's bucket number: its Unix seconds divided by `bucket_seconds`, rounded down
/// (buckets start at whole minutes, hours or UTC days).
pub fn epoch_bucket(backend: DbBackend, column: &str, bucket_seconds: i64) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("FLOOR(EXTRACT(EPOCH FROM {column}) / {bucket_seconds})::int8")
        }
        _ => format!("(CAST(strftime('%s', {column}) AS INTEGER) / {bucket_seconds})"),
    }
}

/// The `n`th bind placeholder (1-based).
pub fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// `column`, written so that SQLite's planner does not pick an index for the term it appears in (a
/// unary `+`; PostgreSQL, which has statistics, gets the column as it is). SQLite has no statistics
/// unless `ANALYZE` ran, and for `s.event_id = e.id AND s.is_final = 1` it took the index on `is_final`:
/// every event of a monitoring refresh then scanned every final delivery-log entry.
pub fn not_for_index(backend: DbBackend, column: &str) -> String {
    match backend {
        DbBackend::Postgres => column.to_owned(),
        _ => format!("+{column}"),
    }
}

/// The SQL of boolean true.
pub fn true_literal(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "TRUE",
        _ => "1",
    }
}
